// The quality of service of a failure detector over a trace (Chen, Toueg and Aguilera, "On the
// Quality of Service of Failure Detectors", 2002), with "suspects" read as "judged down":
// detection time T_D of the crashes, mistakes (a down of a node heard from again), their rate
// λ_M, duration T_M and recurrence T_MR, and the query accuracy P_A. Pure: a trace and the
// monitor's judgements in, figures out.

import { intervalOf, type Trace } from "../wire/trace.js";
import type { Transition } from "./replay.js";

/** Without a `# crash` line, a node silent this many of its intervals before the end crashed. */
export const CRASH_SILENCE_INTERVALS = 30;

export const DAY_MS = 86_400_000;
export const HOUR_MS = 3_600_000;

export interface QosOptions {
  /** Silence before the trace's end that makes an unmarked node crashed; default 30 intervals. */
  readonly crashSilenceMs?: number | undefined;
}

export interface Crash {
  readonly atMs: number;
  /** From the trace's `# crash` line; false: taken from the silence (at the last arrival). */
  readonly marked: boolean;
}

/** What every scope (a node, the whole trace) reports. */
export interface Figures {
  /** Crashed nodes, those judged down after their crash, and those never judged down. */
  readonly crashes: number;
  readonly detected: number;
  readonly undetected: number;
  /** T_D over the detected crashes; null when none was. */
  readonly detectionMs: { readonly mean: number; readonly p99: number; readonly max: number } | null;
  readonly mistakes: number;
  /** λ_M, mistakes per day and per hour of uptime; null without uptime. */
  readonly mistakesPerDay: number | null;
  readonly mistakesPerHour: number | null;
  /** T_M, mean time from a mistaken down to the node's next arrival; null without mistakes. */
  readonly mistakeMs: number | null;
  /** T_MR, mean time between the starts of a node's consecutive mistakes; null with fewer than 2. */
  readonly recurrenceMs: number | null;
  /** P_A: the fraction of the time the nodes were alive that they were not judged down. */
  readonly queryAccuracy: number | null;
  /** `late` warnings, as the journal has them. */
  readonly lates: number;
  /** Downs still standing at the trace's end of nodes that did not crash by the rule above. */
  readonly open: number;
  readonly uptimeMs: number;
  readonly suspectedMs: number;
}

export interface NodeFigures extends Figures {
  readonly node: string;
  readonly intervalMs: number;
  readonly firstMs: number;
  readonly lastMs: number;
  readonly crash: Crash | null;
}

export interface Scored {
  readonly total: Figures & { readonly nodes: number };
  /** By node id. */
  readonly nodes: readonly NodeFigures[];
}

interface Tally {
  detections: number[];
  undetected: number;
  crashes: number;
  mistakeDurations: number[];
  recurrences: number[];
  lates: number;
  open: number;
  uptimeMs: number;
  suspectedMs: number;
}

function figures(t: Tally): Figures {
  const sorted = [...t.detections].sort((a, b) => a - b);
  const n = sorted.length;
  const mistakes = t.mistakeDurations.length;
  return {
    crashes: t.crashes,
    detected: n,
    undetected: t.undetected,
    detectionMs:
      n === 0 ? null : { mean: mean(sorted)!, p99: sorted[Math.ceil(0.99 * n) - 1]!, max: sorted[n - 1]! },
    mistakes,
    mistakesPerDay: t.uptimeMs > 0 ? (mistakes * DAY_MS) / t.uptimeMs : null,
    mistakesPerHour: t.uptimeMs > 0 ? (mistakes * HOUR_MS) / t.uptimeMs : null,
    mistakeMs: mean(t.mistakeDurations),
    recurrenceMs: mean(t.recurrences),
    queryAccuracy: t.uptimeMs > 0 ? 1 - t.suspectedMs / t.uptimeMs : null,
    lates: t.lates,
    open: t.open,
    uptimeMs: t.uptimeMs,
    suspectedMs: t.suspectedMs,
  };
}

function mean(values: readonly number[]): number | null {
  if (values.length === 0) return null;
  let sum = 0;
  for (const v of values) sum += v;
  return sum / values.length;
}

function emptyTally(): Tally {
  return {
    detections: [],
    undetected: 0,
    crashes: 0,
    mistakeDurations: [],
    recurrences: [],
    lates: 0,
    open: 0,
    uptimeMs: 0,
    suspectedMs: 0,
  };
}

/** The length of [from, to) within [lo, hi). */
function overlap(from: number, to: number, lo: number, hi: number): number {
  return Math.max(0, Math.min(to, hi) - Math.max(from, lo));
}

/** Each node's crash: its `# crash` line, else its last arrival if it then stayed silent long enough. */
export function crashesOf(trace: Trace, last: Float64Array, options: QosOptions = {}): (Crash | null)[] {
  return trace.nodes.map((id, n) => {
    const marked = trace.crashes.get(id);
    if (marked !== undefined) return { atMs: marked, marked: true };
    const silenceMs = options.crashSilenceMs ?? CRASH_SILENCE_INTERVALS * intervalOf(trace, id);
    return trace.endMs - last[n]! >= silenceMs ? { atMs: last[n]!, marked: false } : null;
  });
}

/** Scores the judgements a replay of `trace` made, per node and for the whole trace. */
export function score(trace: Trace, transitions: readonly Transition[], options: QosOptions = {}): Scored {
  const count = trace.nodes.length;
  const first = new Float64Array(count).fill(Number.NaN);
  const last = new Float64Array(count);
  for (let i = 0; i < trace.node.length; i++) {
    const n = trace.node[i]!;
    if (Number.isNaN(first[n]!)) first[n] = trace.arrivalMs[i]!;
    last[n] = trace.arrivalMs[i]!;
  }
  const crashes = crashesOf(trace, last, options);
  const byNode: Transition[][] = trace.nodes.map(() => []);
  const index = new Map(trace.nodes.map((id, n) => [id, n]));
  for (const t of transitions) {
    const n = index.get(t.node);
    if (n !== undefined) byNode[n]!.push(t);
  }

  const total = emptyTally();
  const nodes = trace.nodes.map((id, n): NodeFigures => {
    const tally = emptyTally();
    const crash = crashes[n]!;
    const firstMs = first[n]!;
    const aliveUntil = crash === null ? trace.endMs : Math.max(firstMs, crash.atMs);
    tally.uptimeMs = aliveUntil - firstMs;
    let downAt: number | null = null;
    let lastMistakeAt: number | null = null;
    for (const t of byNode[n]!) {
      // Before its first arrival a node was not alive to be judged (a listed node's startup grace).
      if (t.at < firstMs) continue;
      if (t.state === "late") tally.lates++;
      else if (t.state === "down") downAt ??= t.at;
      else if (downAt !== null) {
        tally.mistakeDurations.push(t.at - downAt);
        tally.suspectedMs += overlap(downAt, t.at, firstMs, aliveUntil);
        if (lastMistakeAt !== null) tally.recurrences.push(downAt - lastMistakeAt);
        lastMistakeAt = downAt;
        downAt = null;
      }
    }
    if (downAt !== null) tally.suspectedMs += overlap(downAt, trace.endMs, firstMs, aliveUntil);
    if (crash !== null) {
      tally.crashes = 1;
      // The down that stood at the end, never followed by an arrival, is the one that found it.
      if (downAt !== null) tally.detections.push(Math.max(0, downAt - crash.atMs));
      else tally.undetected = 1;
    } else if (downAt !== null) tally.open = 1;
    add(total, tally);
    return {
      node: id,
      intervalMs: intervalOf(trace, id),
      firstMs,
      lastMs: last[n]!,
      crash,
      ...figures(tally),
    };
  });
  nodes.sort((a, b) => BY_ID.compare(a.node, b.node));
  return { total: { nodes: count, ...figures(total) }, nodes };
}

/** n2 before n10. */
const BY_ID = new Intl.Collator("en", { numeric: true });

function add(into: Tally, from: Tally): void {
  into.detections.push(...from.detections);
  into.undetected += from.undetected;
  into.crashes += from.crashes;
  into.mistakeDurations.push(...from.mistakeDurations);
  into.recurrences.push(...from.recurrences);
  into.lates += from.lates;
  into.open += from.open;
  into.uptimeMs += from.uptimeMs;
  into.suspectedMs += from.suspectedMs;
}
