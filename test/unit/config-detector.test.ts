// The `detector:` key of defaults and nodes: the fixed thresholds or the φ-accrual detector with
// its settings, inherited whole, checked with file:line:col, shared as one object per setting,
// and the same through every way a config is loaded (another thread, two halves) and reloaded.
import { describe, expect, it } from "vitest";
import { diffConfigs } from "../../src/config/diff.js";
import { CONFIG_KEYS, parseConfig } from "../../src/config/parse.js";
import { mergeHalves, splitNodes } from "../../src/config/split.js";
import { decodeConfig, encodeConfig } from "../../src/config/transfer.js";
import { DEFAULT_PHI, type Config } from "../../src/config/types.js";
import { ok, problems } from "../support/config-parse.js";

const PHI_5 = { threshold: 5, lateThreshold: 3, minStdMs: 100, acceptablePauseMs: 0, window: 1000 };

describe("reading detector", () => {
  it("is the fixed detector when nothing sets it", () => {
    const c = ok("nodes: { a: {} }");
    expect(c.defaults.phi).toBeNull();
    expect(c.nodes.get("a")!.phi).toBeNull();
  });

  it("fills every setting kind phi leaves out with the defaults", () => {
    const c = ok("defaults: { detector: { kind: phi } }");
    expect(c.defaults.phi).toBe(DEFAULT_PHI);
    expect(DEFAULT_PHI).toEqual({
      threshold: 8,
      lateThreshold: 3,
      minStdMs: 100,
      acceptablePauseMs: 0,
      window: 1000,
    });
  });

  it("reads every setting, with durations as elsewhere in the config", () => {
    const c = ok(
      "nodes:\n  a: { detector: { kind: phi, threshold: 12.5, late_threshold: 0.5, min_std: 1.5s, acceptable_pause: 3s, window: 2 } }",
    );
    expect(c.nodes.get("a")!.phi).toEqual({
      threshold: 12.5,
      lateThreshold: 0.5,
      minStdMs: 1500,
      acceptablePauseMs: 3000,
      window: 2,
    });
    expect(Object.isFrozen(c.nodes.get("a")!.phi)).toBe(true);
  });

  it("takes the largest threshold and window there are", () => {
    const c = ok(
      "defaults: { detector: { kind: phi, threshold: 100, late_threshold: 99.9, window: 100000 } }",
    );
    expect(c.defaults.phi).toMatchObject({ threshold: 100, lateThreshold: 99.9, window: 100_000 });
  });

  it("leaves the fixed thresholds as they are: they stay the detector's upper bounds", () => {
    const c = ok("nodes: { a: { interval: 500ms, detector: { kind: phi } } }");
    expect(c.nodes.get("a")).toMatchObject({
      intervalMs: 500,
      timeoutMs: 5000,
      lateMs: 2500,
      phi: DEFAULT_PHI,
    });
  });

  it("is listed among the config keys, with each of its settings, in defaults and in nodes", () => {
    for (const level of ["defaults", "nodes.ID"]) {
      expect(CONFIG_KEYS).toContain(`${level}.detector`);
      for (const key of ["kind", "threshold", "late_threshold", "min_std", "acceptable_pause", "window"])
        expect(CONFIG_KEYS).toContain(`${level}.detector.${key}`);
    }
  });
});

describe("inheriting detector", () => {
  const c = ok(
    [
      "defaults: { detector: { kind: phi, threshold: 5, window: 50 } }",
      "nodes:",
      "  a: {}",
      "  b: { detector: { kind: fixed } }",
      "  c: { detector: { kind: phi, min_std: 200ms } }",
      "  d: { detector: { kind: phi, threshold: 5, window: 50 } }",
      "  e: { interval: 2s }",
      "  f: { detector: { kind: phi, min_std: 200ms } }",
      "  g: { detector: { kind: phi } }",
    ].join("\n"),
  );
  const phi = (id: string) => c.nodes.get(id)!.phi;

  it("gives a node that does not set it the defaults' detector", () => {
    expect(c.defaults.phi).toEqual({ ...PHI_5, window: 50 });
    expect(phi("a")).toEqual(c.defaults.phi);
    expect(phi("e")).toEqual(c.defaults.phi);
  });

  it("replaces the defaults' detector whole with a node's own: what it leaves out is not the defaults'", () => {
    expect(phi("b")).toBeNull();
    expect(phi("c")).toEqual({ ...DEFAULT_PHI, minStdMs: 200 });
    expect(phi("g")).toBe(DEFAULT_PHI);
  });

  it("shares one frozen object per setting: the defaults' with the nodes that inherit or repeat it", () => {
    expect(Object.isFrozen(c.defaults.phi)).toBe(true);
    for (const id of ["a", "d", "e"]) expect(phi(id), id).toBe(c.defaults.phi);
    expect(phi("f")).toBe(phi("c"));
  });

  it("uses a kind fixed in defaults as the fixed detector, which a node may replace", () => {
    const fixed = ok(
      "defaults: { detector: { kind: fixed } }\nnodes: { a: {}, b: { detector: { kind: phi } } }",
    );
    expect(fixed.defaults.phi).toBeNull();
    expect(fixed.nodes.get("a")!.phi).toBeNull();
    expect(fixed.nodes.get("b")!.phi).toBe(DEFAULT_PHI);
  });
});

describe("problems in detector", () => {
  it.each([
    [
      "a detector that is not a mapping",
      "nodes:\n  a: { detector: phi }",
      "hb.yaml:2:18: nodes.a.detector must be a mapping with a kind, e.g. { kind: phi, threshold: 8 } or { kind: fixed }",
    ],
    [
      "no kind",
      "nodes:\n  a: { detector: { threshold: 8 } }",
      "hb.yaml:2:8: nodes.a.detector needs kind: fixed or phi",
    ],
    [
      "a bad kind",
      "defaults:\n  detector: { kind: adaptive }",
      "hb.yaml:2:21: defaults.detector.kind must be one of: fixed, phi",
    ],
    [
      "an unknown key",
      "nodes:\n  a: { detector: { kind: phi, treshold: 8 } }",
      'hb.yaml:2:31: unknown key "treshold" in nodes.a.detector (expected one of: kind, threshold, late_threshold, min_std, acceptable_pause, window)',
    ],
    [
      "a setting of kind fixed",
      "nodes:\n  a: { detector: { kind: fixed, window: 10 } }",
      "hb.yaml:2:33: nodes.a.detector.window is for kind: phi (kind fixed has no settings)",
    ],
    [
      "a threshold that is not a number",
      "nodes:\n  a: { detector: { kind: phi, threshold: '8' } }",
      "hb.yaml:2:42: nodes.a.detector.threshold must be a number",
    ],
    [
      "a threshold of 0",
      "nodes:\n  a: { detector: { kind: phi, threshold: 0 } }",
      "hb.yaml:2:42: nodes.a.detector.threshold must be more than 0",
    ],
    [
      "a threshold above 100",
      "nodes:\n  a: { detector: { kind: phi, threshold: 101 } }",
      "hb.yaml:2:42: nodes.a.detector.threshold must be at most 100 (phi 100 is a 1e-100 chance that a heartbeat this late still comes)",
    ],
    [
      "a negative late_threshold",
      "nodes:\n  a: { detector: { kind: phi, late_threshold: 0.2 } }",
      "hb.yaml:2:47: nodes.a.detector.late_threshold must be at least 0.5 (φ is 0.3 at the mean interval)",
    ],
    [
      "a late_threshold that is not a number",
      "nodes:\n  a: { detector: { kind: phi, late_threshold: .inf } }",
      "hb.yaml:2:47: nodes.a.detector.late_threshold must be a number",
    ],
    [
      "a late_threshold equal to the threshold",
      "nodes:\n  a: { detector: { kind: phi, threshold: 4, late_threshold: 4 } }",
      "hb.yaml:2:61: nodes.a.detector: late_threshold (4) must be less than threshold (4)",
    ],
    [
      "a threshold below the default late_threshold",
      "defaults:\n  detector: { kind: phi, threshold: 2 }",
      "hb.yaml:2:37: defaults.detector: late_threshold (3, the default) must be less than threshold (2)",
    ],
    [
      "a late_threshold above the default threshold",
      "nodes:\n  a: { detector: { kind: phi, late_threshold: 9 } }",
      "hb.yaml:2:47: nodes.a.detector: late_threshold (9) must be less than threshold (8, the default)",
    ],
    [
      "a min_std of 0",
      "nodes:\n  a: { detector: { kind: phi, min_std: 0ms } }",
      'hb.yaml:2:40: nodes.a.detector.min_std: "0ms" is not a positive duration (e.g. 250ms, 1s, 1.5s, 2m)',
    ],
    [
      "a min_std without a unit",
      "nodes:\n  a: { detector: { kind: phi, min_std: 100 } }",
      'hb.yaml:2:40: nodes.a.detector.min_std must be a duration with a unit, e.g. "1s" or "250ms"',
    ],
    [
      "an acceptable_pause that is not a duration",
      "nodes:\n  a: { detector: { kind: phi, acceptable_pause: -3s } }",
      'hb.yaml:2:49: nodes.a.detector.acceptable_pause: "-3s" is not a duration (e.g. 0s, 250ms, 1s, 1.5s, 2m)',
    ],
    [
      "a window of 1",
      "nodes:\n  a: { detector: { kind: phi, window: 1 } }",
      "hb.yaml:2:39: nodes.a.detector.window must be a whole number from 2 to 100000",
    ],
    [
      "a window above 100 000",
      "nodes:\n  a: { detector: { kind: phi, window: 100001 } }",
      "hb.yaml:2:39: nodes.a.detector.window must be a whole number from 2 to 100000",
    ],
    [
      "a window that is not whole",
      "nodes:\n  a: { detector: { kind: phi, window: 2.5 } }",
      "hb.yaml:2:39: nodes.a.detector.window must be a whole number from 2 to 100000",
    ],
  ])("reports %s where it is written", (_, yaml, problem) => {
    expect(problems(yaml)).toEqual([problem]);
  });

  it("accepts an acceptable_pause of 0", () => {
    expect(ok("defaults: { detector: { kind: phi, acceptable_pause: 0s } }").defaults.phi).toBe(DEFAULT_PHI);
  });

  it("reports every problem at once, in order, also those of a bad kind's other keys", () => {
    expect(
      problems(
        [
          "defaults:", //                                                               1
          "  detector: { kind: phi, threshold: 200, window: 1 }", //                    2
          "nodes:", //                                                                  3
          "  a: { detector: { kind: sometimes, min_std: 0s } }", //                     4
          "  b: { detector: { kind: fixed, threshold: 8, late_threshold: 3 } }", //     5
          "  c: { late: 1s, detector: { kind: phi, window: 10, colour: red } }", //     6
        ].join("\n"),
      ),
    ).toEqual([
      "hb.yaml:2:37: defaults.detector.threshold must be at most 100 (phi 100 is a 1e-100 chance that a heartbeat this late still comes)",
      "hb.yaml:2:50: defaults.detector.window must be a whole number from 2 to 100000",
      "hb.yaml:4:26: nodes.a.detector.kind must be one of: fixed, phi",
      'hb.yaml:4:46: nodes.a.detector.min_std: "0s" is not a positive duration (e.g. 250ms, 1s, 1.5s, 2m)',
      "hb.yaml:5:33: nodes.b.detector.threshold is for kind: phi (kind fixed has no settings)",
      "hb.yaml:5:47: nodes.b.detector.late_threshold is for kind: phi (kind fixed has no settings)",
      'hb.yaml:6:53: unknown key "colour" in nodes.c.detector (expected one of: kind, threshold, late_threshold, min_std, acceptable_pause, window)',
    ]);
  });
});

describe("detector in the reload diff", () => {
  const before = ok(
    "defaults: { detector: { kind: phi } }\nnodes: { a: {}, b: { detector: { kind: fixed } }, c: { paused: true } }",
  );

  it("finds no change between two readings of one file", () => {
    expect(
      diffConfigs(
        before,
        ok(
          "defaults: { detector: { kind: phi } }\nnodes: { a: {}, b: { detector: { kind: fixed } }, c: { paused: true } }",
        ),
      ),
    ).toEqual([]);
  });

  it("counts a change of a node's detector as a change of that node, and of the defaults' on the nodes that take it", () => {
    expect(
      diffConfigs(
        before,
        ok(
          "defaults: { detector: { kind: phi, window: 100 } }\nnodes: { a: {}, b: { detector: { kind: phi } }, c: { paused: true, detector: { kind: phi, window: 100 } } }",
        ),
      ),
    ).toEqual([
      "defaults: detector phi (threshold 8, late_threshold 3, min_std 100ms, acceptable_pause 0ms, window 1000) -> phi (threshold 8, late_threshold 3, min_std 100ms, acceptable_pause 0ms, window 100)",
      "nodes.a: detector phi (threshold 8, late_threshold 3, min_std 100ms, acceptable_pause 0ms, window 1000) -> phi (threshold 8, late_threshold 3, min_std 100ms, acceptable_pause 0ms, window 100)",
      "nodes.b: detector fixed -> phi (threshold 8, late_threshold 3, min_std 100ms, acceptable_pause 0ms, window 1000)",
      "nodes.c: detector phi (threshold 8, late_threshold 3, min_std 100ms, acceptable_pause 0ms, window 1000) -> phi (threshold 8, late_threshold 3, min_std 100ms, acceptable_pause 0ms, window 100)",
    ]);
  });

  it("finds no change where a node's own detector is the one it inherited before", () => {
    expect(
      diffConfigs(
        before,
        ok(
          "defaults: { detector: { kind: phi } }\nnodes: { a: { detector: { kind: phi } }, b: { detector: { kind: fixed } }, c: { paused: true } }",
        ),
      ),
    ).toEqual([]);
  });

  it("names the detector of a node added, unless it is the fixed one", () => {
    const after = ok(
      "defaults: { detector: { kind: phi } }\nnodes: { a: {}, b: { detector: { kind: fixed } }, c: { paused: true }, d: { detector: { kind: phi, acceptable_pause: 3s } }, e: { detector: { kind: fixed } } }",
    );
    expect(diffConfigs(before, after)).toEqual([
      "nodes.d: added (interval 1s, timeout 10s, late 5s, detector phi (threshold 8, late_threshold 3, min_std 100ms, acceptable_pause 3s, window 1000))",
      "nodes.e: added (interval 1s, timeout 10s, late 5s)",
    ]);
  });
});

describe("detector across threads and halves", () => {
  const text = [
    "defaults: { detector: { kind: phi, threshold: 5 } }",
    "nodes:",
    "  a: {}",
    "  b: { detector: { kind: fixed } }",
    "  c: { detector: { kind: phi, acceptable_pause: 3s } }",
    "  d: { interval: 2s }",
    "  e: {}",
    "  f: { detector: { kind: phi, acceptable_pause: 3s } }",
    "  g: { detector: { kind: fixed } }",
    "  h: {}",
  ].join("\n");
  const whole = ok(text);

  it("comes back equal from another thread, one object per setting, the defaults' with its nodes", async () => {
    const back = await decodeConfig(encodeConfig(whole), 3, () => Promise.resolve());
    expect(back).toEqual(whole);
    expect(back.defaults.phi).toEqual(PHI_5);
    for (const id of ["a", "d", "e", "h"]) expect(back.nodes.get(id)!.phi, id).toBe(back.defaults.phi);
    expect(back.nodes.get("f")!.phi).toBe(back.nodes.get("c")!.phi);
    expect(back.nodes.get("b")!.phi).toBeNull();
    expect(Object.isFrozen(back.defaults.phi)).toBe(true);
    expect(Object.isFrozen(back.nodes.get("c")!.phi)).toBe(true);
    expect(diffConfigs(whole, back)).toEqual([]);
  });

  it("keeps the settings objects of the previous config on a reload, also for the nodes that changed", async () => {
    const next = ok(text.replace("  e: {}", "  e: { paused: true }"));
    const back = await decodeConfig(encodeConfig(next), 3, () => Promise.resolve(), whole.nodes);
    expect(back).toEqual(next);
    expect(back.nodes.get("a")).toBe(whole.nodes.get("a"));
    expect(back.nodes.get("e")).not.toBe(whole.nodes.get("e"));
    expect(back.nodes.get("e")!.phi).toBe(whole.defaults.phi);
    expect(back.defaults.phi).toBe(whole.defaults.phi);
    expect(diffConfigs(whole, back)).toEqual(["nodes.e: paused false -> true"]);
  });

  /** As loadConfigOnTwoThreads does it: the second half parsed on a worker, then merged. */
  async function twoThreads(yaml: string): Promise<Config | null> {
    const split = splitNodes(yaml);
    if (split === null) throw new Error("not split");
    const [first, second] = split.map((half) => parseConfig(half, "hb.yaml", { half: true }));
    if (!first!.ok || !second!.ok) throw new Error("a half has problems");
    const rest = await decodeConfig(
      encodeConfig(second!.config),
      4,
      () => Promise.resolve(),
      first!.config.nodes,
    );
    return mergeHalves(first!.config, rest, [...first!.unresolved!, ...second!.unresolved!]);
  }

  it("gives what one parse gives when parsed in two halves, the halves' settings one object each", async () => {
    const merged = await twoThreads(text);
    expect(merged).toEqual(whole);
    expect(diffConfigs(whole, merged!)).toEqual([]);
    // a is in the first half, h in the second.
    expect(merged!.nodes.get("h")!.phi).toBe(merged!.nodes.get("a")!.phi);
    expect(merged!.nodes.get("h")!.phi).toBe(merged!.defaults.phi);
    expect(merged!.nodes.get("f")!.phi).toBe(merged!.nodes.get("c")!.phi);
  });

  it("gives what one parse gives when parsed in two halves without a thread", () => {
    const [first, second] = splitNodes(text)!.map((half) => parseConfig(half, "hb.yaml", { half: true }));
    if (!first!.ok || !second!.ok) throw new Error("a half has problems");
    expect(mergeHalves(first!.config, second!.config)).toEqual(whole);
  });

  it("reports a problem in a half at its place in the file", () => {
    const bad = text.replace(
      "  g: { detector: { kind: fixed } }",
      "  g: { detector: { kind: phi, window: 1 } }",
    );
    const second = parseConfig(splitNodes(bad)![1], "hb.yaml", { half: true });
    expect(second.ok ? [] : second.problems).toEqual([
      { line: 9, col: 39, message: "nodes.g.detector.window must be a whole number from 2 to 100000" },
    ]);
    expect(problems(bad)).toEqual([
      "hb.yaml:9:39: nodes.g.detector.window must be a whole number from 2 to 100000",
    ]);
  });
});

describe("the memory φ may take", () => {
  const warnings = (yaml: string) => {
    const r = parseConfig(yaml, "hb.yaml");
    if (!r.ok) throw new Error("problems");
    return r.warnings.map((w) => `${w.line}:${w.col}: ${w.message}`).filter((w) => w.includes("φ"));
  };

  it("warns when the windows the nodes may fill pass 1 GiB, at the defaults", () => {
    expect(
      warnings("listen: 127.0.0.1:0\nmax_nodes: 1000000\ndefaults: { detector: { kind: phi } }\n"),
    ).toEqual([
      "3:1: φ-accrual could keep 3.8 GiB of intervals (1000000 nodes, each its last `window` of them at 4 bytes): a smaller window, or φ for fewer nodes",
    ]);
    // The same fleet with a window of 100, or unknown senders ignored: no warning.
    expect(
      warnings(
        "listen: 127.0.0.1:0\nmax_nodes: 1000000\ndefaults: { detector: { kind: phi, window: 100 } }\n",
      ),
    ).toEqual([]);
    expect(
      warnings(
        "listen: 127.0.0.1:0\nmax_nodes: 1000000\nunknown_nodes: ignore\ndefaults: { detector: { kind: phi } }\nnodes: { a: {} }\n",
      ),
    ).toEqual([]);
  });
});
