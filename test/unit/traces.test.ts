// The traces shipped in bench/traces are what their generator writes: `npm run traces` makes them
// again byte for byte, and each is a trace hb reads, with the crashes its model promises.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { parseTrace } from "../../src/wire/trace.js";

const root = fileURLToPath(new URL("../..", import.meta.url));
const shipped = join(root, "bench/traces");
const NAMES = ["lan", "jitter-loss", "gc-pause", "monitor-stall"];
const out = mkdtempSync(join(tmpdir(), "hb-traces-"));
afterAll(() => rmSync(out, { recursive: true, force: true }));

describe("bench/traces", () => {
  it("are what `npm run traces` writes, byte for byte", () => {
    const r = spawnSync(process.execPath, ["--import", "tsx", "bench/traces/generate.ts", "--out", out], {
      cwd: root,
      encoding: "utf8",
      timeout: 60_000,
    });
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as {
      scripts: Record<string, string>;
    };
    expect(pkg.scripts.traces).toBe("tsx bench/traces/generate.ts");
    for (const name of NAMES) {
      const made = readFileSync(join(out, `${name}.csv`));
      expect(made.equals(readFileSync(join(shipped, `${name}.csv`))), name).toBe(true);
    }
  });

  it.each(NAMES)(
    "%s.csv reads as a trace of 20 nodes for 2 hours, 8 of them crashing, in under 3 MB",
    (name) => {
      const path = join(shipped, `${name}.csv`);
      expect(statSync(path).size).toBeLessThan(3 * 1024 * 1024);
      const trace = parseTrace(readFileSync(path, "utf8"));
      expect(trace.nodes).toHaveLength(20);
      expect(trace.endMs - trace.startMs).toBe(7_200_000);
      expect(trace.crashes.size).toBe(8);
      // A crashed node sends nothing after its crash: what arrives later was sent before it.
      for (const [node, at] of trace.crashes) {
        const n = trace.nodes.indexOf(node);
        let last = Number.NEGATIVE_INFINITY;
        for (let i = 0; i < trace.node.length; i++) if (trace.node[i] === n) last = trace.arrivalMs[i]!;
        expect(last, node).toBeLessThan(at + 1000);
      }
      if (name === "monitor-stall") expect(trace.stalls.length).toBeGreaterThan(0);
    },
  );
});
