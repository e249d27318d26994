// The policy layer: between the detector's events and the notify outputs, it decides which
// judgements become notices. The journal always gets the event; what did not become a notice says
// why (`suppressedBy`: a maintenance window, a parent that blocks, flapping), or that it waits for
// a parent's deadline (`heldBy`). It keeps the last state paged per node, so that a recovery is
// paged exactly when its down was, and so that what ends (a window, a parent's block, flapping)
// pages only what differs from the last page. Detection never waits on any of it.

import type { Clock, Timer } from "../clock.js";
import type { Config, Thresholds } from "../config/types.js";
import { downFields, type NodeFacts } from "../facts.js";
import { matchesAny } from "../selectors.js";
import type { StateName } from "../states.js";
import type { MergeRule, SharedMap } from "./shared.js";
import type { EndedWindow, Windows } from "./windows.js";

type Fields = Readonly<Record<string, unknown>>;

export type Verdict =
  | { readonly notice: "sent"; readonly extra: Fields | null }
  | { readonly notice: "suppressed"; readonly by: readonly string[] }
  | { readonly notice: "held"; readonly by: readonly string[] };

export const SEND: Verdict = Object.freeze({ notice: "sent", extra: null });

/** The last state paged about a node: what a recovery, or the end of a window, is compared with. */
export interface Paged {
  readonly state: "down" | "late" | "up";
  /** Epoch ms. */
  readonly at: number;
}

/** A recovery paged this long ago is forgotten (it is the state nothing is said of). */
const KEEP_UP_MS = 86_400_000;

export const PAGED_RULE: MergeRule<Paged> = {
  wins: (a, b) => a.at > b.at || (a.at === b.at && a.state > b.state),
  keep: (p, wallMs) => p.state !== "up" || wallMs - p.at < KEEP_UP_MS,
};

export function readPaged(raw: unknown): Paged | null {
  if (typeof raw !== "object" || raw === null) return null;
  const p = raw as Record<string, unknown>;
  if ((p.state !== "down" && p.state !== "late" && p.state !== "up") || !Number.isSafeInteger(p.at))
    return null;
  return Object.freeze({ state: p.state, at: p.at as number });
}

/** The first children a parent's page names; the count says how many there are. */
export const CHILDREN_NAMED = 20;
/** A hold for a deadline ends this long after it: the judging timer fires at, not before, it. */
const JUDGED_MARGIN_MS = 1000;
/** Nodes looked at per turn of the loop when a window's nodes are settled. */
const SETTLE_SLICE = 4096;

export interface PolicyDeps {
  clock: Clock;
  config: () => Config;
  windows: Windows;
  paged: SharedMap<Paged>;
  /** The node's state now (derived from its last arrival); null: not tracked. */
  state(node: string): StateName | null;
  facts(node: string): NodeFacts | null;
  /** Visits up to `max` nodes from `fromSlot` on; returns where to go on, or -1. */
  forEachNode(
    fromSlot: number,
    max: number,
    visit: (id: string, state: StateName, lastSeenWallMs: number | null) => void,
  ): number;
  /** Offers a notice decided later (a hold released, a settle); true when this monitor speaks. */
  offer(event: string, fields: Fields): boolean;
  /** Counts a notice that was not sent, by the kind of each reason (maint, parent, flapping, not_paged). */
  suppressed(reasons: readonly string[]): void;
  /** Told when what is kept changed (to be saved). */
  changed(): void;
}

/** A notice waiting for the nodes it depends on to be judged. */
interface Hold {
  readonly event: string;
  readonly fields: Fields;
  /** Parents (for a child's notice) or children (for a parent's) still awaited. */
  readonly awaiting: Set<string>;
  timer: Later | undefined;
}

const NO_REASONS: readonly string[] = Object.freeze([]);

/** The state a notice of these events pages (a recovery, `node.up` from down or late, pages "up"). */
const PAGED_STATE: Readonly<Record<string, "down" | "late" | undefined>> = {
  "node.down": "down",
  "node.late": "late",
};

function isRecovery(event: string, fields: Fields): boolean {
  return event === "node.up" && (fields.previous === "down" || fields.previous === "late");
}

/** A timer of later(): the one it runs on now (it is set again when it fired early). */
interface Later {
  timer: Timer;
}

export class Policy {
  /** Why each node's current problem was not paged. */
  private readonly quiet = new Map<string, readonly string[]>();
  private readonly flapping = new Set<string>();
  /** Parents back from down or flapping, and when (monotonic ms): they block for each child's timeout. */
  private readonly recoveredAt = new Map<string, number>();
  private readonly holds = new Map<string, Hold>();
  /** Per node: the held notices that wait for it (children for their parent, a parent for its children). */
  private readonly awaitedBy = new Map<string, Set<string>>();
  private readonly timers = new Set<Timer>();
  private stopped = false;

  constructor(private readonly deps: PolicyDeps) {}

  private thresholds(node: string): Thresholds {
    const config = this.deps.config();
    return config.nodes.get(node) ?? config.defaults;
  }

  private labels(node: string): Readonly<Record<string, string>> | null {
    return this.deps.config().nodes.get(node)?.labels ?? null;
  }

  private parents(node: string): readonly string[] {
    return this.deps.config().nodes.get(node)?.parents ?? NO_REASONS;
  }

  private children(node: string): readonly string[] {
    return this.deps.config().children.get(node) ?? NO_REASONS;
  }

  /** Whether `parent` keeps `child`'s down and late from paging now. */
  private blocks(parent: string, child: string): boolean {
    if (this.deps.state(parent) === "down" || this.flapping.has(parent)) return true;
    const recovered = this.recoveredAt.get(parent);
    return recovered !== undefined && this.deps.clock.monoMs() < recovered + this.thresholds(child).timeoutMs;
  }

  /**
   * A parent not judged down yet whose silence says it may be dying too: it missed two beats.
   * A child's page waits for its deadline, so that a rack that died at once pages once.
   */
  private suspect(parent: string): boolean {
    const state = this.deps.state(parent);
    if (state !== "up" && state !== "late") return false;
    const facts = this.deps.facts(parent);
    if (facts?.lastSeen == null) return false;
    return this.deps.clock.wallMs() - facts.lastSeen >= 2 * this.thresholds(parent).intervalMs;
  }

  /** Why a notice of `event` about `node` would not page now; empty: it would. */
  private reasons(event: string, node: string, wallMs: number): string[] {
    const reasons = this.deps.windows.covering(
      node,
      this.labels(node),
      wallMs,
      this.thresholds(node).timeoutMs,
    );
    if (event !== "node.flapping" && this.flapping.has(node)) reasons.push("flapping");
    if (event === "node.down" || event === "node.late")
      for (const parent of this.parents(node))
        if (this.blocks(parent, node)) reasons.push(`parent:${parent}`);
    return reasons;
  }

  /** Decides what becomes of one event of the monitor, as it is written to the journal. */
  decide(event: string, fields: Fields): Verdict {
    if (!event.startsWith("node.") || typeof fields.node !== "string") return SEND;
    const node = fields.node;
    if (event === "node.forgotten") {
      this.drop(node);
      this.quiet.delete(node);
      this.flapping.delete(node);
      // Nothing is open about a node the monitor no longer knows; its next down is news.
      const last = this.deps.paged.get(node);
      if (last !== undefined && last.state !== "up")
        this.deps.paged.set(node, Object.freeze({ state: "up", at: this.stamp(node) }));
      return SEND;
    }
    const now = this.deps.clock.wallMs();
    this.track(event, node, fields);
    const paged = this.deps.paged.get(node)?.state;
    if (isRecovery(event, fields)) {
      // A flapping node's recovery waits until it has settled (reconcile then sends it).
      if (this.flapping.has(node)) return { notice: "held", by: ["flapping"] };
      const why = this.quiet.get(node);
      this.quiet.delete(node);
      // The recovery of anything that was paged is never suppressed.
      if (paged === "down" || paged === "late") return SEND;
      return this.suppress(why ?? ["not_paged"]);
    }
    if (event === "node.up" && fields.previous === "new" && (paged === "down" || paged === "late")) {
      // Back while this monitor was not running (or had forgotten it): its incident was paged,
      // so its end is too, as a recovery from what was paged.
      this.deps.clock.setImmediate(() => this.reconcile(node, "restart"));
      return SEND;
    }
    const reasons = this.reasons(event, node, now);
    const problem = event === "node.down" || event === "node.late";
    if (reasons.length > 0) {
      if (problem) this.quiet.set(node, reasons);
      return this.suppress(reasons);
    }
    if (problem) {
      const suspects = this.parents(node).filter((p) => this.suspect(p));
      if (suspects.length > 0) {
        this.hold(node, event, fields, suspects, this.parentWait(suspects, now));
        return { notice: "held", by: suspects.map((p) => `parent:${p}`) };
      }
    }
    // Still down since the last page (a restarted monitor judges it anew): said again only to the
    // outputs that deduplicate, so that an alert stays firing and a hook is not run twice.
    if (event === "node.down" && paged === "down") return { notice: "sent", extra: { alreadyPaged: true } };
    if (event === "node.down" && this.children(node).length > 0) {
      const dying = this.dyingChildren(node, now);
      if (dying.ids.length > 0) {
        this.hold(node, event, fields, dying.ids, dying.untilMs - now);
        return { notice: "held", by: ["children"] };
      }
      return { notice: "sent", extra: this.childrenDown(node) };
    }
    return SEND;
  }

  private suppress(by: readonly string[]): Verdict {
    this.deps.suppressed(by);
    return { notice: "suppressed", by };
  }

  /** What every event says of a node's standing: flapping, a parent's recovery, holds to release. */
  private track(event: string, node: string, fields: Fields): void {
    if (event === "node.flapping") {
      if (fields.settled === true) {
        this.flapping.delete(node);
        if (this.children(node).length > 0) this.recovered(node);
        // Settled: what differs from the last page goes out, once the journal has the line.
        this.deps.clock.setImmediate(() => this.reconcile(node, "flapping"));
      } else this.flapping.add(node);
    }
    // A parent back from down, or one that left (it no longer blocks): its children settle, then
    // those still down page.
    if (
      ((event === "node.up" && fields.previous === "down") || event === "node.left") &&
      this.children(node).length > 0
    )
      this.recovered(node);
    if (event === "node.up" || event === "node.left") this.drop(node);
    // A node judged (down, or back) is no longer awaited: the notices waiting on it decide now.
    if (event === "node.down" || event === "node.up" || event === "node.left") this.judged(node);
  }

  /** A parent is back: it blocks its children for their timeouts, then those still down page together. */
  private recovered(parent: string): void {
    this.recoveredAt.set(parent, this.deps.clock.monoMs());
    this.settle(this.children(parent), 0, `parent:${parent}`, (timeoutMs) => {
      if (this.deps.clock.monoMs() >= (this.recoveredAt.get(parent) ?? 0) + timeoutMs)
        this.recoveredAt.delete(parent);
    });
  }

  /**
   * Each of `nodes` settles for its timeout (less `sinceMs` already passed), then is reconciled:
   * one timer per distinct timeout among them, each told to `then` once it has run.
   */
  private settle(
    nodes: Iterable<string>,
    sinceMs: number,
    after: string,
    then: (timeoutMs: number) => void = () => undefined,
  ): void {
    const byTimeout = new Map<number, string[]>();
    for (const node of nodes) {
      const timeoutMs = this.thresholds(node).timeoutMs;
      let list = byTimeout.get(timeoutMs);
      if (list === undefined) byTimeout.set(timeoutMs, (list = []));
      list.push(node);
    }
    for (const [timeoutMs, list] of byTimeout)
      this.later(Math.max(0, timeoutMs - sinceMs), () => {
        for (const node of list) this.reconcile(node, after);
        then(timeoutMs);
      });
  }

  /**
   * How long a child's page waits for its suspect parents: until the latest of their deadlines,
   * but looked at again every two of their intervals, so that a parent heard again (which makes
   * no event) lets the page go soon.
   */
  private parentWait(parents: readonly string[], now: number): number {
    let until = now;
    let look = Number.POSITIVE_INFINITY;
    for (const p of parents) {
      const facts = this.deps.facts(p);
      if (facts?.lastSeen != null)
        until = Math.max(until, facts.lastSeen + facts.timeoutMs + JUDGED_MARGIN_MS);
      look = Math.min(look, 2 * this.thresholds(p).intervalMs);
    }
    return Math.max(0, Math.min(until - now, look));
  }

  /**
   * The children of a parent just judged down that are dying with it: late, with their deadline
   * within two of their intervals. Its page waits for them, so that it names them all.
   */
  private dyingChildren(parent: string, now: number): { ids: string[]; untilMs: number } {
    const ids: string[] = [];
    let untilMs = now;
    for (const child of this.children(parent)) {
      if (this.deps.state(child) !== "late") continue;
      const facts = this.deps.facts(child);
      if (facts?.lastSeen == null) continue;
      const deadline = facts.lastSeen + facts.timeoutMs;
      if (deadline > now + 2 * this.thresholds(child).intervalMs) continue;
      ids.push(child);
      untilMs = Math.max(untilMs, deadline);
    }
    return { ids, untilMs: untilMs + JUDGED_MARGIN_MS };
  }

  /** What a parent's down page says of its children: how many are down, and the first of them. */
  private childrenDown(parent: string): Fields | null {
    let count = 0;
    const ids: string[] = [];
    for (const child of this.children(parent)) {
      if (this.deps.state(child) !== "down") continue;
      count++;
      if (ids.length < CHILDREN_NAMED) ids.push(child);
    }
    return count === 0 ? null : { children: { down: count, ids } };
  }

  private hold(
    node: string,
    event: string,
    fields: Fields,
    awaiting: readonly string[],
    waitMs: number,
  ): void {
    this.drop(node);
    const hold: Hold = { event, fields, awaiting: new Set(awaiting), timer: undefined };
    this.holds.set(node, hold);
    for (const other of awaiting) {
      let set = this.awaitedBy.get(other);
      if (set === undefined) this.awaitedBy.set(other, (set = new Set()));
      set.add(node);
    }
    hold.timer = this.later(Math.max(0, waitMs), () => {
      hold.timer = undefined;
      this.release(node);
    });
  }

  /** A node's held notice is gone (it recovered, left or was forgotten before its hold ended). */
  private drop(node: string): void {
    const hold = this.holds.get(node);
    if (hold === undefined) return;
    this.holds.delete(node);
    if (hold.timer !== undefined) this.cancel(hold.timer);
    for (const other of hold.awaiting) {
      const waiting = this.awaitedBy.get(other);
      waiting?.delete(node);
      if (waiting?.size === 0) this.awaitedBy.delete(other);
    }
  }

  private judged(node: string): void {
    const waiting = this.awaitedBy.get(node);
    if (waiting === undefined) return;
    this.awaitedBy.delete(node);
    for (const held of waiting) {
      const hold = this.holds.get(held);
      if (hold === undefined) continue;
      hold.awaiting.delete(node);
      if (hold.awaiting.size === 0) this.release(held);
    }
  }

  /** A hold ends: decided again now that the nodes it waited for have been judged (or its time is up). */
  private release(node: string): void {
    const hold = this.holds.get(node);
    if (hold === undefined) return;
    this.drop(node);
    const now = this.deps.clock.wallMs();
    // A child's page whose parents still look dying (silent, not judged yet) waits on.
    const parents = this.parents(node);
    if ([...hold.awaiting].every((other) => parents.includes(other))) {
      const suspects = [...hold.awaiting].filter((p) => this.suspect(p));
      const waitMs = suspects.length > 0 ? this.parentWait(suspects, now) : 0;
      if (waitMs > 0) return this.hold(node, hold.event, hold.fields, suspects, waitMs);
    }
    const reasons = this.reasons(hold.event, node, now);
    if (reasons.length > 0) {
      this.quiet.set(node, reasons);
      this.suppress(reasons);
      return;
    }
    const extra = hold.event === "node.down" ? this.childrenDown(node) : null;
    this.deps.offer(hold.event, extra === null ? hold.fields : { ...hold.fields, ...extra });
  }

  /**
   * What ended for a node (a window, a parent's block, flapping): if nothing else keeps it quiet,
   * a notice goes out when its state differs from the last one paged.
   */
  private reconcile(node: string, after: string): void {
    if (this.stopped) return;
    const now = this.deps.clock.wallMs();
    if (this.holds.has(node)) return;
    const state = this.deps.state(node);
    const paged = this.deps.paged.get(node)?.state ?? "up";
    if (state === "down" && paged !== "down") {
      if (this.reasons("node.down", node, now).length > 0) return;
      const facts = this.deps.facts(node);
      if (facts === null) return;
      this.quiet.delete(node);
      this.deps.offer("node.down", {
        ...downFields(node, facts.lastSeen, facts.timeoutMs, now),
        after,
        ...this.childrenDown(node),
      });
    } else if (state === "up" && paged !== "up") {
      this.quiet.delete(node);
      this.deps.offer("node.up", { node, from: null, previous: paged, after });
    }
  }

  /** Told by a notice that went out (this monitor speaks): the last state paged. */
  offered(event: string, fields: Fields): void {
    if (typeof fields.node !== "string" || !event.startsWith("node.")) return;
    const state = isRecovery(event, fields) ? "up" : PAGED_STATE[event];
    if (state === undefined) return;
    const old = this.deps.paged.get(fields.node);
    // A late that follows a down paged is no news: the incident is the down.
    if (state === "late" && old?.state === "down") return;
    this.deps.paged.set(fields.node, Object.freeze({ state, at: this.stamp(fields.node) }));
    this.deps.changed();
  }

  /** A stamp later than the node's last record's: the newer page wins between monitors. */
  private stamp(node: string): number {
    return Math.max(this.deps.clock.wallMs(), (this.deps.paged.get(node)?.at ?? 0) + 1);
  }

  /**
   * A monitor that starts speaking says again what is down: "quiet" (a window, a parent or
   * flapping keeps it from paging), "repeat" (the last state paged, shared in a cluster,
   * says it was: only outputs that deduplicate take it) or "page".
   */
  reassert(node: string): "quiet" | "repeat" | "page" {
    if (this.reasons("node.down", node, this.deps.clock.wallMs()).length > 0) return "quiet";
    return this.deps.paged.get(node)?.state === "down" ? "repeat" : "page";
  }

  /**
   * A window stopped covering its nodes: each one settles for its timeout, then is reconciled.
   * The fleet is walked once, a slice at a time, for the nodes it covered; a timer per distinct
   * timeout among them.
   */
  windowEnded(window: EndedWindow): void {
    const covered: string[] = [];
    const step = (from: number): void => {
      if (this.stopped) return;
      const next = this.deps.forEachNode(from, SETTLE_SLICE, (id) => {
        if (matchesAny(window.selectors, id, this.labels(id))) covered.push(id);
      });
      if (next >= 0) return this.deps.clock.setImmediate(() => step(next));
      this.settle(covered, this.deps.clock.wallMs() - window.endedAt, window.reason);
    };
    step(0);
  }

  /**
   * What `hb status` adds to a node's state: the windows it is in now, and the parents that keep
   * its down from paging. Null when neither (the usual case, answered without looking further).
   */
  annotate(node: string, state: StateName): { maintenance?: string[]; via?: string[] } | null {
    const now = this.deps.clock.wallMs();
    const parents = state === "down" ? this.parents(node) : NO_REASONS;
    const windows = this.deps.windows.anyNear(now, 0);
    if (!windows && parents.length === 0) return null;
    const maintenance = windows
      ? this.deps.windows.covering(node, this.labels(node), now, 0).map((r) => r.slice("maint:".length))
      : [];
    const via = parents.filter((p) => this.blocks(p, node));
    if (maintenance.length === 0 && via.length === 0) return null;
    return { ...(maintenance.length > 0 ? { maintenance } : {}), ...(via.length > 0 ? { via } : {}) };
  }

  /**
   * Runs `run` once `delayMs` have passed by the monotonic clock. A timer may fire a little early
   * by that clock (Node's timers count whole milliseconds of a clock read once per turn): then
   * it waits out the rest, so that what runs never finds itself just short of its instant (a
   * settle that found its parent's block not yet over would never look again).
   */
  private later(delayMs: number, run: () => void): Later {
    const due = this.deps.clock.monoMs() + delayMs;
    const fire = (): void => {
      this.timers.delete(later.timer);
      if (this.stopped) return;
      const early = due - this.deps.clock.monoMs();
      if (early > 0) {
        later.timer = this.deps.clock.setTimeout(fire, Math.ceil(early));
        this.timers.add(later.timer);
        return;
      }
      run();
    };
    const later: Later = { timer: this.deps.clock.setTimeout(fire, delayMs) };
    this.timers.add(later.timer);
    return later;
  }

  private cancel(later: Later): void {
    this.deps.clock.clearTimeout(later.timer);
    this.timers.delete(later.timer);
  }

  stop(): void {
    this.stopped = true;
    for (const timer of this.timers) this.deps.clock.clearTimeout(timer);
    this.timers.clear();
    this.deps.windows.stop();
  }
}
