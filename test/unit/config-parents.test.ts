// `parents`: which listed nodes a node depends on, from its own list or the defaults'; every
// parent a listed node, no node its own parent, no cycle, each problem at its line and column;
// each parent's children found at once; and the same through another thread or two halves.
import { describe, expect, it } from "vitest";
import { parseConfig } from "../../src/config/parse.js";
import { mergeHalves, splitNodes } from "../../src/config/split.js";
import { decodeConfig, encodeConfig } from "../../src/config/transfer.js";
import type { Config } from "../../src/config/types.js";
import { ok, problems } from "../support/config-parse.js";

const parentsOf = (c: Config): Record<string, readonly string[]> =>
  Object.fromEntries([...c.nodes.values()].map((n) => [n.id, n.parents]));

describe("a node's parents", () => {
  it("are its own list, else the defaults'; an empty list of its own means none", () => {
    const c = ok(
      "defaults: { parents: [sw-1] }\nnodes: { sw-1: {}, sw-3: {}, hv-7: {}, web-1: {}, web-7: { parents: [sw-3, hv-7] }, db-1: { parents: [] } }",
    );
    expect(parentsOf(c)).toEqual({
      "sw-1": [],
      "sw-3": ["sw-1"],
      "hv-7": ["sw-1"],
      "web-1": ["sw-1"],
      "web-7": ["sw-3", "hv-7"],
      "db-1": [],
    });
  });

  it("never make a default parent depend on itself or on another default parent", () => {
    const c = ok("defaults: { parents: [sw-a, sw-b] }\nnodes: { sw-a: {}, sw-b: {}, web-1: {} }");
    expect(parentsOf(c)).toEqual({ "sw-a": [], "sw-b": [], "web-1": ["sw-a", "sw-b"] });
    // A default parent can still be given parents of its own.
    const chained = ok(
      "defaults: { parents: [sw-a] }\nnodes: { core: { parents: [] }, sw-a: { parents: [core] }, web-1: {} }",
    );
    expect(parentsOf(chained)).toEqual({ core: [], "sw-a": ["core"], "web-1": ["sw-a"] });
  });

  it("are an empty, frozen list for every node that has none", () => {
    const c = ok("nodes: { a: {}, b: { parents: [a] } }");
    expect(c.nodes.get("a")!.parents).toEqual([]);
    expect(Object.isFrozen(c.nodes.get("a")!.parents)).toBe(true);
    expect(Object.isFrozen(c.nodes.get("b")!.parents)).toBe(true);
  });

  it("name node ids as written: an unquoted 007 is node 007", () => {
    expect(ok('nodes: { 007: {}, "7": {}, a: { parents: [007, 7] } }').nodes.get("a")!.parents).toEqual([
      "007",
      "7",
    ]);
  });

  it("are shared between nodes that list the same ones, as the defaults' are", () => {
    const c = ok(
      "defaults: { parents: [sw] }\nnodes: { sw: {}, a: {}, b: {}, c: { parents: [sw] }, d: { parents: [sw] } }",
    );
    expect(c.nodes.get("a")!.parents).toBe(c.nodes.get("b")!.parents);
    expect(c.nodes.get("c")!.parents).toBe(c.nodes.get("d")!.parents);
  });
});

describe("children", () => {
  it("lists, for each parent, the listed nodes that have it as a parent, sorted by id", () => {
    const c = ok(
      "defaults: { parents: [sw-1] }\nnodes: { sw-1: {}, web-2: {}, web-10: { parents: [sw-1, hv-7] }, hv-7: {}, db-1: { paused: true, parents: [hv-7] }, api: { parents: [] } }",
    );
    expect(c.children).toEqual(
      new Map([
        ["sw-1", ["hv-7", "web-10", "web-2"]],
        ["hv-7", ["db-1", "web-10"]],
      ]),
    );
    expect(Object.isFrozen(c.children.get("sw-1"))).toBe(true);
    expect(c.children.get("api")).toBeUndefined();
  });

  it("is empty when no node has parents", () => {
    expect(ok("nodes: { a: {}, b: {} }").children.size).toBe(0);
    expect(ok("").children.size).toBe(0);
  });
});

describe("problems with parents", () => {
  it("reports a parent that is not a listed node at its entry, and a defaults' one once", () => {
    expect(
      problems(
        [
          "defaults: { parents: [ghost] }", // 1
          "nodes:", //                         2
          "  a: {}", //                        3
          "  b: {}", //                        4
          "  web-7: { parents: [a, sw-3] }", // 5
        ].join("\n"),
      ),
    ).toEqual([
      'hb.yaml:1:23: defaults.parents: unknown parent "ghost" (not a node under nodes)',
      'hb.yaml:5:25: nodes.web-7.parents: unknown parent "sw-3" (not a node under nodes)',
    ]);
  });

  it("refuses a node as its own parent, a parent listed twice, a non-id and a non-list", () => {
    expect(
      problems(
        [
          "nodes:", //                                      1
          "  a: { parents: [a] }", //                       2
          "  b: { parents: [a, a] }", //                    3
          "  c: { parents: ['bad id', {x: 1}] }", //        4
          "  d: { parents: a }", //                         5
          "defaults: { parents: [a, a] }", //               6
        ].join("\n"),
      ),
    ).toEqual([
      "hb.yaml:2:18: nodes.a.parents: a node cannot be its own parent",
      'hb.yaml:3:21: nodes.b.parents: "a" is listed twice',
      'hb.yaml:4:18: nodes.c.parents: "bad id" is not a node id',
      "hb.yaml:4:28: nodes.c.parents must be a list of names, e.g. [sw-3, hv-7]",
      "hb.yaml:5:17: nodes.d.parents must be a list, e.g. [sw-3, hv-7]",
      'hb.yaml:6:26: defaults.parents: "a" is listed twice',
    ]);
  });

  it("reports a dependency cycle with its chain, at the entry that closes it", () => {
    expect(
      problems(
        [
          "nodes:", //                  1
          "  a: { parents: [b] }", //   2
          "  b: { parents: [c] }", //   3
          "  c: { parents: [x, a] }", // 4
          "  x: {}", //                 5
        ].join("\n"),
      ),
    ).toEqual(["hb.yaml:4:21: dependency cycle: a -> b -> c -> a"]);
    expect(problems("nodes:\n  a: { parents: [b] }\n  b: { parents: [a] }")).toEqual([
      "hb.yaml:3:18: dependency cycle: a -> b -> a",
    ]);
  });

  it("reports a cycle closed by the defaults at the defaults' entry", () => {
    expect(problems("defaults: { parents: [sw] }\nnodes:\n  sw: { parents: [a] }\n  a: {}")).toEqual([
      "hb.yaml:1:23: dependency cycle: sw -> a -> sw",
    ]);
    expect(problems("defaults: { parents: [sw] }\nnodes:\n  a: {}\n  sw: { parents: [a] }")).toEqual([
      "hb.yaml:4:19: dependency cycle: a -> sw -> a",
    ]);
  });

  it("finds no cycle where two paths meet (a diamond)", () => {
    const c = ok(
      "nodes: { top: {}, l: { parents: [top] }, r: { parents: [top] }, bottom: { parents: [l, r] } }",
    );
    expect(c.children.get("top")).toEqual(["l", "r"]);
  });

  it("follows a chain of 20 000 nodes without running out of stack", () => {
    const lines = ["nodes:", "  n0: { parents: [n19999] }"];
    for (let i = 1; i < 20_000; i++) lines.push(`  n${i}: { parents: [n${i - 1}] }`);
    const found = problems(lines.join("\n"));
    expect(found).toHaveLength(1);
    // Closed by n1's entry; the chain shown in short.
    expect(found[0]).toBe(
      "hb.yaml:3:19: dependency cycle: n0 -> n19999 -> n19998 -> n19997 -> n19996 -> n19995 -> (19989 more) -> n5 -> n4 -> n3 -> n2 -> n1 -> n0",
    );
    lines[1] = "  n0: {}";
    expect(ok(lines.join("\n")).children.get("n0")).toEqual(["n1"]);
  });
});

describe("parents on another thread and in two halves", () => {
  const text = [
    "defaults: { parents: [sw-1] }",
    "nodes:",
    "  sw-1: {}",
    "  a: { parents: [z] }",
    "  b: {}",
    "  c: { parents: [] }",
    "  y: { parents: [sw-1, a] }",
    "  z: {}",
  ].join("\n");

  it("come back equal from another thread, the unchanged nodes the same objects", async () => {
    const config = ok(text);
    const back = await decodeConfig(encodeConfig(config), 2, () => Promise.resolve());
    expect(back).toEqual(config);
    expect(back.children).toEqual(config.children);
    expect(back.nodes.get("b")!.parents).toBe(back.nodes.get("z")!.parents);
    const again = await decodeConfig(encodeConfig(config), 2, () => Promise.resolve(), back.nodes);
    for (const id of config.nodes.keys()) expect(again.nodes.get(id)).toBe(back.nodes.get(id));
  });

  function halves(yaml: string): Config | null {
    const split = splitNodes(yaml);
    if (split === null) throw new Error("not split");
    const [first, second] = split.map((half) => parseConfig(half, "hb.yaml", { half: true }));
    if (!first!.ok || !second!.ok) throw new Error("a half has problems");
    return mergeHalves(first!.config, second!.config, [...first!.unresolved!, ...second!.unresolved!]);
  }

  it("give what one parse gives when a parent is listed in the other half", () => {
    expect(halves(text)).toEqual(ok(text));
  });

  it("are not merged when a parent is in neither half or the halves make a cycle (the whole file says so)", () => {
    expect(halves(text.replace("a: { parents: [z] }", "a: { parents: [ghost] }"))).toBeNull();
    expect(halves(text.replace("z: {}", "z: { parents: [a] }"))).toBeNull();
    expect(problems(text.replace("z: {}", "z: { parents: [a] }"))).toEqual([
      "hb.yaml:8:18: dependency cycle: a -> z -> a",
    ]);
  });
});
