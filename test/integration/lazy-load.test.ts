// Each command loads only what it runs: `hb send` and `hb node` run on every node of a fleet and
// must not pay for the monitor, the YAML parser, the metrics library or a logger library (pino
// alone is some 8 MiB of a node's resident memory); `hb status` reads a document over HTTP and
// needs neither. Checked on the built executable with a module tracer, on real runs as well as
// on `--help` (which loads a command's module and returns).
import { spawn } from "node:child_process";
import { createSocket } from "node:dgram";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HB_BIN, TempDir } from "../support/hb-process.js";

const TRACER = fileURLToPath(new URL("../support/trace-loads.mjs", import.meta.url));
const dir = new TempDir();
/** Where the real runs send their datagrams; what arrives shows that they did run. */
const receiver = createSocket("udp4");
const received: Buffer[] = [];
let monitor = "";
beforeAll(async () => {
  receiver.on("message", (msg) => void received.push(msg));
  await new Promise<void>((resolve) => receiver.bind(0, "127.0.0.1", resolve));
  monitor = `127.0.0.1:${receiver.address().port}`;
});
afterAll(() => {
  receiver.close();
  dir.remove();
});

/** The module files `hb args` loads: run to its end, or until a stdout line contains `stopAt`
 * and then stopped with SIGTERM (for `hb node`, which runs until then). */
async function loads(args: string[], stopAt?: string): Promise<string[]> {
  const out = join(dir.path, `loads-${Math.random()}`);
  const child = spawn(process.execPath, ["--import", TRACER, HB_BIN, ...args], {
    env: { ...process.env, HB_TRACE_LOADS: out },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  child.stderr.on("data", (chunk: Buffer) => void (stderr += chunk.toString()));
  createInterface({ input: child.stdout }).on("line", (line) => {
    if (stopAt !== undefined && line.includes(stopAt)) child.kill("SIGTERM");
  });
  const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
  expect(code, stderr).toBe(0);
  return readFileSync(out, "utf8").trim().split("\n");
}

const matching = (files: string[], patterns: RegExp[]): string[] =>
  files.filter((f) => patterns.some((p) => p.test(f)));

const MONITOR_SIDE = [
  /\/dist\/monitor\//,
  /\/dist\/config\//,
  /\/node_modules\/yaml\//,
  /\/node_modules\/prom-client\//,
];
const LOGGER = [
  /\/node_modules\/pino\//,
  /\/node_modules\/sonic-boom\//,
  /\/node_modules\/thread-stream\//,
  /\/dist\/log\.js$/,
];

describe("lazy commands", () => {
  it.each([[["send", "--help"]], [["node", "--help"]], [["status", "--help"]]])(
    "hb %j loads nothing of the monitor, YAML or prom-client",
    async (args) => {
      const files = await loads(args);
      expect(files.some((f) => f.endsWith("/dist/bin/hb.js"))).toBe(true);
      expect(matching(files, MONITOR_SIDE)).toEqual([]);
    },
  );

  it("hb node, beating and logging until its SIGTERM, loads no pino, no sonic-boom and nothing of the monitor", async () => {
    const before = received.length;
    const files = await loads(
      ["node", "--id", "lazy-node", "--monitor", monitor, "--interval", "100ms"],
      '"event":"sender.started"',
    );
    expect(files.some((f) => f.endsWith("/dist/node/sender.js"))).toBe(true);
    expect(received.length).toBeGreaterThan(before);
    expect(matching(files, [...LOGGER, ...MONITOR_SIDE])).toEqual([]);
  });

  it("hb send, sending a heartbeat, loads no pino, no sonic-boom and nothing of the monitor", async () => {
    const before = received.length;
    const files = await loads(["send", "--id", "lazy-send", "--monitor", monitor]);
    for (let i = 0; i < 100 && received.length === before; i++) await new Promise((r) => setTimeout(r, 10));
    expect(received.length).toBeGreaterThan(before);
    expect(matching(files, [...LOGGER, ...MONITOR_SIDE])).toEqual([]);
  });

  it("hb status loads no sender", async () => {
    expect((await loads(["status", "--help"])).filter((f) => /\/dist\/node\//.test(f))).toEqual([]);
  });

  it("the tracer does see what a command loads (hb monitor --help loads the monitor and pino)", async () => {
    const files = await loads(["monitor", "--help"]);
    expect(files.some((f) => f.endsWith("/dist/monitor/monitor.js"))).toBe(true);
    expect(files.some((f) => /\/node_modules\/yaml\//.test(f))).toBe(true);
    expect(files.some((f) => /\/node_modules\/prom-client\//.test(f))).toBe(true);
    expect(matching(files, LOGGER).some((f) => /\/node_modules\/pino\//.test(f))).toBe(true);
  });
});
