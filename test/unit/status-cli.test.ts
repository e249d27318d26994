// `hb status` and `hb reload` against a status port that something other than the monitor may
// have bound first: run in-process with a recorded Io, against a fake status server.
import { spawn, type ChildProcess } from "node:child_process";
import { createServer, type Server } from "node:http";
import { fileURLToPath } from "node:url";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { Io } from "../../src/cli/io.js";
import { run } from "../../src/cli/main.js";
import { notOurMonitor } from "../../src/cli/reload.js";
import { systemClock } from "../../src/clock.js";

let answer: (path: string) => unknown = () => ({});
let server: Server;
let url = "";
const asked: string[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    asked.push(req.url ?? "");
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify(answer(req.url ?? "")));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  url = `http://127.0.0.1:${(server.address() as { port: number }).port}/status`;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));
afterEach(() => (asked.length = 0));

function io(): { io: Io; out: () => string; err: () => string; killed: [number, string][] } {
  let out = "";
  let err = "";
  const killed: [number, string][] = [];
  return {
    io: {
      stdout: { write: (s: string) => void (out += s) },
      stderr: { write: (s: string) => void (err += s) },
      env: {},
      clock: systemClock,
      journal: false,
      onSignal: () => () => undefined,
      self: [process.execPath, fileURLToPath(new URL("../../src/bin/hb.ts", import.meta.url))],
      entry: new URL("../../src/bin/hb.ts", import.meta.url),
      pid: process.pid,
      kill: (pid, signal) => void killed.push([pid, signal]),
    },
    out: () => out,
    err: () => err,
    killed,
  };
}

/** Any control character but the newlines between lines. */
// eslint-disable-next-line no-control-regex
const RAW_CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/;

const reloadState = { generation: 0, ok: null, at: null, changes: [], errors: [] };

describe("hb reload against whatever answers on the status port", () => {
  let sleeper: ChildProcess;
  beforeAll(() => {
    sleeper = spawn("sleep", ["60"], { stdio: "ignore" });
  });
  afterAll(() => sleeper.kill());

  it.each([
    ["-1 (every process)", -1],
    ["0 (the process group)", 0],
    ["1 (init)", 1],
    ["a float", 12.5],
  ])("never signals pid %s", async (_, pid) => {
    answer = () => ({ version: "0.1.0", pid, reload: reloadState });
    const r = io();
    expect(await run(["reload", "--url", url, "--timeout", "200ms"], r.io)).toBe(69);
    expect(r.killed).toEqual([]);
    expect(r.err()).toContain("HB_ERR_NOT_MONITOR");
  });

  it("never signals a process that is not an hb monitor", async () => {
    answer = () => ({ version: "0.1.0", pid: sleeper.pid, reload: reloadState });
    const r = io();
    expect(await run(["reload", "--url", url, "--timeout", "200ms"], r.io)).toBe(69);
    expect(r.killed).toEqual([]);
    expect(r.err()).toContain(`process ${sleeper.pid} is not an hb monitor`);
  });

  it("refuses when the endpoint's pid is not the --pid systemd gave", async () => {
    answer = () => ({ version: "0.1.0", pid: sleeper.pid, reload: reloadState });
    const r = io();
    expect(await run(["reload", "--url", url, "--pid", String(process.pid)], r.io)).toBe(69);
    expect(r.killed).toEqual([]);
  });

  it("polls the reload state only, never the node list", async () => {
    answer = () => ({ version: "0.1.0", pid: -1, reload: reloadState });
    await run(["reload", "--url", url], io().io);
    expect(asked).toEqual(["/status/reload"]);
  });

  it("recognises an hb monitor by its command line", () => {
    const script = fileURLToPath(new URL("../../src/bin/hb.ts", import.meta.url));
    const monitor = spawn(process.execPath, ["-e", "setTimeout(() => {}, 60000)", script, "monitor"], {
      stdio: "ignore",
    });
    try {
      // node -e CODE SCRIPT monitor: the command line has this hb's script followed by `monitor`.
      expect(notOurMonitor(monitor.pid!, [process.execPath, script])).toBeNull();
      expect(notOurMonitor(monitor.pid!, [process.execPath, "/usr/bin/true"])).toMatch(/not an hb monitor/);
    } finally {
      monitor.kill();
    }
  });
});

describe("hb status against whatever answers on the status port", () => {
  const ESC = "\x1b]0;owned\x07\x1b[2J";
  const doc = {
    counts: { new: 0, up: 1, late: 0, down: 1, left: 0, paused: 0 },
    nodes: [
      {
        node: `evil${ESC}`,
        state: "up",
        expected: true,
        lastSeen: 1,
        silentMs: 5,
        intervalMs: 1000,
        lateMs: 5000,
        timeoutMs: 10000,
        lossPct: 0,
        received: 1,
        lost: 0,
        restarts: 0,
        incarnation: 1,
        from: `10.0.0.1:1\u009b31m`,
      },
    ],
  };

  it("prints the table with control characters escaped", async () => {
    answer = () => doc;
    const r = io();
    expect(await run(["status", "--url", url], r.io)).toBe(1);
    expect(r.out()).toContain("evil\\x1b]0;owned\\x07\\x1b[2J");
    expect(r.out()).toContain("10.0.0.1:1\\x9b31m");
    expect(r.out()).not.toMatch(RAW_CONTROL);
  });

  it("prints --json with control characters escaped, and still as JSON", async () => {
    answer = () => doc;
    const r = io();
    await run(["status", "--json", "--url", url], r.io);
    expect(r.out()).not.toMatch(RAW_CONTROL);
    expect(JSON.parse(r.out())).toEqual(doc);
  });

  it("refuses an answer that is not a status document", async () => {
    answer = () => ({ counts: "lots", nodes: 5 });
    const r = io();
    expect(await run(["status", "--url", url], r.io)).toBe(69);
    expect(r.err()).toContain("did not answer with an hb status document");
  });

  it("passes --state, --node and --limit on as filters, and takes its exit code from the counts", async () => {
    answer = () => ({ ...doc, nodes: [] });
    const r = io();
    expect(await run(["status", "--url", url, "--state", "up", "--node", "a,b", "--limit", "3"], r.io)).toBe(
      1,
    );
    expect(asked).toEqual(["/status?state=up&node=a%2Cb&limit=3"]);
    expect(await run(["status", "--url", url, "--state", "asleep"], io().io)).toBe(64);
    expect(await run(["status", "--url", url, "--limit", "-2"], io().io)).toBe(64);
  });
});
