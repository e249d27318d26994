// A flood of datagrams from random unknown ids, as fast as one socket sends, at a monitor that
// accepts unlisted nodes and has room for 1 000: real nodes are never judged late or down, a
// legitimate newcomer gets in once the flood's nodes are down, and the journal stays bounded.
import { spawn } from "node:child_process";
import { createSocket } from "node:dgram";
import { randomBytes } from "node:crypto";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { Kind, encode } from "../../src/wire/protocol.js";
import { TempDir, runHb, sleep, startMonitor, type HbProcess } from "../support/hb-process.js";

const FLOOD = 100_000;
const LEGIT = 20;
const dir = new TempDir();
const BEATER = fileURLToPath(new URL("../support/beater.ts", import.meta.url));
const cleanup: (() => void)[] = [];
let monitor: HbProcess | undefined;
afterAll(async () => {
  cleanup.forEach((f) => f());
  await monitor?.stop();
  dir.remove();
});

describe(`${FLOOD} datagrams from random unknown ids`, () => {
  it("judge no real node late or down, let a newcomer in afterwards, and write a bounded journal", async () => {
    const keyFile = dir.file("k1", "flood-test-key-0123456789abcdef\n", 0o600);
    const config = dir.file(
      "hb.yaml",
      `max_nodes: 1000\ndefaults: { interval: 100ms, late: 500ms, timeout: 1s }\nnodes:\n${Array.from(
        { length: LEGIT },
        (_, i) => `  n${i}: {}`,
      ).join("\n")}\n`,
    );
    const started = await startMonitor(config);
    monitor = started.monitor;
    const beater = spawn(
      process.execPath,
      ["--import", "tsx", BEATER, String(started.port), keyFile, String(LEGIT), "100"],
      {
        stdio: ["ignore", "pipe", "inherit"],
      },
    );
    cleanup.push(() => beater.kill("SIGKILL"));
    await new Promise<string>((resolve) => createInterface({ input: beater.stdout }).once("line", resolve));
    await Promise.all(Array.from({ length: LEGIT }, (_, i) => monitor!.waitFor("node.up", `n${i}`)));

    const socket = createSocket("udp4");
    const t0 = Date.now();
    for (let i = 0; i < FLOOD; i++) {
      const id = `r${randomBytes(6).toString("hex")}`;
      socket.send(
        encode({ kind: Kind.BEAT, nodeId: id, incarnation: 1, sequence: 1 }),
        started.port,
        "127.0.0.1",
      );
      if (i % 256 === 255) await new Promise((r) => setImmediate(r));
    }
    await new Promise<void>((resolve) => socket.close(resolve));
    await sleep(2500); // the flood's nodes are down by now: evictable
    expect(runHb(["send", "--id", "late-comer", "--monitor", started.listen]).code).toBe(0);
    await sleep(500);
    const status = JSON.parse(runHb(["status", "--json", "--url", started.statusUrl]).stdout) as {
      nodes: { node: string; state: string }[];
      datagrams: { rejected: Record<string, number> };
    };
    const elapsedS = (Date.now() - t0) / 1000;
    console.info(
      `flood: ${elapsedS.toFixed(1)} s; rejected ${JSON.stringify(status.datagrams.rejected)}; ${monitor.events.length} journal lines`,
    );
    for (let i = 0; i < LEGIT; i++) {
      expect(monitor.of("node.late", `n${i}`)).toEqual([]);
      expect(monitor.of("node.down", `n${i}`)).toEqual([]);
    }
    // Tracked (one datagram, so up or, 500 ms on, late): it was let in, not refused.
    expect(["up", "late"]).toContain(status.nodes.find((n) => n.node === "late-comer")?.state);
    // Unlisted nodes' lines: at most 100 a second, plus one summary a second.
    expect(monitor.events.length).toBeLessThan(LEGIT + 10 + 101 * Math.ceil(elapsedS + 1));
  });
});
