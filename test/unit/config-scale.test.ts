// A large config parses in time proportional to its size: 100 000 listed nodes once took minutes
// (every key of a mapping was compared with every other). Measured as a ratio of two sizes in
// one run, so that a slow or busy machine changes both sides alike. And a large config cut in
// two halves, to be parsed on two threads, gives exactly what one parse of it gives.
import { describe, expect, it } from "vitest";
import { diffConfigs } from "../../src/config/diff.js";
import { parseConfig } from "../../src/config/parse.js";
import { mergeHalves, splitNodes } from "../../src/config/split.js";
import { formatProblem, type Config, type ConfigProblem, type ParseResult } from "../../src/config/types.js";

function fleet(count: number, extra = ""): string {
  const lines = ["defaults: { interval: 1s }", "keys: { k1: /etc/hb/keys/k1 }", "auth: optional", "nodes:"];
  for (let i = 0; i < count; i++) lines.push(i % 10 === 0 ? `  n${i}: { keys: [k1] }` : `  n${i}: {}`);
  return lines.join("\n") + "\n" + extra;
}

/** The fastest of a few parses, in milliseconds. */
function parseMs(text: string, runs: number): number {
  let best = Number.POSITIVE_INFINITY;
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    const r = parseConfig(text, "fleet.yaml");
    best = Math.min(best, performance.now() - t0);
    expect(r.ok).toBe(true);
  }
  return best;
}

describe("a large config", () => {
  it("parses 50 000 nodes in less than 10 x the time of 10 000 (linear: 5 x; pairwise: 25 x)", () => {
    parseMs(fleet(2000), 2); // warm up the compiler first
    const small = parseMs(fleet(10_000), 3);
    const large = parseMs(fleet(50_000), 3);
    expect(large / small).toBeLessThan(10);
  }, 120_000);

  it("still reports a node listed twice among 100 000, with its line and column", () => {
    const r = parseConfig(fleet(100_000, "  n99999: {}\n"), "fleet.yaml");
    expect(r.ok ? [] : r.problems.map((p) => formatProblem("fleet.yaml", p))).toEqual([
      'fleet.yaml:100005:3: duplicate key "n99999" in nodes: map keys must be unique',
    ]);
  }, 60_000);
});

describe("a large config parsed in two halves", () => {
  function halves(text: string): [ParseResult, ParseResult] {
    const split = splitNodes(text);
    if (split === null) throw new Error("not split");
    return [
      parseConfig(split[0], "fleet.yaml", { half: true }),
      parseConfig(split[1], "fleet.yaml", { half: true }),
    ];
  }
  function merged(text: string): Config | null {
    const [first, second] = halves(text);
    if (!first.ok || !second.ok) throw new Error("a half has problems");
    return mergeHalves(first.config, second.config, [...first.unresolved!, ...second.unresolved!]);
  }

  const block = [
    "# a fleet",
    "listen: 127.0.0.1:0",
    "keys: { k1: /etc/hb/keys/k1 }",
    "defaults:",
    "  interval: 1s",
    "nodes: # the expected ones",
    "",
    "  a: {}",
    "  # maintenance window",
    "  b:",
    "    paused: true",
    "    keys: [k1]",
    "",
    "  c: { interval: 2s,",
    "       late: 3s }",
    "  007: {}",
    '  "e": { timeout: 1h }', // the largest timeout, in the second half: startup_grace follows it
    "  f:",
    "    interval: 100ms",
    "auth: optional",
    "unknown_nodes: ignore",
  ].join("\n");

  it.each([
    ["block and flow entries, comments, blank lines, keys after the nodes", block],
    ["CRLF line ends", block.replaceAll("\n", "\r\n")],
    ["a generated fleet", fleet(1000)],
    [
      "parents in the other half, and a recurring window",
      `${fleet(1000).replace("defaults: { interval: 1s }", "defaults: { interval: 1s, parents: [n999] }").replace("  n1: {}", "  n1: { parents: [n998, n2] }")}maintenance:\n  windows: [{ name: w, match: [n1*], schedule: "daily 01:00-02:00", timezone: UTC }]\n`,
    ],
  ])("gives what one parse gives: %s", (_, text) => {
    const whole = parseConfig(text, "fleet.yaml");
    if (!whole.ok) throw new Error(whole.problems.map((p) => formatProblem("fleet.yaml", p)).join("\n"));
    const both = merged(text);
    expect(both).toEqual(whole.config);
    expect([...both!.nodes.keys()]).toEqual([...whole.config.nodes.keys()]);
    expect(diffConfigs(whole.config, both!)).toEqual([]);
  });

  it("keeps every line where it was, so that a problem in a half is at its place in the file", () => {
    const text = fleet(100).replace("  n81: {}", "  n81: { late: never }");
    const [first, second] = halves(text);
    expect(first.ok).toBe(true);
    expect(second.ok ? [] : second.problems.map((p) => formatProblem("fleet.yaml", p))).toEqual(
      (parseConfig(text, "fleet.yaml") as { problems: ConfigProblem[] }).problems.map((p) =>
        formatProblem("fleet.yaml", p),
      ),
    );
  });

  it("does not merge halves that list the same node (the whole file reports it)", () => {
    expect(merged(fleet(100, "  n1: {}\n"))).toBeNull();
  });

  it("is not used where the halves could depend on each other, or nothing can be cut", () => {
    expect(splitNodes(`${fleet(10)}  x: &a { interval: 2s }\n  y: *a\n`)).toBeNull();
    expect(splitNodes("nodes: { a: {}, b: {} }\n")).toBeNull();
    expect(splitNodes("listen: 127.0.0.1:1\n")).toBeNull();
    expect(splitNodes("nodes:\n  a: {}\n")).toBeNull();
  });
});
