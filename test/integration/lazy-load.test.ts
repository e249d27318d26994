// Each command evaluates only what it runs: `hb send` and `hb node` run on every node of a fleet
// and must not pay for the monitor, the YAML parser, the metrics library or a logger library (pino
// alone is some 8 MiB of a node's resident memory); `hb status` reads a document over HTTP and
// needs neither. Checked on the shipped bundle, where each module is a function that runs when the
// module is first needed: V8's coverage tells which of those ran, on real runs as well as on
// `--help` (which loads a command's module and returns).
import { spawn } from "node:child_process";
import { createSocket } from "node:dgram";
import { mkdirSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HB_BIN, TempDir } from "../support/hb-process.js";

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

interface Coverage {
  result: { url: string; functions: { functionName: string; ranges: { count: number }[] }[] }[];
}

/** The modules of the bundle that ran in a coverage directory, by their source path
 * (`src/cli/send.ts`, `node_modules/yaml/dist/index.js`). */
function modulesRun(coverageDir: string): string[] {
  const bundle = pathToFileURL(HB_BIN).href;
  const ran = new Set<string>();
  for (const file of readdirSync(coverageDir)) {
    const coverage = JSON.parse(readFileSync(join(coverageDir, file), "utf8")) as Coverage;
    for (const script of coverage.result.filter((s) => s.url === bundle))
      for (const fn of script.functions)
        if (/^(src|node_modules)\//.test(fn.functionName) && fn.ranges[0]!.count > 0)
          ran.add(fn.functionName);
  }
  return [...ran];
}

/** The modules `hb args` evaluates: run to its end, or until a stdout line contains `stopAt`
 * and then stopped with SIGTERM (for `hb node`, which runs until then). */
async function loads(args: string[], stopAt?: string): Promise<string[]> {
  const out = join(dir.path, `coverage-${Math.random()}`);
  mkdirSync(out);
  const child = spawn(process.execPath, [HB_BIN, ...args], {
    env: { ...process.env, NODE_V8_COVERAGE: out },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  child.stderr.on("data", (chunk: Buffer) => void (stderr += chunk.toString()));
  createInterface({ input: child.stdout }).on("line", (line) => {
    if (stopAt !== undefined && line.includes(stopAt)) child.kill("SIGTERM");
  });
  const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
  expect(code, stderr).toBe(0);
  return modulesRun(out);
}

const matching = (files: string[], patterns: RegExp[]): string[] =>
  files.filter((f) => patterns.some((p) => p.test(f)));

const MONITOR_SIDE = [
  /^src\/monitor\//,
  /^src\/config\//,
  /^node_modules\/yaml\//,
  /^node_modules\/prom-client\//,
];
const LOGGER = [
  /^node_modules\/pino\//,
  /^node_modules\/sonic-boom\//,
  /^node_modules\/thread-stream\//,
  /^src\/log\.ts$/,
];

describe("lazy commands", () => {
  it.each([[["send", "--help"]], [["node", "--help"]], [["status", "--help"]]])(
    "hb %j loads nothing of the monitor, YAML or prom-client",
    async (args) => {
      const files = await loads(args);
      expect(files).toContain(`src/cli/${args[0]}.ts`);
      expect(matching(files, MONITOR_SIDE)).toEqual([]);
    },
  );

  it("hb node, beating and logging until its SIGTERM, loads no pino, no sonic-boom and nothing of the monitor", async () => {
    const before = received.length;
    const files = await loads(
      ["node", "--id", "lazy-node", "--monitor", monitor, "--interval", "100ms"],
      '"event":"sender.started"',
    );
    expect(files).toContain("src/node/sender.ts");
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
    expect((await loads(["status", "--help"])).filter((f) => /^src\/node\//.test(f))).toEqual([]);
  });

  it("the coverage does see what a command evaluates (hb monitor --help evaluates the monitor and pino)", async () => {
    const files = await loads(["monitor", "--help"]);
    expect(files).toContain("src/monitor/monitor.ts");
    expect(files.some((f) => /^node_modules\/yaml\//.test(f))).toBe(true);
    expect(files.some((f) => /^node_modules\/prom-client\//.test(f))).toBe(true);
    expect(matching(files, LOGGER).some((f) => /^node_modules\/pino\//.test(f))).toBe(true);
  });
});
