// Arrival statistics per node: the 16-bit gap code, the estimates against the exact figures of
// the same gaps, the headroom in /status and `hb status --node`, and the 16-bit columns that
// widen when a value outgrows them.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { renderEvidence } from "../../src/cli/status-table.js";
import { summarize } from "../../src/evidence/gaps.js";
import {
  GAP_WINDOW,
  MAX_SPAN,
  arrivalStats,
  decodeGap,
  encodeGap,
  recordGap,
} from "../../src/monitor/arrivals.js";
import { NodeTable } from "../../src/monitor/node-table.js";
import { Harness } from "../support/monitor-harness.js";
import { prng } from "../support/prng.js";

/** Feeds `gaps` to a fresh slot as its node's would be fed. */
function statsOf(gaps: readonly number[]) {
  const t = new NodeTable();
  const slot = t.add("n", 0, 0);
  gaps.forEach((gap, i) => {
    recordGap(t, slot, gap, i + 1);
    t.received[slot] = i + 2;
  });
  return arrivalStats(t, slot)!;
}

describe("arrival statistics", () => {
  it("codes a gap in 16 bits: exact to the ms below 2 048 ms, never under, within 0.1 % above", () => {
    for (let ms = 0; ms < 2048; ms++) expect(decodeGap(encodeGap(ms))).toBe(ms);
    fc.assert(
      fc.property(fc.double({ min: 0, max: 1e12, noNaN: true }), (ms) => {
        const code = encodeGap(ms);
        expect(code).toBeLessThanOrEqual(0xffff);
        const back = decodeGap(code);
        expect(back).toBeGreaterThanOrEqual(Math.ceil(ms));
        expect(back).toBeLessThanOrEqual(Math.ceil(ms) * 1.001 + 1);
      }),
    );
    // Monotone: a larger gap never codes smaller.
    let last = -1;
    for (let ms = 0; ms < 5_000_000; ms += 997) {
      const code = encodeGap(ms);
      expect(code).toBeGreaterThanOrEqual(last);
      last = code;
    }
  });

  it("estimates mean, deviation and p99 of the recent gaps, and keeps their largest exactly", () => {
    const random = prng(11);
    // Jitter of ±40 ms around 1 s, 2 % of heartbeats lost (a gap of 2 s), and a pause of 4.2 s.
    const gaps: number[] = [];
    for (let i = 0; i < 20_000; i++) {
      const lost = random() < 0.02 ? 1 : 0;
      gaps.push((1 + lost) * 1000 + (random() - 0.5) * 80);
    }
    gaps[15_000] = 4200;
    const s = statsOf(gaps);
    const recent = summarize(gaps.slice(-GAP_WINDOW))!;
    expect(Math.abs(s.meanMs - recent.meanMs)).toBeLessThan(0.05 * recent.meanMs);
    expect(Math.abs(s.stdMs - recent.stdMs)).toBeLessThan(0.25 * recent.stdMs);
    // p99 of this mixture lies in the lost heartbeats' gaps, near 2 s.
    const exact = summarize(gaps.slice(-4 * GAP_WINDOW))!.p99Ms;
    expect(Math.abs(s.p99Ms - exact)).toBeLessThan(100);
    expect(s.maxMs).toBe(4200);
    expect(s.gaps).toBe(20_000);
  });

  it("covers at least the last MAX_SPAN datagrams with its largest gap, and forgets older ones", () => {
    const gaps = Array<number>(3 * MAX_SPAN - 1).fill(1000);
    gaps[10] = 9000; // in the first span: gone after two more
    gaps[MAX_SPAN + MAX_SPAN / 2] = 5000; // in the second span: kept through the third
    const s = statsOf(gaps);
    expect(s.maxMs).toBe(5000);
    expect(statsOf(gaps.slice(0, 2 * MAX_SPAN - 10)).maxMs).toBe(9000);
  });

  it("shows the statistics and the headroom in /status and under hb status --node", async () => {
    const h = await Harness.start(`nodes: { a: { interval: 1s, late: 4s, timeout: 8s } }`);
    const t0 = h.clock.monoMs();
    for (const at of [0, 1000, 2000, 5000, 6000]) {
      h.clock.advanceTo(t0 + at);
      h.beat("a");
    }
    const doc = h.monitor.status();
    const gaps = doc.nodes[0]!.gaps!;
    expect(gaps).toMatchObject({ count: 4, maxMs: 3000, headroom: { late: 0.75, timeout: 0.375 } });
    expect(gaps.meanMs).toBe(1500);
    const text = renderEvidence(doc);
    expect(text).toContain("largest 3.000s");
    expect(text).toContain("75 % of the silence that makes it late, 38 % of the one that makes it down");
  });

  it("leaves a silence that ended in a down out of the gaps", async () => {
    const h = await Harness.start(`nodes: { a: { interval: 1s, late: 4s, timeout: 8s } }`);
    const t0 = h.clock.monoMs();
    for (const at of [0, 1000, 60_000, 61_000]) {
      h.clock.advanceTo(t0 + at);
      h.beat("a");
    }
    expect(h.of("node.down")).toHaveLength(1);
    expect(h.monitor.status().nodes[0]!.gaps).toMatchObject({ maxMs: 1000 });
  });

  it("widens a 16-bit column when a value outgrows it", () => {
    const t = new NodeTable();
    const a = t.add("a", 7, 0);
    const b = t.add("b", 70_000, 0);
    expect(t.group[a]).toBe(7);
    expect(t.group[b]).toBe(70_000);
    for (let i = 0; i < 70_000; i++) t.countRestart(a);
    expect(t.restarts[a]).toBe(70_000);
    expect(t.restarts[b]).toBe(0);
  });
});
