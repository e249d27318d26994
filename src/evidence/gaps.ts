// A trace's gaps per node, exactly: what `hb tune` reads from a trace instead of a running
// monitor's estimates. A gap that spans a stall of the monitor (`# stall`) says nothing of the
// node and is left out; so is the silence after a node's last arrival (a crash, or the end).

import { intervalOf, type Trace } from "../wire/trace.js";
import type { GapSummary } from "./tune.js";

export interface NodeGaps {
  readonly node: string;
  readonly intervalMs: number;
  readonly gaps: GapSummary | null;
}

export function traceGaps(trace: Trace): NodeGaps[] {
  const per: number[][] = trace.nodes.map(() => []);
  const last = new Float64Array(trace.nodes.length).fill(Number.NaN);
  for (let i = 0; i < trace.node.length; i++) {
    const n = trace.node[i]!;
    const at = trace.arrivalMs[i]!;
    const before = last[n]!;
    last[n] = at;
    if (Number.isNaN(before)) continue;
    if (trace.stalls.some(([from, to]) => before < to && at >= from)) continue;
    per[n]!.push(at - before);
  }
  return trace.nodes.map((node, n) => {
    const intervalMs = intervalOf(trace, node);
    const summary = summarize(per[n]!);
    return {
      node,
      intervalMs,
      gaps: summary === null ? null : { ...summary, loss: lossOf(per[n]!, intervalMs) },
    };
  });
}

/** The fraction of heartbeats lost, read from gaps of whole intervals (a trace has no sequence numbers). */
function lossOf(gaps: readonly number[], intervalMs: number): number {
  let lost = 0;
  for (const gap of gaps) lost += Math.max(0, Math.round(gap / intervalMs) - 1);
  return lost / (lost + gaps.length);
}

/** Count, mean, population deviation, p99 (nearest rank) and largest of `gaps`. */
export function summarize(gaps: number[]): GapSummary | null {
  if (gaps.length === 0) return null;
  const sorted = Float64Array.from(gaps).sort();
  let sum = 0;
  for (const g of sorted) sum += g;
  const mean = sum / sorted.length;
  let sq = 0;
  for (const g of sorted) sq += (g - mean) ** 2;
  return {
    count: sorted.length,
    meanMs: mean,
    stdMs: Math.sqrt(sq / sorted.length),
    p99Ms: sorted[Math.min(sorted.length - 1, Math.ceil(0.99 * sorted.length) - 1)]!,
    maxMs: sorted[sorted.length - 1]!,
  };
}
