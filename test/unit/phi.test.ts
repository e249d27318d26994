// φ-accrual: the values of Pekko's AccrualFailureDetectorSpec, the closed-form deadline, the
// window's statistics, and the detector judging by φ on a fake clock (Pekko's heartbeat
// sequences, replayed through hb's own monitor).
import { describe, expect, it } from "vitest";
import { DEFAULT_PHI } from "../../src/config/types.js";
import { PhiHistory, phi, phiDeadlineMs, phiLevel, yAt } from "../../src/monitor/phi.js";
import { Harness, config } from "../support/monitor-harness.js";
import { prng } from "../support/prng.js";

const cdf = (p: number): number => 1 - Math.pow(10, -p);

describe("φ", () => {
  it("reproduces the values of Pekko's PhiAccrualFailureDetector to 1e-6", () => {
    // phi(timeDiff, mean, stdDeviation): Pekko's table, to six places (computed from its formula).
    const table: [number, number, number, number][] = [
      [1600, 1000, 100, 10.782601],
      [1200, 1000, 100, 1.642828],
      [6, 0, 10, 0.562054],
      [0, 1000, 100, 0],
      [500, 1000, 100, 0.0],
      [1000, 1000, 100, 0.30103],
      [1400, 1000, 100, 4.736695],
      [1700, 1000, 100, 15.368526],
      [0, 0, 10, 0.30103],
      [15, 0, 10, 1.174269],
      [20, 0, 10, 1.642828],
      [25, 0, 10, 2.216071],
      [35, 0, 10, 3.742445],
      [40, 0, 10, 4.736695],
      [22, 20, 3, 0.59795],
      [10, 0, 1, 37.584713],
      [-25, 0, 1, 0],
      [1100, 1000, 500, 0.376074],
      [1100, 1000, 100, 0.799508],
    ];
    for (const [elapsed, mean, std, expected] of table)
      expect(Math.abs(phi(elapsed, mean, std) - expected), `φ(${elapsed}, ${mean}, ${std})`).toBeLessThan(
        1e-6,
      );
    // Pekko's own assertions, with its tolerances.
    expect(cdf(phi(0, 0, 10))).toBeCloseTo(0.5, 3);
    expect(Math.abs(cdf(phi(6, 0, 10)) - 0.7257)).toBeLessThan(0.001);
    expect(Math.abs(cdf(phi(15, 0, 10)) - 0.9332)).toBeLessThan(0.001);
    expect(Math.abs(cdf(phi(20, 0, 10)) - 0.97725)).toBeLessThan(0.001);
    expect(Math.abs(cdf(phi(25, 0, 10)) - 0.99379)).toBeLessThan(0.001);
    expect(Math.abs(cdf(phi(35, 0, 10)) - 0.99977)).toBeLessThan(0.001);
    expect(Math.abs(cdf(phi(40, 0, 10)) - 0.99997)).toBeLessThan(0.0001);
    expect(Math.abs(cdf(phi(22, 20, 3)) - 0.7475)).toBeLessThan(0.001);
    for (let x = 0; x < 40; x++) expect(phi(x, 0, 10)).toBeLessThan(phi(x + 1, 0, 10));
    expect(phi(1100, 1000, 500)).toBeLessThan(phi(1100, 1000, 100));
    expect(Math.abs(phi(10, 0, 1) - 38)).toBeLessThan(1);
  });

  it("solves the deadline in closed form: φ(deadline − 1 µs) < threshold ≤ φ(deadline + 1 µs)", () => {
    const random = prng(7);
    const thresholds = [0.5, 1, 2, 3, 4.5, 8, 10, 12, 16, 20, 50, 100];
    for (let k = 0; k < 2000; k++) {
      const threshold = k < thresholds.length ? thresholds[k]! : 0.4 + random() * 30;
      const mean = Math.round(random() * 60_000);
      const std = 1 + random() * 5000;
      const y = yAt(threshold);
      const deadline = mean + y * std;
      const what = `threshold ${threshold}, mean ${mean}, std ${std}`;
      expect(phi(deadline - 0.001, mean, std), what).toBeLessThan(threshold);
      expect(phi(deadline + 0.001, mean, std), what).toBeGreaterThanOrEqual(threshold);
    }
    // With the pause and the floor of the standard deviation, as the detector uses it.
    const spec = { ...DEFAULT_PHI, acceptablePauseMs: 3000, minStdMs: 100 };
    const after = phiDeadlineMs(yAt(8), 1000, 20, spec);
    expect(phi(after - 0.001, 1000 + 3000, 100)).toBeLessThan(8);
    expect(phi(after + 0.001, 1000 + 3000, 100)).toBeGreaterThanOrEqual(8);
  });

  it("stays finite for display however long the silence", () => {
    expect(phiLevel(1e9, 1000, 100)).toBeGreaterThan(1e6);
    expect(Number.isFinite(phiLevel(1e9, 1000, 100))).toBe(true);
    expect(phiLevel(1600, 1000, 100)).toBe(phi(1600, 1000, 100));
  });

  it("keeps the window's mean and population variance as Pekko's HeartbeatHistory does", () => {
    const h = new PhiHistory();
    h.ensure(4);
    // "calculate correct mean and variance": a window of 20 (the bootstrap replaced by samples).
    h.bootstrap(0, 1000, 20);
    h.head[0] = h.count[0] = 0;
    h.sum[0] = h.sumSq[0] = 0;
    for (const x of [100, 200, 125, 340, 130]) h.record(0, x);
    expect(h.mean(0)).toBeCloseTo(179, 5);
    expect(h.std(0) ** 2).toBeCloseTo(7584, 5);
    // "be capped by the specified maxSampleSize": a window of 3.
    h.bootstrap(1, 1000, 3);
    h.head[1] = h.count[1] = 0;
    h.sum[1] = h.sumSq[1] = 0;
    for (const x of [100, 110, 90]) h.record(1, x);
    expect(h.mean(1)).toBeCloseTo(100, 5);
    expect(h.std(1) ** 2).toBeCloseTo(66.6666667, 5);
    h.record(1, 140);
    expect(h.mean(1)).toBeCloseTo(113.333333, 5);
    expect(h.std(1) ** 2).toBeCloseTo(422.222222, 5);
    h.record(1, 80);
    expect(h.mean(1)).toBeCloseTo(103.333333, 5);
    expect(h.std(1) ** 2).toBeCloseTo(688.88888889, 5);
  });

  it("bootstraps a window with interval ± interval/4", () => {
    const h = new PhiHistory();
    h.ensure(1);
    h.bootstrap(0, 1000, 1000);
    expect(h.count[0]).toBe(2);
    expect(h.mean(0)).toBe(1000);
    expect(h.std(0)).toBe(250);
    // Pekko's "return phi based on guess when only one heartbeat".
    expect(Math.abs(phi(1000, h.mean(0), h.std(0)) - 0.3)).toBeLessThan(0.2);
    expect(Math.abs(phi(2000, h.mean(0), h.std(0)) - 4.5)).toBeLessThan(0.3);
    expect(phi(3000, h.mean(0), h.std(0))).toBeGreaterThan(15);
  });
});

/** A φ node with `settings` (YAML), beating at the given instants (ms after the start). */
async function phiNode(settings: string, beats: readonly number[]): Promise<{ h: Harness; t0: number }> {
  const h = await Harness.start(`defaults: { interval: 1s, timeout: 1h, late: 59m }
nodes: { a: { detector: { kind: phi, ${settings} } } }`);
  const t0 = h.clock.monoMs();
  for (const at of beats) {
    h.clock.advanceTo(t0 + at);
    h.beat("a");
  }
  return { h, t0 };
}

describe("the detector judging by φ (Pekko's sequences)", () => {
  // Pekko's tests consume one clock reading per call, heartbeat() or a check; here each call is
  // at the same instant: a heartbeat, or a look at the node's state or φ then.
  const node = (h: Harness) => h.monitor.status().nodes.find((n) => n.node === "a")!;
  const at = (h: Harness, t0: number, ms: number) => {
    h.clock.advanceTo(t0 + ms);
    return node(h);
  };

  it("returns φ based on the guess when there is only one heartbeat", async () => {
    const { h, t0 } = await phiNode("threshold: 8", [0]);
    expect(Math.abs(at(h, t0, 1000).phi!.value - 0.3)).toBeLessThan(0.2);
    expect(Math.abs(at(h, t0, 2000).phi!.value - 4.5)).toBeLessThan(0.3);
    expect(at(h, t0, 3000).phi!.value).toBeGreaterThan(15);
  });

  it("marks a node dead if heartbeats are missed (threshold 3)", async () => {
    const { h, t0 } = await phiNode("threshold: 3, late_threshold: 1", [0, 1000, 1100]);
    expect(at(h, t0, 1200).state).not.toBe("down");
    expect(at(h, t0, 8200).state).toBe("down");
  });

  it("accepts some configured missing heartbeats (acceptable_pause 3s)", async () => {
    const { h, t0 } = await phiNode("acceptable_pause: 3s", [0, 1000, 2000, 3000]);
    expect(at(h, t0, 7000).state).not.toBe("down");
    h.beat("a");
    h.clock.advanceTo(t0 + 8000);
    h.beat("a");
    expect(at(h, t0, 9000).state).not.toBe("down");
    expect(h.of("node.down")).toEqual([]);
  });

  it("fails after the configured acceptable missing heartbeats", async () => {
    const { h, t0 } = await phiNode("acceptable_pause: 3s", [0, 1000, 2000, 3000, 4000, 5000]);
    expect(at(h, t0, 5500).state).not.toBe("down");
    h.clock.advanceTo(t0 + 6000);
    h.beat("a");
    expect(at(h, t0, 11_000).state).toBe("down");
  });

  it("is available again once heartbeats resume after a failure, and fails again after a 7 s pause", async () => {
    const regular = Array.from({ length: 1000 }, (_, i) => i * 1000);
    const { h, t0 } = await phiNode("threshold: 8, acceptable_pause: 3s", regular);
    const beat = (ms: number) => {
      h.clock.advanceTo(t0 + ms);
      h.beat("a");
    };
    expect(at(h, t0, 1_299_000).state).toBe("down"); // after the 5 min pause
    beat(1_299_100);
    expect(at(h, t0, 1_300_000).state).not.toBe("down");
    beat(1_300_100);
    expect(at(h, t0, 1_307_100).state).toBe("down"); // after the 7 s pause
    beat(1_307_200);
    expect(at(h, t0, 1_308_100).state).not.toBe("down");
    beat(1_308_200);
    expect(at(h, t0, 1_309_100).state).not.toBe("down");
  });

  it("uses only the last `window` intervals", async () => {
    const { h, t0 } = await phiNode("window: 3", [0, 100, 200, 300]);
    const phi1 = at(h, t0, 400).phi!;
    for (const ms of [1000, 1500, 2000, 2500]) {
      h.clock.advanceTo(t0 + ms);
      h.beat("a");
    }
    const phi2 = at(h, t0, 3000).phi!;
    expect(Math.abs(phi2.value - phi1.value)).toBeLessThan(0.001);
    // The interval of 700 ms came when φ was already past the threshold: it was not recorded.
    expect(phi2).toMatchObject({ meanMs: 500, stdMs: 0, samples: 3 });
  });

  it("goes down at exactly lastSeen + μ + pause + y*·max(σ, min_std), and late at its late threshold", async () => {
    const { h, t0 } = await phiNode("threshold: 8, late_threshold: 3, min_std: 100ms", [0, 1000, 2000, 3000]);
    // Window: the bootstrap 750 and 1250, then three intervals of 1000: mean 1000.
    const mean = (750 + 1250 + 3000) / 5;
    const std = Math.sqrt((750 ** 2 + 1250 ** 2 + 3 * 1000 ** 2) / 5 - mean ** 2);
    const downAfter = mean + yAt(8) * Math.max(std, 100);
    const lateAfter = mean + yAt(3) * Math.max(std, 100);
    h.clock.advanceTo(t0 + 3000 + downAfter + 2);
    const late = h.of("node.late")[0]!;
    const down = h.of("node.down")[0]!;
    expect(late.t).toBe(t0 + 3000 + Math.ceil(lateAfter));
    expect(down.t).toBe(t0 + 3000 + Math.ceil(downAfter));
    expect(down.timeoutMs).toBe(Math.round(downAfter));
  });

  it("is down at the fixed timeout when that comes before φ's deadline", async () => {
    const h = await Harness.start(`defaults: { interval: 1s, timeout: 2500ms }
nodes: { a: { detector: { kind: phi, acceptable_pause: 10s } } }`);
    const t0 = h.clock.monoMs();
    h.beat("a");
    h.clock.advanceTo(t0 + 2499);
    expect(h.of("node.down")).toEqual([]);
    h.clock.advanceTo(t0 + 2500);
    expect(h.of("node.down").map((e) => e.t)).toEqual([t0 + 2500]);
  });
});

describe("φ and the fixed detector across reloads", () => {
  const FIXED = `defaults: { interval: 1s, timeout: 10s, late: 5s }\nnodes: { a: {}, b: {} }`;
  const PHI = `defaults: { interval: 1s, timeout: 10s, late: 5s, detector: { kind: phi, threshold: 8 } }\nnodes: { a: {}, b: {} }`;

  it("moves nodes to φ (from the bootstrap) and back, each judged by the detector in force", async () => {
    const h = await Harness.start(FIXED);
    const t0 = h.clock.monoMs();
    for (let k = 0; k < 5; k++) {
      h.clock.advanceTo(t0 + k * 1000);
      h.beat("a");
      h.beat("b");
    }
    const last = t0 + 4000;
    h.monitor.reload({ config: config(PHI), keyring: new Map() });
    const phiNow = h.monitor.status().nodes.find((n) => n.node === "a")!.phi!;
    // The bootstrap window: mean 1000, deviation 250 (interval ± interval/4).
    expect(phiNow).toMatchObject({ meanMs: 1000, stdMs: 250, samples: 2 });
    const downAfter = 1000 + yAt(8) * 250;
    h.clock.advanceTo(last + downAfter + 1);
    expect(
      h
        .of("node.down")
        .map((e) => [e.node, e.t])
        .sort(),
    ).toEqual([
      ["a", last + Math.ceil(downAfter)],
      ["b", last + Math.ceil(downAfter)],
    ]);
    // Back to fixed: a returns and is judged by its timeout again.
    h.monitor.reload({ config: config(FIXED), keyring: new Map() });
    h.beat("a");
    const back = h.clock.monoMs();
    expect(h.monitor.status().nodes.find((n) => n.node === "a")!.phi).toBeUndefined();
    h.clock.advanceTo(back + 9999);
    expect(h.of("node.down")).toHaveLength(2);
    h.clock.advanceTo(back + 10_000);
    expect(h.of("node.down").at(-1)).toMatchObject({ node: "a", t: back + 10_000 });
  });

  it("keeps a φ node's window across a reload that changes only its threshold", async () => {
    const h = await Harness.start(PHI);
    const t0 = h.clock.monoMs();
    for (let k = 0; k < 50; k++) {
      h.clock.advanceTo(t0 + k * 1000);
      h.beat("a");
    }
    const before = h.monitor.status().nodes.find((n) => n.node === "a")!.phi!;
    h.monitor.reload({ config: config(PHI.replace("threshold: 8", "threshold: 10")), keyring: new Map() });
    const after = h.monitor.status().nodes.find((n) => n.node === "a")!.phi!;
    expect(after.samples).toBe(before.samples);
    expect(after.meanMs).toBe(before.meanMs);
    expect(after.downAt).toBeGreaterThan(before.downAt);
  });
});
