// What the detector answers about its nodes, derived at the moment of asking: counts by state,
// and each node's state and view read by slot, so that a caller can walk a large fleet a slice
// at a time. Node ids sort in display order: code units, with runs of digits compared as numbers.
// Nothing here changes the detector's memory.

import type { NodeFacts } from "../facts.js";
import { zeroCounts, type Counts, type StateName } from "../states.js";
import { arrivalStats } from "./arrivals.js";
import type { DetectorState } from "./detector-state.js";
import { phiLevel } from "./phi.js";
import { F_EXPECTED, F_LEFT, F_PAUSED, NEVER, S_DOWN } from "./node-table.js";

export interface NodeView {
  node: string;
  state: StateName;
  expected: boolean;
  /** Epoch ms of the last datagram, null if never heard. */
  lastSeen: number | null;
  silentMs: number | null;
  intervalMs: number;
  lateMs: number;
  timeoutMs: number;
  lossPct: number;
  received: number;
  lost: number;
  restarts: number;
  incarnation: number | null;
  from: string | null;
  /**
   * How its heartbeats have arrived (arrivals.ts): null before its second. `headroom`: the
   * largest gap as a share of the silence that would make it late, and down.
   */
  gaps: GapView | null;
  /** What φ-accrual makes of it (present only for a node judged by φ). */
  phi?: PhiView;
  /** The maintenance windows that cover it now (present only when some do). */
  maintenance?: string[];
  /** The parents that keep its down from paging (present only when it is down and some do). */
  via?: string[];
}

export interface GapView {
  count: number;
  meanMs: number;
  stdMs: number;
  p99Ms: number;
  maxMs: number;
  headroom: { late: number; timeout: number };
}

export interface PhiView {
  /** The window's mean and standard deviation (before `acceptable_pause` and `min_std`). */
  meanMs: number;
  stdMs: number;
  /** Intervals in the window. */
  samples: number;
  /** φ now. */
  value: number;
  /** Epoch ms at which it is late, and down (φ's thresholds, or `late`/`timeout` if sooner). */
  lateAt: number;
  downAt: number;
}

const tenth = (x: number): number => Math.round(x * 10) / 10;

/** What the policy adds to a node's view; null: nothing (the usual case). */
export type Annotate = (node: string, state: StateName) => { maintenance?: string[]; via?: string[] } | null;

/** Adds the states of the nodes in `count` slots from `fromSlot` on; returns where to go on, or -1. */
export function countStatesFrom(
  s: DetectorState,
  nowMs: number,
  counts: Counts,
  fromSlot: number,
  count: number,
): number {
  // Slots, not the id map: a typed-array walk is several times faster at a million nodes.
  const ids = s.t.ids;
  const end = Math.min(ids.length, fromSlot + count);
  for (let slot = fromSlot; slot < end; slot++) if (ids[slot] !== undefined) counts[s.stateOf(slot, nowMs)]++;
  return end < ids.length ? end : -1;
}

export function countStates(s: DetectorState, nowMs: number): Counts {
  const counts = zeroCounts();
  countStatesFrom(s, nowMs, counts, 0, Number.POSITIVE_INFINITY);
  return counts;
}

/** Read access to the detector's nodes by slot; slots are reused, so check idAt() after a pause. */
export class NodeReader {
  constructor(private readonly s: DetectorState) {}

  /** Slots run from 0 to this (exclusive); free ones have no id. */
  get slots(): number {
    return this.s.t.ids.length;
  }

  get size(): number {
    return this.s.t.size;
  }

  /** Changes whenever a node is added or forgotten. */
  get membership(): number {
    return this.s.t.generation;
  }

  idAt(slot: number): string | undefined {
    return this.s.t.ids[slot];
  }

  slotOf(id: string): number | undefined {
    return this.s.t.index.get(id);
  }

  /** Counts `count` slots from `fromSlot` on into `counts`; returns where to go on, or -1. */
  countFrom(counts: Counts, fromSlot: number, count: number, nowMs: number): number {
    return countStatesFrom(this.s, nowMs, counts, fromSlot, count);
  }

  state(slot: number, nowMs: number): StateName {
    return this.s.stateOf(slot, nowMs);
  }

  /** Whether the node has been judged down (its deadline may have passed a moment before). */
  judgedDown(slot: number): boolean {
    return this.s.t.reported[slot] === S_DOWN;
  }

  /**
   * The node's last accepted datagram: its incarnation and sequence number, and when it arrived
   * (epoch ms); nulls when never heard. What a notice says of it, the same at every monitor.
   */
  arrival(slot: number): { incarnation: number | null; sequence: number | null; lastSeen: number | null } {
    const t = this.s.t;
    const incarnation = t.incarnation[slot]!;
    const seen = t.lastSeen[slot]!;
    return {
      incarnation: incarnation < 0 ? null : incarnation,
      sequence: incarnation < 0 ? null : t.sequence[slot]!,
      lastSeen: seen === NEVER ? null : this.s.toWall(seen),
    };
  }

  /**
   * What a notice about `id` says of it: its last datagram, with what the config says of it;
   * null when it is not tracked.
   */
  facts(
    id: string,
    labels: NodeFacts["labels"],
    thresholds: { readonly lateMs: number; readonly timeoutMs: number },
  ): NodeFacts | null {
    const slot = this.slotOf(id);
    if (slot === undefined) return null;
    return { labels, ...this.arrival(slot), lateMs: thresholds.lateMs, timeoutMs: thresholds.timeoutMs };
  }

  /**
   * How many nodes were heard within `windowMs` (or their late threshold, whichever is shorter
   * for them to be heard in), of those expected to beat (neither paused nor left). Read from
   * arrivals alone: a hold of judgement changes nothing here.
   */
  heard(nowMs: number, windowMs = Number.POSITIVE_INFINITY): { heard: number; expected: number } {
    const s = this.s;
    const t = s.t;
    let heard = 0;
    let expected = 0;
    for (let slot = 0; slot < t.ids.length; slot++) {
      if (t.ids[slot] === undefined || (t.flags[slot]! & (F_PAUSED | F_LEFT)) !== 0) continue;
      expected++;
      const seen = t.lastSeen[slot]!;
      // Within `windowMs`, or within its own late threshold for a node that beats more slowly.
      const group = s.groupOf(slot);
      const within = 2 * group.intervalMs > windowMs ? group.lateMs : windowMs;
      if (seen !== NEVER && seen + within > nowMs) heard++;
    }
    return { heard, expected };
  }

  /** Monotonic ms of the last arrival, null if never heard. */
  lastSeen(slot: number): number | null {
    const seen = this.s.t.lastSeen[slot]!;
    return seen === NEVER ? null : seen;
  }

  view(slot: number, nowMs: number): NodeView {
    const s = this.s;
    const t = s.t;
    const seen = t.lastSeen[slot]!;
    const heard = seen !== NEVER;
    const group = s.groupOf(slot);
    const lost = t.lost[slot]!;
    const expectedCount = t.received[slot]! + lost;
    return {
      node: t.ids[slot]!,
      state: s.stateOf(slot, nowMs),
      expected: (t.flags[slot]! & F_EXPECTED) !== 0,
      lastSeen: heard ? s.toWall(seen) : null,
      // A slice read after a datagram that arrived since `nowMs` is not silent for a negative time.
      silentMs: heard ? Math.max(0, Math.round(nowMs - seen)) : null,
      intervalMs: group.intervalMs,
      lateMs: group.lateMs,
      timeoutMs: group.timeoutMs,
      lossPct: expectedCount === 0 ? 0 : Math.round((10_000 * lost) / expectedCount) / 100,
      received: t.received[slot]!,
      lost,
      restarts: t.restarts[slot]!,
      incarnation: t.incarnation[slot]! >= 0 ? t.incarnation[slot]! : null,
      from: t.from(slot),
      gaps: this.gaps(slot),
      ...(s.isPhi(slot) ? { phi: this.phi(slot, nowMs) } : {}),
    };
  }

  private gaps(slot: number): GapView | null {
    const stats = arrivalStats(this.s.t, slot);
    if (stats === null) return null;
    const share = (ms: number): number => Math.round((1000 * stats.maxMs) / ms) / 1000;
    return {
      count: stats.gaps,
      meanMs: tenth(stats.meanMs),
      stdMs: tenth(stats.stdMs),
      p99Ms: tenth(stats.p99Ms),
      maxMs: stats.maxMs,
      headroom: { late: share(this.s.lateAfterMs(slot)), timeout: share(this.s.downAfterMs(slot)) },
    };
  }

  private phi(slot: number, nowMs: number): PhiView {
    const s = this.s;
    const h = s.phi!;
    const spec = s.groupOf(slot).phi!;
    const seen = s.t.lastSeen[slot]!;
    const mean = h.mean(slot);
    const std = h.std(slot);
    return {
      meanMs: tenth(mean),
      stdMs: tenth(std),
      samples: h.count[slot]!,
      value:
        Math.round(
          1000 *
            phiLevel(Math.max(0, nowMs - seen), mean + spec.acceptablePauseMs, Math.max(std, spec.minStdMs)),
        ) / 1000,
      lateAt: s.toWall(seen + s.lateAfterMs(slot)),
      downAt: s.toWall(seen + s.downAfterMs(slot)),
    };
  }
}

const isDigit = (c: number): boolean => c >= 48 && c <= 57;

/**
 * Display order of node ids: code-unit order, except that runs of digits compare as numbers
 * ("n2" before "n10"); ties such as "n7" and "n07" fall back to plain order. No Intl, and no
 * allocation: a million ids sort without a string made per comparison.
 */
export function compareIds(a: string, b: string): number {
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    const ca = a.charCodeAt(i);
    const cb = b.charCodeAt(j);
    if (!isDigit(ca) || !isDigit(cb)) {
      if (ca !== cb) return ca - cb;
      i++;
      j++;
      continue;
    }
    while (a.charCodeAt(i) === 48 && isDigit(a.charCodeAt(i + 1))) i++;
    while (b.charCodeAt(j) === 48 && isDigit(b.charCodeAt(j + 1))) j++;
    let ei = i;
    let ej = j;
    while (isDigit(a.charCodeAt(ei))) ei++;
    while (isDigit(b.charCodeAt(ej))) ej++;
    if (ei - i !== ej - j) return ei - i - (ej - j);
    for (; i < ei; i++, j++)
      if (a.charCodeAt(i) !== b.charCodeAt(j)) return a.charCodeAt(i) - b.charCodeAt(j);
  }
  const rest = a.length - i - (b.length - j);
  if (rest !== 0) return rest;
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Every node's view in display order: for small fleets and tests (the endpoint streams). */
export function viewNodes(s: DetectorState, nowMs: number): NodeView[] {
  const reader = new NodeReader(s);
  const ids = s.t.ids;
  const slots = s.t.occupied().sort((a, b) => compareIds(ids[a]!, ids[b]!));
  return slots.map((slot) => reader.view(slot, nowMs));
}
