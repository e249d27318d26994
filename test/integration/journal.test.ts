// When stdout is the stream JOURNAL_STREAM names (device:inode), lines carry syslog priorities.
import { spawn } from "node:child_process";
import { closeSync, fstatSync, openSync, readFileSync } from "node:fs";
import { afterAll, describe, expect, it } from "vitest";
import { HB_BIN, TempDir, sleep } from "../support/hb-process.js";

const dir = new TempDir();
afterAll(() => dir.remove());

async function runMonitorInto(journalStream: (dev: number, ino: number) => string): Promise<string[]> {
  const out = `${dir.path}/stdout-${Math.random()}`;
  const fd = openSync(out, "w");
  const { dev, ino } = fstatSync(fd);
  const config = dir.file("hb.yaml", `startup_grace: 300ms\nreceive_buffer: 64KiB\nnodes: { "never": {} }\n`);
  const child = spawn(
    process.execPath,
    [HB_BIN, "monitor", "--config", config, "--listen", "127.0.0.1:0", "--status", "off"],
    {
      stdio: ["ignore", fd, "inherit"],
      env: { PATH: process.env.PATH ?? "", JOURNAL_STREAM: journalStream(dev, ino) },
    },
  );
  // Past the grace "never" goes down; a busy machine may take a while to start the monitor.
  for (let waited = 0; !readFileSync(out, "utf8").includes("node.down") && waited < 20_000; waited += 100)
    await sleep(100);
  child.kill("SIGTERM");
  await new Promise((resolve) => child.once("exit", resolve));
  closeSync(fd);
  return readFileSync(out, "utf8").trim().split("\n");
}

describe("journald priorities", () => {
  it("prefixes <6> info, <3> error when stdout is the journal stream", async () => {
    const lines = await runMonitorInto((dev, ino) => `${dev}:${ino}`);
    const byEvent = Object.fromEntries(
      lines.map((l) => [(JSON.parse(l.slice(3)) as { event: string }).event, l.slice(0, 3)]),
    );
    expect(byEvent).toEqual({ "monitor.started": "<6>", "node.down": "<3>", "monitor.stopping": "<6>" });
  });

  it("writes plain JSON when JOURNAL_STREAM names another stream", async () => {
    const lines = await runMonitorInto((dev, ino) => `${dev}:${ino + 1}`);
    expect(lines.map((l) => (JSON.parse(l) as { event: string }).event)).toEqual([
      "monitor.started",
      "node.down",
      "monitor.stopping",
    ]);
  });
});
