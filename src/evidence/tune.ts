// `hb tune`: the `late` and `timeout` that a node's observed gaps support for a target rate of
// false suspicion, with the detection time that follows. Pure: gap statistics in (from a running
// monitor's /status, or worked out exactly from a trace), suggestions out.
//
// The model. A timeout T is a false suspicion whenever a gap of a live node exceeds it, so for
// a target of M mistakes per node per day, at D = 86 400 000 / interval gaps a day, a gap may
// exceed T with probability p = M / D. The observed gaps give the p99 directly, but p is far
// smaller (1e-7 for one mistake in 100 days at 1 s): beyond the data the tail is taken to fall
// off exponentially above the p99 (heartbeat delays, losses in a row and pauses all do, to a
// first approximation), with its scale fitted so that the largest of the n gaps seen is where
// that tail puts the largest of n: P(gap > max) = 1/n. Then
//
//   T = p99 + β ln(0.01 / p),   β = (max − p99) / ln(n / 100).
//
// Losses in a row are the other way a live node's gap grows, a whole interval at a time: with a
// fraction l of its heartbeats lost independently, a gap spans K + 1 intervals with probability
// l^K, so a timeout half an interval past K + 1 of them is exceeded only by K + 1 losses in a
// row. The suggestion is the larger of the two models (a node's loss is known from its
// sequence numbers; in a trace, from gaps of whole intervals).
//
// `late` is the same at a rate LATE_RATE times higher (a warning may come that much more often).
// Both are never below the largest gap seen times MARGIN, nor below what `hb check-config`
// allows (timeout > 2 × interval), and are rounded up. Fewer than MIN_GAPS gaps are too few to
// fit a tail: such a node counts in its set only by its largest gap (the floor), and a set with
// no node of enough gaps keeps its settings, and says so.

import { formatDuration } from "../duration.js";

export const DEFAULT_MISTAKES_PER_DAY = 0.01;
/** `late` is fitted for this many times the mistakes `timeout` is. */
export const LATE_RATE = 100;
/** Never suggest less than the largest gap seen times this. */
export const MARGIN = 1.25;
/** Fewer gaps than this fit no tail. */
export const MIN_GAPS = 1000;

const DAY_MS = 86_400_000;

export interface GapSummary {
  /** The fraction of its heartbeats lost (0 to 1); undefined when not known. */
  readonly loss?: number;
  readonly count: number;
  readonly meanMs: number;
  readonly stdMs: number;
  readonly p99Ms: number;
  readonly maxMs: number;
}

/** A node as tune sees it: its settings now, and its gaps (null: too few to say anything). */
export interface TuneInput {
  readonly node: string;
  readonly intervalMs: number;
  readonly lateMs: number;
  readonly timeoutMs: number;
  /** Its detector now, as text ("fixed", "phi threshold 8"): nodes are grouped by settings. */
  readonly detector: string;
  /** Unlisted nodes are judged by the defaults. */
  readonly expected: boolean;
  readonly gaps: GapSummary | null;
}

export interface Suggestion {
  readonly lateMs: number;
  readonly timeoutMs: number;
  /** Whether the gaps were enough to fit a tail (else: the settings now, kept). */
  readonly fitted: boolean;
}

/** The silence exceeded with probability `p`, by the larger of the two models above. */
function quantile(g: GapSummary, intervalMs: number, p: number): number {
  const beta = Math.max(g.maxMs - g.p99Ms, 0) / Math.log(g.count / 100);
  const tail = g.p99Ms + beta * Math.log(0.01 / p);
  // A node that loses half its heartbeats is taken as losing half (it is late often anyway).
  const loss = Math.min(g.loss ?? 0, 0.5);
  if (loss <= 0) return tail;
  // l^(K+1) ≤ p: exceeded only by K + 1 losses in a row.
  const inRow = Math.ceil(Math.log(p) / Math.log(loss));
  return Math.max(tail, (inRow + 0.5) * intervalMs);
}

/** The step a person would round `ms` to: 10 ms below 1 s, 100 ms below 10 s, 1 s, then 5 s. */
function stepOf(ms: number): number {
  return ms < 1000 ? 10 : ms < 10_000 ? 100 : ms < 60_000 ? 1000 : 5000;
}

export function roundUp(ms: number): number {
  const step = stepOf(ms);
  return Math.ceil(ms / step - 1e-9) * step;
}

/** The suggestion for one node's gaps; null when they are too few to fit a tail. */
export function suggest(g: GapSummary, intervalMs: number, mistakesPerDay: number): Suggestion | null {
  if (g.count < MIN_GAPS || g.maxMs <= 0) return null;
  const gapsPerDay = DAY_MS / intervalMs;
  const p = Math.min(0.01, mistakesPerDay / gapsPerDay);
  const floor = g.maxMs * MARGIN;
  let timeout = Math.max(quantile(g, intervalMs, p), floor);
  let late = Math.max(quantile(g, intervalMs, Math.min(0.01, p * LATE_RATE)), floor);
  timeout = roundUp(Math.max(timeout, 2 * intervalMs + 1));
  late = Math.min(roundUp(Math.max(late, intervalMs)), timeout - stepOf(timeout));
  return { lateMs: late, timeoutMs: timeout, fitted: true };
}

/** Nodes with the same settings now, and the one suggestion for all of them. */
export interface TuneSet {
  readonly intervalMs: number;
  readonly lateMs: number;
  readonly timeoutMs: number;
  readonly detector: string;
  /** The set the defaults judge (it holds the unlisted nodes, else it is the largest). */
  readonly defaults: boolean;
  readonly nodes: readonly string[];
  /** Nodes of the set not heard twice yet, and those with too few gaps to fit a tail. */
  readonly unheard: number;
  readonly few: number;
  readonly gaps: number;
  /** The largest gap of any node of the set, and the node. */
  readonly maxMs: number;
  readonly maxNode: string | null;
  readonly suggestion: Suggestion | null;
}

/** Groups nodes by their settings now; each set gets the largest of its nodes' suggestions. */
export function tune(inputs: readonly TuneInput[], mistakesPerDay: number): TuneSet[] {
  const sets = new Map<string, TuneInput[]>();
  for (const input of inputs) {
    const key = `${input.intervalMs}/${input.lateMs}/${input.timeoutMs}/${input.detector}`;
    let set = sets.get(key);
    if (set === undefined) sets.set(key, (set = []));
    set.push(input);
  }
  const groups = [...sets.values()];
  const defaults =
    groups.find((g) => g.some((n) => !n.expected)) ??
    groups.reduce<TuneInput[] | undefined>(
      (a, b) => (a === undefined || b.length > a.length ? b : a),
      undefined,
    );
  return groups.map((members) => {
    const first = members[0]!;
    let late = 0;
    let timeout = 0;
    let gaps = 0;
    let maxMs = 0;
    let maxNode: string | null = null;
    let unheard = 0;
    let few = 0;
    for (const n of members) {
      if (n.gaps === null || n.gaps.count === 0) {
        unheard++;
        continue;
      }
      const s = suggest(n.gaps, n.intervalMs, mistakesPerDay);
      if (s === null) few++;
      else {
        late = Math.max(late, s.lateMs);
        timeout = Math.max(timeout, s.timeoutMs);
      }
      gaps += n.gaps.count;
      if (n.gaps.maxMs > maxMs || maxNode === null) {
        maxMs = n.gaps.maxMs;
        maxNode = n.node;
      }
    }
    const heard = members.length - unheard;
    const fitted = heard > few;
    if (fitted && few > 0) {
      // The largest gap of a node too new to fit still sets the floor.
      timeout = Math.max(timeout, roundUp(maxMs * MARGIN));
      late = Math.max(late, Math.min(roundUp(maxMs * MARGIN), timeout - stepOf(timeout)));
    }
    return {
      intervalMs: first.intervalMs,
      lateMs: first.lateMs,
      timeoutMs: first.timeoutMs,
      detector: first.detector,
      defaults: members === defaults,
      nodes: members.map((n) => n.node),
      unheard,
      few,
      gaps,
      maxMs,
      maxNode,
      suggestion:
        heard === 0
          ? null
          : fitted
            ? { lateMs: late, timeoutMs: timeout, fitted }
            : { lateMs: first.lateMs, timeoutMs: first.timeoutMs, fitted },
    };
  });
}

/** "3h36m", "2.5d": how much time `gaps` gaps of `intervalMs` span. */
function spanOf(gaps: number, intervalMs: number): string {
  const ms = gaps * intervalMs;
  if (ms >= 2 * DAY_MS) return `${(ms / DAY_MS).toFixed(1)} days`;
  if (ms >= 3_600_000) return `${(ms / 3_600_000).toFixed(1)} h`;
  if (ms >= 60_000) return `${Math.round(ms / 60_000)} min`;
  return `${Math.round(ms / 1000)} s`;
}

/** "2.013s", "207ms": a gap as measured. */
const gapText = (ms: number): string => (ms < 1000 ? `${Math.ceil(ms)}ms` : `${(ms / 1000).toFixed(3)}s`);

const count = (n: number): string => n.toLocaleString("en-US").replaceAll(",", " ");

/** The suggestions as YAML to paste into heartbeat.yaml, every figure explained in a comment. */
export function formatTune(sets: readonly TuneSet[], mistakesPerDay: number, source: string): string {
  const nodes = sets.reduce((sum, s) => sum + s.nodes.length, 0);
  const perNode =
    mistakesPerDay >= 1 ? `${mistakesPerDay} a day` : `one in ${Math.round(1 / mistakesPerDay)} days`;
  const out: string[] = [
    `# hb tune: the late and timeout the gaps observed (${source}) support,`,
    `# for ${mistakesPerDay} false downs per node per day (${perNode}; late: ${LATE_RATE}x that),`,
    `# about ${count(Math.round(mistakesPerDay * nodes * 365))} a year over these ${count(nodes)} nodes.`,
  ];
  const entry = (s: TuneSet): string[] => {
    const now = `now interval ${formatDuration(s.intervalMs)}, late ${formatDuration(s.lateMs)}, timeout ${formatDuration(s.timeoutMs)}${s.detector === "fixed" ? "" : `, ${s.detector}`}`;
    const data = `${count(s.gaps)} gaps (${spanOf(s.gaps / Math.max(1, s.nodes.length - s.unheard), s.intervalMs)} a node), largest ${gapText(s.maxMs)}${s.maxNode === null ? "" : ` (${s.maxNode})`}`;
    const notes = [`# ${s.nodes.length} node${s.nodes.length === 1 ? "" : "s"} ${now}; ${data}`];
    if (s.unheard > 0) notes.push(`# ${s.unheard} not heard twice yet: left out`);
    if (s.suggestion !== null && !s.suggestion.fitted)
      notes.push(`# fewer than ${count(MIN_GAPS)} gaps a node: too few to suggest anything, so kept as now`);
    else if (s.few > 0)
      notes.push(`# ${s.few} with fewer than ${count(MIN_GAPS)} gaps: counted by their largest gap only`);
    return notes;
  };
  const detection = (s: TuneSet): string => {
    const t = s.suggestion!.timeoutMs;
    const change =
      t < s.timeoutMs
        ? `${formatDuration(s.timeoutMs - t)} sooner than now`
        : t > s.timeoutMs
          ? `${formatDuration(t - s.timeoutMs)} later than now`
          : "as now";
    return `# a crash is down within ${formatDuration(t)} of its last heartbeat (${change})`;
  };
  const defaults = sets.find((s) => s.defaults);
  if (defaults !== undefined) {
    out.push("", ...entry(defaults));
    if (defaults.suggestion === null) out.push("# defaults: no gaps to go by yet");
    else
      out.push(
        "defaults:",
        `  late: ${formatDuration(defaults.suggestion.lateMs)}`,
        `  timeout: ${formatDuration(defaults.suggestion.timeoutMs)} ${detection(defaults)}`,
      );
  }
  const others = sets.filter((s) => !s.defaults);
  if (others.length > 0) {
    out.push("", "nodes:");
    for (const s of others) {
      out.push(...entry(s).map((line) => `  ${line}`));
      if (s.suggestion === null) continue;
      for (const node of s.nodes)
        out.push(
          `  ${/^[A-Za-z][A-Za-z0-9_-]*$/.test(node) ? node : JSON.stringify(node)}: { late: ${formatDuration(s.suggestion.lateMs)}, timeout: ${formatDuration(s.suggestion.timeoutMs)} }`,
        );
      out.push(`  ${detection(s)}`);
    }
  }
  return out.join("\n") + "\n";
}
