// The φ-accrual failure detector (Hayashibara, Défago, Yared, Katayama, 2004), with the semantics
// of Akka's and Pekko's PhiAccrualFailureDetector, so that their published values reproduce:
// integer intervals in ms, the population standard deviation over the last `window` of them
// floored at `min_std`, the acceptable pause added to the mean, a window bootstrapped with the
// two intervals interval ± interval/4, and no interval recorded when the node was already past
// the threshold at its arrival. φ(Δ) = −log10(1 − F(y)), y = (Δ − μ)/σ, with Pekko's logistic
// approximation of the normal CDF, F(y) = 1 / (1 + e^(−y(1.5976 + 0.070566 y²))).
//
// φ is monotone in the silence Δ, so the instant it reaches a threshold is solved once per
// arrival, in closed form (the real root of a cubic), instead of evaluating φ on a clock: a φ
// node has exact deadlines like any other, and the detector keeps its one timer.

import type { PhiSpec } from "../config/types.js";
import { resized } from "./node-table.js";

const A = 1.5976;
const B = 0.070566;

/** φ of a silence of `elapsedMs`, against a mean and a standard deviation (Pekko's `phi`). */
export function phi(elapsedMs: number, meanMs: number, stdMs: number): number {
  const y = (elapsedMs - meanMs) / stdMs;
  const e = Math.exp(-y * (A + B * y * y));
  // The two forms are equal; each is the precise one on its side of the mean.
  return elapsedMs > meanMs ? -Math.log10(e / (1 + e)) : -Math.log10(1 - 1 / (1 + e));
}

/** phi(), finite however long the silence (for display: phi() itself is Pekko's, bit for bit). */
export function phiLevel(elapsedMs: number, meanMs: number, stdMs: number): number {
  const y = (elapsedMs - meanMs) / stdMs;
  const g = y * (A + B * y * y);
  return g > 30 ? (g + Math.log1p(Math.exp(-g))) / Math.LN10 : phi(elapsedMs, meanMs, stdMs);
}

/**
 * The y at which φ reaches `threshold`: φ = log10(1 + e^(Ay + By³)), so Ay + By³ = ln(10^φ − 1),
 * a depressed cubic with one real root (A, B > 0), by Cardano's formula and one Newton step.
 */
export function yAt(threshold: number): number {
  // ln(10^t − 1), without overflow or cancellation at either end.
  const c =
    threshold > 15
      ? threshold * Math.LN10 + Math.log1p(-Math.pow(10, -threshold))
      : Math.log(Math.expm1(threshold * Math.LN10));
  const p = A / B;
  const q = c / B;
  const d = Math.sqrt((q * q) / 4 + (p * p * p) / 27);
  let y = Math.cbrt(q / 2 + d) + Math.cbrt(q / 2 - d);
  y -= (B * y * y * y + A * y - c) / (3 * B * y * y + A);
  return y;
}

/** How long after an arrival φ reaches the threshold whose yAt() is `y`. */
export function phiDeadlineMs(y: number, meanMs: number, stdMs: number, spec: PhiSpec): number {
  return meanMs + spec.acceptablePauseMs + y * Math.max(stdMs, spec.minStdMs);
}

/**
 * The intervals of the φ nodes: per slot of the node table, a ring of the last `window`
 * intervals in one arena per window size, with their running sum and sum of squares (exact:
 * integers below 2^53). Allocated only when some node is judged by φ.
 */
export class PhiHistory {
  /** Per slot: its block in the arena of its window size, or -1. */
  block = new Int32Array(0);
  /** Per slot: the block's window size (0: none), where the next interval goes, how many. */
  window = new Uint32Array(0);
  head = new Uint32Array(0);
  count = new Uint32Array(0);
  sum = new Float64Array(0);
  sumSq = new Float64Array(0);
  /**
   * Per slot: how long after its last arrival φ reaches the late and the down threshold (the
   * fixed `late` and `timeout` not applied), worked out at that arrival.
   */
  lateAfter = new Float64Array(0);
  downAfter = new Float64Array(0);
  /** Per window size: its arena of blocks and the free ones. */
  private readonly arenas = new Map<number, { data: Uint32Array[]; free: number[]; blocks: number }>();

  /** Grows the columns to `capacity` slots (the node table's). */
  ensure(capacity: number): void {
    if (this.block.length >= capacity) return;
    const from = this.block.length;
    this.block = resized(this.block, capacity);
    this.block.fill(-1, from);
    this.window = resized(this.window, capacity);
    this.head = resized(this.head, capacity);
    this.count = resized(this.count, capacity);
    this.sum = resized(this.sum, capacity);
    this.sumSq = resized(this.sumSq, capacity);
    this.lateAfter = resized(this.lateAfter, capacity);
    this.downAfter = resized(this.downAfter, capacity);
  }

  /** Blocks per arena chunk: a chunk is one typed array of this many windows. */
  private static readonly CHUNK = 256;

  /** The arena chunks of the window sizes in use, by window size (found once per record). */
  private chunks(window: number): Uint32Array[] {
    return this.arenas.get(window)!.data;
  }

  /** Starts `slot` over with the bootstrap intervals interval ± interval/4, in a `window` ring. */
  bootstrap(slot: number, intervalMs: number, window: number): void {
    if (this.window[slot] !== window) {
      this.release(slot);
      let arena = this.arenas.get(window);
      if (arena === undefined) this.arenas.set(window, (arena = { data: [], free: [], blocks: 0 }));
      let b = arena.free.pop();
      if (b === undefined) {
        b = arena.blocks++;
        if (b % PhiHistory.CHUNK === 0) arena.data.push(new Uint32Array(window * PhiHistory.CHUNK));
      }
      this.block[slot] = b;
      this.window[slot] = window;
    }
    this.head[slot] = this.count[slot] = 0;
    this.sum[slot] = this.sumSq[slot] = 0;
    const mean = Math.round(intervalMs);
    const std = Math.floor(mean / 4);
    this.record(slot, mean - std);
    this.record(slot, mean + std);
  }

  /** Whether `slot` has a history (is judged by φ). */
  has(slot: number): boolean {
    return slot < this.block.length && this.block[slot] !== -1;
  }

  /** Appends an interval (integer ms), dropping the oldest once the window is full. */
  record(slot: number, intervalMs: number): void {
    const window = this.window[slot]!;
    const b = this.block[slot]!;
    const data = this.chunks(window)[Math.floor(b / PhiHistory.CHUNK)]!;
    const at = (b % PhiHistory.CHUNK) * window;
    const head = this.head[slot]!;
    if (this.count[slot] === window) {
      const oldest = data[at + head]!;
      this.sum[slot] = this.sum[slot]! - oldest;
      this.sumSq[slot] = this.sumSq[slot]! - oldest * oldest;
    } else this.count[slot] = this.count[slot]! + 1;
    data[at + head] = intervalMs;
    this.head[slot] = head + 1 === window ? 0 : head + 1;
    this.sum[slot] = this.sum[slot]! + intervalMs;
    this.sumSq[slot] = this.sumSq[slot]! + intervalMs * intervalMs;
  }

  mean(slot: number): number {
    return this.sum[slot]! / this.count[slot]!;
  }

  /** The population standard deviation of the window. */
  std(slot: number): number {
    const n = this.count[slot]!;
    const mean = this.sum[slot]! / n;
    return Math.sqrt(Math.max(0, this.sumSq[slot]! / n - mean * mean));
  }

  /** `slot` is judged by φ no more (its node is gone, or moved to the fixed detector). */
  release(slot: number): void {
    if (!this.has(slot)) return;
    this.arenas.get(this.window[slot]!)!.free.push(this.block[slot]!);
    this.block[slot] = -1;
    this.window[slot] = 0;
    this.count[slot] = 0;
  }
}
