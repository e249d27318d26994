// `hb replay` as an operator runs it: the figures of a shipped trace as a table and as JSON, the
// sweep with its plot, and the exit codes of a bad command line, trace or config.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { TempDir, runHb } from "../support/hb-process.js";

const dir = new TempDir();
afterAll(() => dir.remove());
const path = (p: string): string => fileURLToPath(new URL(`../../${p}`, import.meta.url));
const TRACE = path("bench/traces/jitter-loss.csv");
const CONFIG = path("bench/traces/heartbeat.yaml");

interface Document {
  trace: { file: string; nodes: number; rows: number };
  total: { nodes: number; crashes: number; detected: number; mistakes: number; queryAccuracy: number };
  nodes: { node: string; crash: { atMs: number; marked: boolean } | null }[];
  transitions: { node: string; state: string; at: number }[];
}

describe("hb replay", () => {
  it("prints the figures of the config's setting and of each node", () => {
    const r = runHb(["replay", TRACE, "--config", CONFIG]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(
      /^setting +nodes +crashes detected +T_D mean +T_D p99 +T_D max +mistakes +λ_M\/day +T_M +P_A +late$/m,
    );
    expect(r.stdout).toMatch(/^config +20 +8\/8 /m);
    expect(r.stdout).toMatch(/^n01 +1s /m);
  });

  it("gives, with --json, the figures and every judged transition on the trace's clock", () => {
    const r = runHb(["replay", TRACE, "--config", CONFIG, "--json"]);
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout) as Document;
    expect(doc.trace).toMatchObject({ file: TRACE, nodes: 20 });
    expect(doc.total).toMatchObject({ nodes: 20, crashes: 8, detected: 8 });
    const downs = doc.transitions.filter((t) => t.state === "down");
    // Each crashed node is last judged down after its crash, and every other down is a mistake.
    for (const n of doc.nodes.filter((x) => x.crash !== null))
      expect(downs.filter((t) => t.node === n.node).at(-1)!.at).toBeGreaterThan(n.crash!.atMs);
    expect(downs.length).toBe(8 + doc.total.mistakes);
    expect(Object.keys(doc.transitions[0]!).sort()).toEqual(["at", "node", "state"]);
  });

  it("scores a range of fixed and φ settings with --sweep, and writes the plot", () => {
    const plot = dir.file("plot.svg", "");
    const r = runHb(["replay", TRACE, "--config", CONFIG, "--sweep", "--plot", plot]);
    expect(r.code).toBe(0);
    for (const row of ["config", "fixed 1.5×", "fixed 10×", "fixed 20×", "φ 1", "φ 16"])
      expect(r.stdout).toMatch(new RegExp(`^${row} +20 `, "m"));
    expect(r.stdout).toContain(`plot: ${plot}`);
    const svg = readFileSync(plot, "utf8");
    expect(svg).toMatch(/^<\?xml [^>]*\?>\n<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/);
    expect(svg).toContain("jitter-loss.csv");
  });

  it("exits 64 on a bad command line", () => {
    expect(runHb(["replay", "--config", CONFIG]).code).toBe(64);
    expect(runHb(["replay", TRACE]).stderr).toContain("--config FILE is required");
    expect(runHb(["replay", TRACE, "--config", CONFIG, "--plot", "x.svg"]).code).toBe(64);
    expect(runHb(["replay", TRACE, "--config", CONFIG, "--crash-silence", "soon"]).code).toBe(64);
  });

  it("exits 65 on a malformed trace, naming its line, and 66 on a missing one", () => {
    const bad = dir.file(
      "bad.csv",
      "# hb-trace 1\n# start_ms 0\n# end_ms 10\n# interval_ms 1\nnode,arrival_ms\na,5\nb,3\n",
    );
    const r = runHb(["replay", bad, "--config", CONFIG]);
    expect(r.code).toBe(65);
    expect(r.stderr).toContain(`${bad}:7: arrivals must not go back in time`);
    expect(r.stderr).toContain("[HB_ERR_TRACE]");
    expect(runHb(["replay", dir.file("x", "") + ".missing", "--config", CONFIG]).code).toBe(66);
  });

  it("exits 78 on a bad config, each problem at file:line:col, and reads no key file", () => {
    const broken = dir.file("broken.yaml", "defaults:\n  timeout: 1s\n");
    const r = runHb(["replay", TRACE, "--config", broken]);
    expect(r.code).toBe(78);
    expect(r.stderr).toContain(`${broken}:1:1: defaults: timeout (1s) must be more than 2 x interval (1s)`);
    const keyed = dir.file("keyed.yaml", "keys: { k1: /nonexistent/k1 }\ndefaults: { interval: 1s }\n");
    expect(runHb(["replay", TRACE, "--config", keyed]).code).toBe(0);
  });
});
