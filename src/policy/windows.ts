// Maintenance windows: the runtime ones operators add with `hb maint` (kept in a SharedMap, whose
// merge rule keeps an ended window ended, so that monitors sharing it hold the same list), and the
// recurring ones of the config's `maintenance.windows`. It answers which windows cover a node at
// a wall-clock instant, and tells when a window ends, by expiry or by `hb maint end`. Windows are
// wall-clock instants: operators speak wall time, and a step of the clock moves them with it.

import type { MaintWindowView, RecurringWindowView } from "../actions.js";
import type { Clock, Timer } from "../clock.js";
import type { Config, RecurringWindowSpec } from "../config/types.js";
import {
  nextOccurrence,
  occurrenceAt,
  parseSchedule,
  type Occurrence,
  type Schedule,
} from "../config/schedule.js";
import type { Emit, MaintFields } from "../events.js";
import { matchesAny, parseSelector, type Selector } from "../selectors.js";
import type { MergeRule, SharedMap } from "./shared.js";

/** A window as it is kept and shared: what `hb maint list` shows (src/actions.ts), and its revision. */
export interface MaintWindow extends Omit<MaintWindowView, "state"> {
  /** Counts its changes: between two monitors, the later change wins. */
  readonly rev: number;
}

export type WindowState = "scheduled" | "active" | "ended" | "expired";

/** Ended and expired windows are kept this long (for `hb maint list --expired`). */
export const KEEP_ENDED_MS = 5 * 86_400_000;
/** How far ahead a window may be scheduled to start. */
export const MAX_LEAD_MS = 366 * 86_400_000;
export const MAX_SELECTORS = 32;
export const MAX_COMMENT_CHARS = 200;
export const MAX_AUTHOR_CHARS = 64;
/** Most windows kept at once (ended ones count until they are dropped): every event looks at them. */
export const MAX_WINDOWS = 1000;
/** Even an idle monitor looks at the wall clock this often while windows exist (a step moves them). */
const MAX_EDGE_WAIT_MS = 60_000;

/** When a window stops covering nodes (epoch ms). */
export function windowEnd(w: MaintWindow): number {
  return w.endedAt === null ? w.endsAt : Math.min(w.endsAt, w.endedAt);
}

export function windowState(w: MaintWindow, wallMs: number): WindowState {
  if (w.endedAt !== null && w.endedAt <= wallMs) return "ended";
  if (wallMs >= w.endsAt) return "expired";
  return wallMs < w.startsAt ? "scheduled" : "active";
}

/** A window's record with its fields in one order: the same JSON on every monitor. */
export function windowRecord(w: MaintWindow): MaintWindow {
  return {
    id: w.id,
    match: w.match,
    author: w.author,
    comment: w.comment,
    startsAt: w.startsAt,
    endsAt: w.endsAt,
    createdAt: w.createdAt,
    endedAt: w.endedAt,
    rev: w.rev,
    by: w.by,
  };
}

/** How two monitors' records of one window merge: an end is final; otherwise the later change. */
export const WINDOW_RULE: MergeRule<MaintWindow> = {
  wins(a, b) {
    if ((a.endedAt === null) !== (b.endedAt === null)) return a.endedAt !== null;
    if (a.rev !== b.rev) return a.rev > b.rev;
    return JSON.stringify(windowRecord(a)) > JSON.stringify(windowRecord(b));
  },
  keep: (w, wallMs) => wallMs < windowEnd(w) + KEEP_ENDED_MS,
};

/** A window's record as read back (state file, peer): null when it is not one. */
export function readWindow(raw: unknown): MaintWindow | null {
  if (typeof raw !== "object" || raw === null) return null;
  const w = raw as Record<string, unknown>;
  const num = (v: unknown): v is number => typeof v === "number" && Number.isSafeInteger(v);
  if (
    typeof w.id !== "string" ||
    !/^m-[a-z0-9]{1,16}$/.test(w.id) ||
    !Array.isArray(w.match) ||
    w.match.length === 0 ||
    !w.match.every((s) => typeof s === "string" && typeof parseSelector(s) !== "string") ||
    typeof w.author !== "string" ||
    typeof w.comment !== "string" ||
    typeof w.by !== "string" ||
    !num(w.startsAt) ||
    !num(w.endsAt) ||
    !num(w.createdAt) ||
    !num(w.rev) ||
    !(w.endedAt === null || num(w.endedAt))
  )
    return null;
  const record = windowRecord(w as unknown as MaintWindow);
  return Object.freeze({ ...record, match: Object.freeze([...record.match]) });
}

/** What `hb maint add` asks for, as the monitor receives it. */
export interface WindowRequest {
  readonly match: readonly string[];
  readonly comment: string;
  readonly author: string;
  /** Epoch ms; null: now. */
  readonly startsAt: number | null;
  readonly endsAt: number;
  /** The selectors may match every node. */
  readonly all: boolean;
}

/** A window that stopped covering nodes: its nodes settle, then what differs from the last page goes out. */
export interface EndedWindow {
  /** `maint:ID` (or `maint:NAME` for a recurring window). */
  readonly reason: string;
  readonly selectors: readonly Selector[];
  /** Epoch ms. */
  readonly endedAt: number;
}

export interface WindowsDeps {
  clock: Clock;
  emit: Emit;
  config: () => Config;
  /** This monitor's name (`by` of the windows it takes). */
  monitor: string;
  shared: SharedMap<MaintWindow>;
  /** Told when a window stops covering its nodes. */
  ended(window: EndedWindow): void;
  /** Told when the list changed (to be saved). */
  changed(): void;
}

interface Recurring {
  readonly spec: RecurringWindowSpec;
  readonly schedule: Schedule;
  readonly selectors: readonly Selector[];
  /** End of the occurrence last seen running (epoch ms): its end is told once. */
  runningUntil: number | null;
  /**
   * Spans of time already worked out: [from, until) lies wholly inside one occurrence or wholly
   * between two. Finding an occurrence takes dozens of time-zone conversions, and it is asked
   * about every event and every node of a status request.
   */
  spans: { from: number; until: number; occurrence: Occurrence | null }[];
}

/** Spans kept per recurring window (the current one, the one a settle looks back into). */
const SPANS_KEPT = 4;

/** The occurrence of `r` that contains `wallMs`, or null; from the spans when they know. */
function occurrenceOf(r: Recurring, wallMs: number): Occurrence | null {
  for (const span of r.spans) if (wallMs >= span.from && wallMs < span.until) return span.occurrence;
  const occurrence = occurrenceAt(r.schedule, r.spec.timezone, wallMs);
  const span =
    occurrence !== null
      ? { from: occurrence.startsAt, until: occurrence.endsAt, occurrence }
      : { from: wallMs, until: nextOccurrence(r.schedule, r.spec.timezone, wallMs).startsAt, occurrence };
  r.spans.unshift(span);
  if (r.spans.length > SPANS_KEPT) r.spans.pop();
  return occurrence;
}

function selectorsOf(match: readonly string[]): Selector[] {
  return match.map((text) => parseSelector(text)).filter((s): s is Selector => typeof s !== "string");
}

export class Windows {
  private readonly compiled = new Map<string, readonly Selector[]>();
  /** Windows whose end this monitor has acted on. */
  private readonly noted = new Set<string>();
  private recurring: Recurring[] = [];
  private timer: Timer | undefined;
  private stopped = false;
  /** anyNear's answer, kept for a second (status asks it of every node): [at, settleMs, answer]. */
  private near: [number, number, boolean] = [Number.NEGATIVE_INFINITY, 0, false];

  constructor(private readonly deps: WindowsDeps) {
    deps.shared.onChange = (id, value, old) => this.fromPeer(id, value, old);
    this.configure(deps.config());
  }

  /** The recurring windows of a (re)loaded config. */
  configure(config: Config): void {
    const before = new Map(this.recurring.map((r) => [r.spec.name, r]));
    const now = this.deps.clock.wallMs();
    const same = (a: RecurringWindowSpec, b: RecurringWindowSpec): boolean =>
      a.schedule === b.schedule && a.timezone === b.timezone && a.match.join("\n") === b.match.join("\n");
    this.recurring = config.maintenance.windows.flatMap((spec) => {
      const schedule = parseSchedule(spec.schedule);
      if (typeof schedule === "string") return [];
      const old = before.get(spec.name);
      if (old !== undefined && same(old.spec, spec)) {
        before.delete(spec.name);
        return [old];
      }
      const r: Recurring = {
        spec,
        schedule,
        selectors: selectorsOf(spec.match),
        runningUntil: null,
        spans: [],
      };
      r.runningUntil = occurrenceOf(r, now)?.endsAt ?? null;
      return [r];
    });
    // A running window that a reload removed or changed has ended for the nodes it covered.
    for (const old of before.values())
      if (old.runningUntil !== null && now < old.runningUntil)
        this.deps.ended({ reason: `maint:${old.spec.name}`, selectors: old.selectors, endedAt: now });
    this.arm();
  }

  /** The windows read back at start: their ends that passed while the monitor was stopped are not told. */
  loaded(): void {
    const now = this.deps.clock.wallMs();
    for (const [id, w] of this.deps.shared.entries()) if (windowEnd(w) <= now) this.noted.add(id);
    this.arm();
  }

  private selectors(w: MaintWindow): readonly Selector[] {
    let list = this.compiled.get(w.id);
    if (list === undefined) this.compiled.set(w.id, (list = selectorsOf(w.match)));
    return list;
  }

  /**
   * The windows that cover `node` at `wallMs`, as reasons (`maint:ID`): running, or ended less
   * than `settleMs` ago (the node's time to settle). Empty when none.
   */
  covering(
    node: string,
    labels: Readonly<Record<string, string>> | null,
    wallMs: number,
    settleMs: number,
  ): string[] {
    let reasons: string[] | undefined;
    for (const w of this.deps.shared.entries()) {
      const window = w[1];
      if (wallMs < window.startsAt || wallMs >= windowEnd(window) + settleMs) continue;
      if (matchesAny(this.selectors(window), node, labels)) (reasons ??= []).push(`maint:${window.id}`);
    }
    for (const r of this.recurring) {
      // The selectors first: they are cheap, and most nodes are not in most windows.
      if (!matchesAny(r.selectors, node, labels)) continue;
      const occurrence =
        occurrenceOf(r, wallMs) ?? (settleMs > 0 ? occurrenceOf(r, wallMs - settleMs) : null);
      if (occurrence !== null) (reasons ??= []).push(`maint:${r.spec.name}`);
    }
    return reasons ?? [];
  }

  /** Whether any window could cover anything near `wallMs` (a fast no for the common case). */
  anyNear(wallMs: number, settleMs: number): boolean {
    const [at, settle, answer] = this.near;
    if (settle === settleMs && wallMs >= at && wallMs - at < 1000) return answer;
    const found = this.findNear(wallMs, settleMs);
    this.near = [wallMs, settleMs, found];
    return found;
  }

  private findNear(wallMs: number, settleMs: number): boolean {
    for (const r of this.recurring)
      if (occurrenceOf(r, wallMs) !== null || (settleMs > 0 && occurrenceOf(r, wallMs - settleMs) !== null))
        return true;
    for (const [, w] of this.deps.shared.entries())
      if (wallMs >= w.startsAt && wallMs < windowEnd(w) + settleMs) return true;
    return false;
  }

  get(id: string): MaintWindow | undefined {
    return this.deps.shared.get(id);
  }

  get size(): number {
    return this.deps.shared.size;
  }

  /** Every runtime window kept, newest first, and the recurring ones with their current or next occurrence. */
  list(): { windows: (MaintWindow & { state: WindowState })[]; recurring: RecurringWindowView[] } {
    const now = this.deps.clock.wallMs();
    const windows = [...this.deps.shared.entries()]
      .map(([, w]) => ({ ...w, state: windowState(w, now) }))
      .sort((a, b) => b.createdAt - a.createdAt || (a.id < b.id ? -1 : 1));
    const recurring = this.recurring.map((r) => {
      const running = occurrenceOf(r, now);
      const next = running ?? nextOccurrence(r.schedule, r.spec.timezone, now);
      return {
        name: r.spec.name,
        match: r.spec.match,
        schedule: r.spec.schedule,
        timezone: r.spec.timezone,
        state: running === null ? ("scheduled" as const) : ("active" as const),
        startsAt: next.startsAt,
        endsAt: next.endsAt,
      };
    });
    return { windows, recurring };
  }

  /** Takes a new window (already validated) and tells of it. */
  add(w: MaintWindow): void {
    this.deps.shared.set(w.id, w);
    this.told("maint.added", w);
  }

  /** A new end for a window that has not ended; the record it became. */
  extend(w: MaintWindow, endsAt: number): MaintWindow {
    const next = Object.freeze({ ...w, endsAt, rev: w.rev + 1 });
    this.deps.shared.set(w.id, next);
    this.noted.delete(w.id);
    this.told("maint.extended", next);
    return next;
  }

  /** Ends a window now; the record it became. */
  end(w: MaintWindow): MaintWindow {
    const now = this.deps.clock.wallMs();
    const next = Object.freeze({ ...w, endedAt: now, rev: w.rev + 1 });
    this.deps.shared.set(w.id, next);
    this.told("maint.ended", next);
    this.endNow(next);
    return next;
  }

  private told(
    event: "maint.added" | "maint.extended" | "maint.ended" | "maint.expired",
    w: MaintWindow,
  ): void {
    this.deps.emit(event, this.fieldsOf(w));
    this.deps.changed();
    this.arm();
  }

  /** A record taken from another monitor: told here as it was there. */
  private fromPeer(id: string, w: MaintWindow, old: MaintWindow | undefined): void {
    this.compiled.delete(id);
    if (old === undefined) this.told("maint.added", w);
    else if (w.endedAt !== null && old.endedAt === null) {
      this.told("maint.ended", w);
      this.endNow(w);
    } else if (w.endsAt !== old.endsAt) {
      this.noted.delete(id);
      this.told("maint.extended", w);
    } else {
      this.deps.changed();
      this.arm();
    }
  }

  private endNow(w: MaintWindow): void {
    if (this.noted.has(w.id)) return;
    this.noted.add(w.id);
    const now = this.deps.clock.wallMs();
    if (w.startsAt > now) return;
    this.deps.ended({ reason: `maint:${w.id}`, selectors: this.selectors(w), endedAt: now });
  }

  /** The ends due by now: expiries, and recurring occurrences that finished. */
  private edges(): void {
    const now = this.deps.clock.wallMs();
    for (const [id, w] of this.deps.shared.entries()) {
      if (this.noted.has(id) || windowEnd(w) > now) continue;
      if (w.endedAt === null) this.deps.emit("maint.expired", this.fieldsOf(w));
      this.endNow(w);
    }
    for (const r of this.recurring) {
      const running = occurrenceOf(r, now);
      if (r.runningUntil !== null && (running === null || running.endsAt !== r.runningUntil)) {
        this.deps.ended({ reason: `maint:${r.spec.name}`, selectors: r.selectors, endedAt: now });
      }
      r.runningUntil = running?.endsAt ?? null;
    }
    this.arm();
  }

  private fieldsOf(w: MaintWindow): MaintFields {
    return {
      id: w.id,
      match: [...w.match],
      author: w.author,
      comment: w.comment,
      startsAt: w.startsAt,
      endsAt: windowEnd(w),
      by: w.by,
    };
  }

  /** One timer, at the next start or end, and at least once a minute while there are windows. */
  private arm(): void {
    this.near = [Number.NEGATIVE_INFINITY, 0, false];
    const { clock } = this.deps;
    if (this.timer !== undefined) clock.clearTimeout(this.timer);
    this.timer = undefined;
    if (this.stopped) return;
    const now = clock.wallMs();
    let next = Number.POSITIVE_INFINITY;
    for (const [id, w] of this.deps.shared.entries()) {
      if (!this.noted.has(id)) next = Math.min(next, windowEnd(w));
      if (w.startsAt > now) next = Math.min(next, w.startsAt);
    }
    for (const r of this.recurring) {
      const running = occurrenceOf(r, now);
      next = Math.min(next, running?.endsAt ?? nextOccurrence(r.schedule, r.spec.timezone, now).startsAt);
    }
    if (next === Number.POSITIVE_INFINITY) return;
    const delay = Math.min(MAX_EDGE_WAIT_MS, Math.max(0, next - now));
    this.timer = clock.setTimeout(() => this.edges(), delay);
    this.timer.unref?.();
  }

  /** Drops ended windows kept past their time. */
  prune(): void {
    const now = this.deps.clock.wallMs();
    const before = this.deps.shared.size;
    this.deps.shared.prune(now);
    if (this.deps.shared.size === before) return;
    for (const id of [...this.compiled.keys(), ...this.noted])
      if (this.deps.shared.get(id) === undefined) {
        this.compiled.delete(id);
        this.noted.delete(id);
      }
    this.deps.changed();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== undefined) this.deps.clock.clearTimeout(this.timer);
    this.timer = undefined;
  }
}
