// Arrival statistics per node, in 16 bytes of the node table: how regular its heartbeats are,
// and how close its silences came to `late` and `timeout`. The evidence `hb tune` reads.
//
// - The inter-arrival mean and variance are exponentially weighted over about the last
//   GAP_WINDOW gaps (an exact running mean until then).
// - The p99 gap is a stochastic-approximation quantile: each gap moves the estimate up by
//   0.99 step when above it, down by 0.01 step otherwise, so that it settles where 1 % of the
//   gaps lie above; the step is a tenth of the standard deviation.
// - The largest gap is kept for the current span of MAX_SPAN datagrams and the one before, so it
//   always covers at least the last MAX_SPAN of them; each is a 16-bit code, exact to the ms
//   below 2 048 ms and within 0.1 % (rounded up) above.
//
// A silence that ended with the node judged down is an outage, not a gap: it is left out here,
// as the φ detector leaves it out of its window.

import type { NodeTable } from "./node-table.js";

/** The weight of a new gap is 1 / min(gaps seen, this). */
export const GAP_WINDOW = 1024;
/** The largest gap covers the current span of this many datagrams and the one before. */
export const MAX_SPAN = 16_384;

const P = 0.99;

/** A gap in ms as a 16-bit code (rounded up): exact below 2 048, then 10 bits of mantissa. */
export function encodeGap(ms: number): number {
  const v = Math.ceil(ms);
  if (v < 2048) return Math.max(0, v);
  let e = Math.floor(Math.log2(v / 1024));
  let m = Math.ceil(v / 2 ** e);
  if (m >= 2048) {
    e++;
    m = Math.ceil(v / 2 ** e);
  }
  return Math.min(0xffff, 2048 + (e - 1) * 1024 + (m - 1024));
}

export function decodeGap(code: number): number {
  if (code < 2048) return code;
  const e = Math.floor((code - 2048) / 1024) + 1;
  return (1024 + ((code - 2048) % 1024)) * 2 ** e;
}

/** Records a gap of `gapMs` for `slot`; `seen` is how many datagrams it had before this one. */
export function recordGap(t: NodeTable, slot: number, gapMs: number, seen: number): void {
  const n = seen < GAP_WINDOW ? seen : GAP_WINDOW;
  const alpha = n <= 1 ? 1 : 1 / n;
  const mean = t.gapMean[slot]!;
  const diff = gapMs - mean;
  const step = alpha * diff;
  t.gapMean[slot] = mean + step;
  const variance = (1 - alpha) * (t.gapVar[slot]! + diff * step);
  t.gapVar[slot] = variance;
  if (n <= 1) t.gapP99[slot] = gapMs;
  else {
    const q = t.gapP99[slot]!;
    const eta = 0.1 * Math.sqrt(variance) + 0.001 * (mean + step);
    t.gapP99[slot] = gapMs > q ? q + P * eta : Math.max(0, q - (1 - P) * eta);
  }
  let max = t.gapMax[slot]!;
  // The low 14 bits of the count, whatever its size (a span is a power of two).
  if ((seen & (MAX_SPAN - 1)) === 0) max = ((max & 0xffff) << 16) >>> 0;
  // A code never decodes to less than itself: a gap no longer than the code is no new largest.
  const current = max & 0xffff;
  if (gapMs > current) {
    const code = encodeGap(gapMs);
    if (code > current) max = ((max & 0xffff0000) | code) >>> 0;
  }
  t.gapMax[slot] = max;
}

export interface ArrivalStats {
  /** Gaps the statistics rest on (weighted over about the last GAP_WINDOW). */
  readonly gaps: number;
  readonly meanMs: number;
  readonly stdMs: number;
  readonly p99Ms: number;
  /** The largest gap of at least the last MAX_SPAN datagrams. */
  readonly maxMs: number;
}

/** The statistics of `slot`, or null before its second datagram. */
export function arrivalStats(t: NodeTable, slot: number): ArrivalStats | null {
  const received = t.received[slot]!;
  if (received < 2) return null;
  const max = t.gapMax[slot]!;
  return {
    gaps: received - 1,
    meanMs: t.gapMean[slot]!,
    stdMs: Math.sqrt(t.gapVar[slot]!),
    p99Ms: t.gapP99[slot]!,
    maxMs: Math.max(decodeGap(max & 0xffff), decodeGap(max >>> 16)),
  };
}
