// Each command loads only what it runs: `hb send` and `hb node` run on every node of a fleet and
// must not pay for the monitor, the YAML parser or the metrics library; `hb status` reads a
// document over HTTP and needs neither. Checked on the built executable with a module tracer.
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { HB_BIN, TempDir } from "../support/hb-process.js";

const TRACER = fileURLToPath(new URL("../support/trace-loads.mjs", import.meta.url));
const dir = new TempDir();
afterAll(() => dir.remove());

function loads(args: string[]): string[] {
  const out = join(dir.path, `loads-${Math.random()}`);
  const r = spawnSync(process.execPath, ["--import", TRACER, HB_BIN, ...args], {
    env: { ...process.env, HB_TRACE_LOADS: out },
    encoding: "utf8",
  });
  expect(r.status, r.stderr).toBe(0);
  return readFileSync(out, "utf8").trim().split("\n");
}

const MONITOR_SIDE = [
  /\/dist\/monitor\//,
  /\/dist\/config\//,
  /\/node_modules\/yaml\//,
  /\/node_modules\/prom-client\//,
];

describe("lazy commands", () => {
  it.each([[["send", "--help"]], [["node", "--help"]], [["status", "--help"]]])(
    "hb %j loads nothing of the monitor, YAML or prom-client",
    (args) => {
      const files = loads(args);
      expect(files.some((f) => f.endsWith("/dist/bin/hb.js"))).toBe(true);
      for (const pattern of MONITOR_SIDE) expect(files.filter((f) => pattern.test(f))).toEqual([]);
    },
  );

  it("hb send loads no logger, and hb status no sender", () => {
    expect(loads(["send", "--help"]).filter((f) => /\/node_modules\/pino\/|\/dist\/log\.js/.test(f))).toEqual(
      [],
    );
    expect(loads(["status", "--help"]).filter((f) => /\/dist\/node\//.test(f))).toEqual([]);
  });

  it("the tracer does see what a command loads (hb monitor --help loads the monitor)", () => {
    const files = loads(["monitor", "--help"]);
    expect(files.some((f) => f.endsWith("/dist/monitor/monitor.js"))).toBe(true);
    expect(files.some((f) => /\/node_modules\/yaml\//.test(f))).toBe(true);
    expect(files.some((f) => /\/node_modules\/prom-client\//.test(f))).toBe(true);
  });
});
