// `hb capture` as an operator runs it: a real `hb monitor` on loopback, three `hb node` senders
// beating every 100 ms, and the command run as a child process. The trace it writes is read back
// with parseTrace; what is checked is its content (every node, order, counts, intervals), never
// how long anything took. A refused or interrupted capture leaves no file, and a monitor that
// stops mid-capture still gives a whole trace, marked as cut short.
import { spawn } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { parseTrace, type Trace } from "../../src/wire/trace.js";
import type { HbProcess } from "../support/hb-process.js";
import { HB_BIN, TempDir, sleep, startMonitor, startNode } from "../support/hb-process.js";

const dir = new TempDir();
const procs: HbProcess[] = [];
let monitor: HbProcess;
let statusUrl = "";
afterAll(async () => {
  await Promise.all(procs.splice(0).map((p) => p.stop()));
  dir.remove();
});

/** Runs `hb capture ARGS --url …` to its end, without blocking this process's loop. */
function capture(
  args: string[],
  url = statusUrl,
): {
  done: Promise<{ code: number | null; stdout: string; stderr: string }>;
  signal(s: NodeJS.Signals): void;
} {
  const child = spawn(process.execPath, [HB_BIN, "capture", ...args, "--url", url], {
    env: { PATH: process.env.PATH ?? "", USER: "alice" },
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  return {
    done: new Promise((resolve) => child.once("close", (code) => resolve({ code, stdout, stderr }))),
    signal: (s) => void child.kill(s),
  };
}

function perNode(trace: Trace): Map<string, number> {
  const counts = new Map<string, number>();
  for (const n of trace.node) counts.set(trace.nodes[n]!, (counts.get(trace.nodes[n]!) ?? 0) + 1);
  return counts;
}

/** What is left in the directory besides the config and the traces named: no temporary file. */
function leftovers(...expected: string[]): string[] {
  return readdirSync(dir.path).filter((f) => !f.endsWith(".yaml") && !expected.includes(f));
}

function expectWellFormed(trace: Trace): void {
  let last = trace.startMs;
  for (const at of trace.arrivalMs) {
    expect(at).toBeGreaterThanOrEqual(last);
    last = at;
  }
  expect(last).toBeLessThanOrEqual(trace.endMs);
}

beforeAll(async () => {
  const config = dir.file(
    "hb.yaml",
    [
      "defaults: { interval: 100ms }",
      "nodes:",
      "  web-1: {}",
      "  web-2: {}",
      "  db-1: { interval: 200ms }", // what the trace says of db-1; it beats every 100 ms all the same
      "  quiet: { interval: 1s }", // never heard: not in the trace
    ].join("\n"),
  );
  const started = await startMonitor(config);
  monitor = started.monitor;
  statusUrl = started.statusUrl;
  procs.push(monitor);
  for (const id of ["web-1", "web-2", "db-1"]) procs.push(startNode(id, started.listen, "100ms"));
  for (const id of ["web-1", "web-2", "db-1"]) await monitor.waitFor("node.up", id);
});

afterEach(() => expect(leftovers("all.trace", "web.trace", "stopping.trace")).toEqual([]));

describe("hb capture", () => {
  it("writes every accepted arrival of every node for N seconds, in order, with the intervals", async () => {
    const out = join(dir.path, "all.trace");
    const r = await capture(["--seconds", "2", "--out", out]).done;
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(
      /^captured [\d ]+ arrivals of 3 nodes in \d+\.\d s → .*all\.trace \(\d+ (B|KiB)\)\n$/,
    );
    const text = readFileSync(out, "utf8");
    const trace = parseTrace(text);
    expect(trace.nodes.slice().sort()).toEqual(["db-1", "web-1", "web-2"]);
    expectWellFormed(trace);
    for (const [node, count] of perNode(trace)) expect(count, node).toBeGreaterThanOrEqual(10);
    expect(trace.intervalMs).toBe(100);
    expect([...trace.intervals]).toEqual([["db-1", 200]]);
    expect(text).not.toContain("# truncated");
    const ended = await monitor.waitFor("capture.ended");
    expect(ended).toMatchObject({
      reason: "done",
      node: null,
      author: "alice",
      rows: trace.node.length,
      bytes: text.length,
    });
  });

  it("takes only the nodes --node matches, and writes to standard output with --out -", async () => {
    const r = await capture(["--seconds", "1", "--out", "-", "--node", "web-*"]).done;
    expect(r.code, r.stderr).toBe(0);
    const trace = parseTrace(r.stdout);
    expect(trace.nodes.slice().sort()).toEqual(["web-1", "web-2"]);
    expectWellFormed(trace);
    expect([...trace.intervals]).toEqual([]);
    expect(r.stderr).toMatch(/arrivals of 2 nodes in .* → stdout/);
  });

  it("leaves no file when it is refused, nor when it is interrupted", async () => {
    const web = join(dir.path, "web.trace");
    const startedAt = monitor.events.length;
    const first = capture(["--seconds", "60", "--out", web, "--node", "web-1"]);
    await monitor.waitFor("capture.started", undefined, 15_000, startedAt);
    const refused = join(dir.path, "refused.trace");
    const second = await capture(["--seconds", "1", "--out", refused]).done;
    expect(second.code).toBe(1);
    expect(second.stderr).toMatch(/one at a time/);
    expect(existsSync(refused)).toBe(false);

    first.signal("SIGINT");
    const interrupted = await first.done;
    expect(interrupted.code).toBe(1);
    expect(interrupted.stderr).toContain("interrupted; nothing written");
    expect(existsSync(web)).toBe(false);
    const ended = await monitor.waitFor("capture.ended", undefined, 15_000, startedAt);
    expect(ended).toMatchObject({ reason: "client_gone", node: "web-1" });
  });

  it("refuses bad usage (64), an output it cannot create (73), a monitor it cannot reach (69)", async () => {
    expect((await capture(["--out", join(dir.path, "x.trace")]).done).code).toBe(64);
    expect((await capture(["--seconds", "0", "--out", join(dir.path, "x.trace")]).done).code).toBe(64);
    const x = join(dir.path, "x.trace");
    expect((await capture(["--seconds", "1", "--out", x, "--node", "label:a=b"]).done).code).toBe(64);
    expect((await capture(["--seconds", "1", "--out", x, "--max-bytes", "lots"]).done).code).toBe(64);
    const noDir = await capture(["--seconds", "1", "--out", join(dir.path, "missing", "x.trace")]).done;
    expect(noDir.code).toBe(73);
    expect(noDir.stderr).toContain("HB_ERR_WRITE");
    expect((await capture(["--seconds", "1", "--out", dir.path]).done).code).toBe(73);
    const away = await capture(
      ["--seconds", "1", "--out", join(dir.path, "x.trace")],
      "http://127.0.0.1:1/status",
    ).done;
    expect(away.code).toBe(69);
    expect(existsSync(join(dir.path, "x.trace"))).toBe(false);
  });

  it("gives a whole trace, marked as cut short, when the monitor stops during the capture", async () => {
    const out = join(dir.path, "stopping.trace");
    const before = monitor.events.length;
    const running = capture(["--seconds", "60", "--out", out]);
    await monitor.waitFor("capture.started", undefined, 15_000, before);
    await sleep(500);
    monitor.signal("SIGTERM");
    const r = await running.done;
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/stopped early: the monitor stopped \(monitor_stopping\)/);
    const text = readFileSync(out, "utf8");
    expect(text).toContain("# truncated monitor_stopping\n");
    expectWellFormed(parseTrace(text));
    expect(await monitor.exited).toEqual({ code: 0, signal: null });
  });
});
