// Liveness from arrival times; pure: times in, events out. Per node it keeps when the last
// datagram arrived, incarnation, sequence and counters; up/late/down are derived from
// `now - lastSeen`, and the state last *reported* is kept only so events fire on transitions.
// One timer armed at nextDeadline() serves the whole fleet, whatever its size or thresholds;
// after a monitor stall, deadlines that fell in it are held until nodes could speak.

import type { Config, PhiSpec } from "../config/types.js";
import type { Sliced } from "../slices.js";
import type { Emit } from "../events.js";
import { STATES, type Counts } from "../states.js";
import { Kind, nodeIdOf, type Datagram } from "../wire/protocol.js";
import { recordGap } from "./arrivals.js";
import { DetectorState, L_FORGET, L_LATE, L_PHI, L_UP } from "./detector-state.js";
import {
  F_EXPECTED,
  F_LEFT,
  F_PAUSED,
  F_SIGNED,
  F_UNNUMBERED,
  NEVER,
  NONE,
  S_DOWN,
  S_LATE,
  S_LEFT,
  S_NEW,
  S_PAUSED,
  S_UP,
} from "./node-table.js";
import { FLAP_CHANGES, FLAP_WINDOW_MS, Flapping } from "./flapping.js";
import { drop, evict, forgetNode, marksOf, restoreMarks, takeFloor } from "./membership.js";
import { commitSteps, reconfigure, stage, type Staged } from "./reconfigure.js";
import type { LeapReason } from "./replay-guard.js";
import { isReplay, type ReplayMark } from "./replay-marks.js";
import { NodeReader, countStates, viewNodes, type NodeView } from "./views.js";

export type DetectorReason = "replay" | "unknown_node" | "too_many_nodes" | "unauthenticated" | LeapReason;

/** Where a datagram came from; formatted only when an event needs it. */
export interface Origin {
  readonly address: string;
  readonly port: number;
}

export interface DetectorOptions {
  emit: Emit;
  /** Epoch milliseconds of a monotonic instant (display only). */
  toWall: (monoMs: number) => number;
}

/**
 * A heartbeat moves its node to the tail of its group's `up` list in O(1); a group's earliest
 * deadline is at a list head, and the groups sit in a heap keyed by it (lazily: a key may be
 * early, never late), so finding the next deadline costs O(log groups), never O(nodes).
 */
export class Detector {
  private readonly s: DetectorState;
  private readonly emit: Emit;
  private readonly flapping: Flapping;

  constructor(config: Config, nowMs: number, options: DetectorOptions) {
    this.s = new DetectorState(options.toWall);
    this.emit = options.emit;
    this.flapping = new Flapping(this.s);
    this.configure(config, nowMs);
  }

  get size(): number {
    return this.s.t.size;
  }

  /** Smallest `late` of any group: a heartbeat never creates a deadline sooner than now + this. */
  get minLateMs(): number {
    return this.s.minLateMs;
  }

  /**
   * Records one decoded datagram that arrived at `nowMs`; returns null or why it was refused.
   * `signed`: it carried a tag that was verified (authentication on).
   */
  observe(dg: Datagram, nowMs: number, origin: Origin, signed = false): DetectorReason | null {
    const s = this.s;
    const t = s.t;
    // Found by the id's bytes: a heartbeat from a known node makes no string, and no object.
    let slot = t.index.getBytes(dg.buf, dg.idStart, dg.idLength);
    if (slot === NONE) {
      const result = this.admitNew(dg, nowMs, signed);
      if (typeof result === "string") return result;
      slot = result;
    } else {
      if (
        dg.incarnation < t.incarnation[slot]! ||
        (dg.incarnation === t.incarnation[slot] && dg.sequence <= t.sequence[slot]!)
      )
        return "replay";
      if (!signed && (t.flags[slot]! & F_SIGNED) !== 0 && s.auth === "optional") return "unauthenticated";
      const leap = s.guard.check(
        t.ids[slot]!,
        dg,
        t.incarnation[slot]!,
        t.sequence[slot]!,
        nowMs,
        s.toWall,
        t.lastSeen[slot]!,
        s.groupOf(slot).intervalMs,
        (t.flags[slot]! & F_UNNUMBERED) !== 0,
      );
      if (leap !== null) return leap;
    }
    if (signed) t.flags[slot] = t.flags[slot]! | F_SIGNED;
    t.flags[slot] = dg.unnumbered ? t.flags[slot]! | F_UNNUMBERED : t.flags[slot]! & ~F_UNNUMBERED;
    const incarnation = t.incarnation[slot]!;
    if (dg.incarnation === incarnation) {
      // Datagrams sent while this monitor was not running are not the network's loss.
      if (t.received[slot]! > 0 && !dg.unnumbered) t.lost[slot]! += dg.sequence - t.sequence[slot]! - 1;
    } else if (incarnation >= 0 && (t.flags[slot]! & F_LEFT) === 0) {
      // A new incarnation after a leave is a planned restart: the node's return says enough (up,
      // previous left). Without one, the process died and was started again: a crash.
      t.countRestart(slot);
      t.setFrom(slot, origin.address, origin.port);
      if (this.loud(slot, nowMs)) {
        this.emit("node.restarted", {
          node: t.ids[slot]!,
          from: t.from(slot)!,
          incarnation: dg.incarnation,
          previousIncarnation: incarnation,
        });
      }
    }
    t.incarnation[slot] = dg.incarnation;
    t.sequence[slot] = dg.sequence;
    const seen = t.received[slot]!;
    const previous = t.lastSeen[slot]!;
    // A silence that ended in a down was an outage, not a gap between heartbeats.
    if (previous !== NEVER && t.reported[slot] !== S_DOWN) recordGap(t, slot, nowMs - previous, seen);
    t.received[slot] = seen + 1;
    t.lastSeen[slot] = nowMs;

    const flags = t.flags[slot]!;
    if (dg.kind === Kind.LEAVE) {
      t.flags[slot] = flags | F_LEFT;
      s.unlink(slot);
      if ((flags & F_EXPECTED) === 0) this.forgetLater(slot, nowMs);
      if (t.reported[slot] !== S_LEFT) {
        const first = t.reported[slot] === S_NEW;
        t.reported[slot] = S_LEFT;
        t.setFrom(slot, origin.address, origin.port);
        if (first || this.loud(slot, nowMs))
          this.emit("node.left", { node: t.ids[slot]!, from: t.from(slot)! });
      }
      return null;
    }
    t.flags[slot] = flags & ~F_LEFT;
    t.until[slot] = NEVER;
    if ((flags & F_PAUSED) !== 0) {
      s.unlink(slot);
      t.reported[slot] = S_PAUSED;
      return null;
    }
    const group = s.groupOf(slot);
    if (group.phi !== null) this.phiHeard(slot, group.phi, nowMs, previous);
    else {
      s.move(slot, group.up, L_UP);
      if (group.up.head === slot) s.schedule(group);
    }
    if (t.reported[slot] !== S_UP) this.reportUp(slot, nowMs, origin);
    return null;
  }

  /**
   * A φ node was heard at `nowMs` (`previous`: its arrival before). Its interval goes into its
   * window unless it was already past the threshold (or judged down) when it arrived; its first
   * heartbeat starts the window from the bootstrap. Then its deadlines are worked out anew.
   */
  private phiHeard(slot: number, spec: PhiSpec, nowMs: number, previous: number): void {
    const s = this.s;
    const t = s.t;
    const h = s.phi!;
    h.ensure(t.capacity);
    if (previous === NEVER || h.window[slot] !== spec.window)
      h.bootstrap(slot, s.groupOf(slot).intervalMs, spec.window);
    else if (t.reported[slot] !== S_DOWN && nowMs - previous < h.downAfter[slot]!)
      h.record(slot, Math.round(nowMs - previous));
    s.phiDeadlines(slot);
    if (t.list[slot] !== L_PHI) s.unlink(slot);
    // Heard: up from here, so its next deadline is its late one.
    s.schedulePhi(slot, s.lateAfterMs(slot));
  }

  /** A datagram from a node not in the table: its slot, once let in, or why it is not. */
  private admitNew(dg: Datagram, nowMs: number, signed: boolean): DetectorReason | number {
    const s = this.s;
    if (s.unknownNodes === "ignore") return "unknown_node";
    const id = nodeIdOf(dg);
    const floor = s.floors.get(id);
    if (floor !== undefined) {
      if (isReplay(dg, floor)) return "replay";
      if (floor.signed && !signed && s.auth === "optional") return "unauthenticated";
    }
    const leap = s.guard.check(
      id,
      dg,
      floor?.incarnation ?? -1,
      floor?.sequence ?? -1,
      nowMs,
      s.toWall,
      NEVER,
      s.defaultGroup.intervalMs,
      false,
    );
    if (leap !== null) return leap;
    if (s.t.size >= s.maxNodes && !evict(s)) return "too_many_nodes";
    const slot = s.t.add(id, s.defaultGroup.index, 0);
    takeFloor(s, slot);
    return slot;
  }

  private reportUp(slot: number, nowMs: number, origin: Origin): void {
    const t = this.s.t;
    const previous = STATES[t.reported[slot]!]!;
    t.reported[slot] = S_UP;
    t.setFrom(slot, origin.address, origin.port);
    if (previous !== "new" && !this.loud(slot, nowMs, previous === "down")) return;
    const node = t.ids[slot]!;
    const from = t.from(slot)!;
    if (previous === "down") {
      this.emit("node.up", {
        node,
        from,
        previous,
        downMs: Math.max(0, Math.round(nowMs - t.downAt[slot]!)),
      });
    } else {
      this.emit("node.up", { node, from, previous });
    }
  }

  /** Reports every transition due at `nowMs`. */
  advance(nowMs: number): void {
    const s = this.s;
    const t = s.t;
    const emit = this.emit;
    for (s.settleHeap(); s.due(s.heap.peekKey(), nowMs); s.settleHeap()) {
      const group = s.heap.peekItem()!;
      s.heap.pop();
      group.heapKey = Number.POSITIVE_INFINITY;
      for (
        let n = group.up.head;
        n !== NONE && s.due(t.lastSeen[n]! + group.lateMs, nowMs);
        n = group.up.head
      ) {
        t.push(group.late, L_LATE, n, group.up);
        t.reported[n] = S_LATE;
        if (this.loud(n, nowMs)) {
          emit("node.late", {
            node: t.ids[n]!,
            silentMs: Math.round(nowMs - t.lastSeen[n]!),
            lateMs: group.lateMs,
          });
        }
      }
      for (
        let n = group.late.head;
        n !== NONE && s.due(t.lastSeen[n]! + group.timeoutMs, nowMs);
        n = group.late.head
      ) {
        t.unlink(group.late, n);
        this.reportDown(n, t.lastSeen[n]! + group.timeoutMs, nowMs);
      }
      s.schedule(group);
    }
    const phi = s.phiHeap;
    for (let n = phi.peekSlot(); n !== NONE && s.due(phi.peekKey(), nowMs); n = phi.peekSlot()) {
      if (t.reported[n] !== S_LATE) {
        t.reported[n] = S_LATE;
        const lateAfter = s.lateAfterMs(n);
        phi.set(n, t.lastSeen[n]! + s.downAfterMs(n));
        if (this.loud(n, nowMs)) {
          emit("node.late", {
            node: t.ids[n]!,
            silentMs: Math.round(nowMs - t.lastSeen[n]!),
            lateMs: Math.round(lateAfter),
          });
        }
      } else {
        s.unlink(n);
        this.reportDown(n, t.lastSeen[n]! + s.downAfterMs(n), nowMs);
      }
    }
    for (let n = s.unheard.head; n !== NONE && s.due(t.until[n]!, nowMs); n = s.unheard.head) {
      t.unlink(s.unheard, n);
      this.reportDown(n, t.until[n]!, nowMs);
    }
    for (let n = s.forgettable.head; n !== NONE && t.until[n]! <= nowMs; n = s.forgettable.head) {
      const node = t.ids[n]!;
      const silentMs = Math.round(nowMs - t.lastSeen[n]!);
      drop(s, n);
      emit("node.forgotten", { node, silentMs, by: "forget_after" });
    }
    this.flapping.settle(nowMs, (slot, changes) => {
      const state = STATES[t.reported[slot]!]!;
      emit("node.flapping", { node: t.ids[slot]!, changes, windowMs: FLAP_WINDOW_MS, settled: true, state });
    });
  }

  /**
   * An operator's `hb forget`: the node's replay mark and history go (see membership.ts).
   * False when the monitor knows nothing of it.
   */
  forget(id: string, nowMs: number): boolean {
    return forgetNode(this.s, id, nowMs);
  }

  private forgetLater(slot: number, nowMs: number): void {
    this.s.t.until[slot] = nowMs + this.s.forgetAfterMs;
    this.s.move(slot, this.s.forgettable, L_FORGET);
  }

  /** Restores the replay marks saved before a restart: older datagrams stay refused. */
  restoreMarks(marks: Iterable<[string, ReplayMark]>): void {
    restoreMarks(this.s, marks);
  }

  /** Unlisted nodes evicted to make room for newcomers since start. */
  get evicted(): number {
    return this.s.evicted;
  }

  /** The replay marks to save: every node's highest accepted incarnation and sequence. */
  marks(): IterableIterator<[string, ReplayMark]> {
    return marksOf(this.s);
  }

  /**
   * Whether a transition of `slot` goes to the journal now, or is kept quiet because the node is
   * flapping (said once, when it starts: the transition it is making is in `state`). `always`: a
   * transition to or from down, which counts toward flapping but is never kept quiet.
   */
  private loud(slot: number, nowMs: number, always = false): boolean {
    const verdict = this.flapping.change(slot, nowMs);
    if (verdict === "report") return true;
    if (verdict === "started") {
      const t = this.s.t;
      this.emit("node.flapping", {
        node: t.ids[slot]!,
        changes: FLAP_CHANGES + 1,
        windowMs: FLAP_WINDOW_MS,
        settled: false,
        state: STATES[t.reported[slot]!]!,
      });
    }
    return always;
  }

  private reportDown(slot: number, deadline: number, nowMs: number): void {
    const t = this.s.t;
    const first = t.reported[slot] === S_NEW;
    t.reported[slot] = S_DOWN;
    t.downAt[slot] = deadline;
    if ((t.flags[slot]! & F_EXPECTED) === 0) this.forgetLater(slot, nowMs);
    if (first || this.loud(slot, nowMs, true)) this.emitDown(slot, deadline, nowMs);
  }

  private emitDown(slot: number, deadline: number, nowMs: number): void {
    const s = this.s;
    const t = s.t;
    const heard = t.lastSeen[slot] !== NEVER;
    // φ's deadline need not fall on a whole ms; what the event says of it does.
    const timeoutMs = s.isPhi(slot) ? Math.round(s.downAfterMs(slot)) : s.groupOf(slot).timeoutMs;
    const node = t.ids[slot]!;
    // One conversion to epoch ms, so that at = lastSeen + timeout holds exactly in the event.
    const lastSeen = heard ? s.toWall(t.lastSeen[slot]!) : null;
    const silentMs = Math.round(nowMs - (heard ? t.lastSeen[slot]! : deadline - s.startupGraceMs));
    this.emit("node.down", {
      node,
      lastSeen,
      silentMs,
      timeoutMs,
      at: lastSeen === null ? s.toWall(deadline) : lastSeen + timeoutMs,
    });
  }

  /** The earliest instant at which advance() has something to report, if any. */
  nextDeadline(): number | undefined {
    const s = this.s;
    s.settleHeap();
    let next = Math.min(s.heap.peekKey(), s.phiHeap.peekKey());
    if (s.unheard.head !== NONE) next = Math.min(next, s.t.until[s.unheard.head]!);
    if (next >= s.holdFrom && next < s.holdUntil) next = s.holdUntil;
    // Forgetting and settling are housekeeping, not judgement: a monitor stall holds neither back.
    if (s.forgettable.head !== NONE) next = Math.min(next, s.t.until[s.forgettable.head]!);
    next = Math.min(next, this.flapping.nextSettle());
    return next === Number.POSITIVE_INFINITY ? undefined : next;
  }

  /**
   * The monitor could not run from `fromMs` to `nowMs`: silence in that span proves nothing, so
   * no deadline from `fromMs` on is judged before `nowMs + holdMs`.
   */
  hold(fromMs: number, nowMs: number, holdMs: number): void {
    const s = this.s;
    if (nowMs >= s.holdUntil) s.holdFrom = fromMs;
    else s.holdFrom = Math.min(s.holdFrom, fromMs);
    s.holdUntil = Math.max(s.holdUntil, nowMs + holdMs);
  }

  /**
   * Applies a (new) config at `nowMs` (see reconfigure.ts). Transitions this causes are reported
   * by the next advance(), so the caller should call it and re-arm its timer.
   */
  configure(config: Config, nowMs: number): void {
    reconfigure(this.s, config, nowMs);
  }

  /** Whether `hb forget` would find anything of `node`. */
  knows(node: string): boolean {
    return this.s.t.index.get(node) !== undefined || this.s.floors.has(node);
  }

  /** configure() in two parts: stage() while this detector goes on, then commitSteps(). */
  stage(config: Config): Sliced<Staged> {
    return stage(this.s, config);
  }

  /** Applies a staged config a step at a time: see commitSteps() for what may run between. */
  commitSteps(staged: Staged, nowMs: number): Sliced<void> {
    return commitSteps(this.s, staged, nowMs);
  }

  counts(nowMs: number): Counts {
    return countStates(this.s, nowMs);
  }

  /** The slot of the node `dg` names, found by its id's bytes (NONE when there is none): `hb capture`. */
  slotOf(dg: Datagram): number {
    return this.s.t.index.getBytes(dg.buf, dg.idStart, dg.idLength);
  }

  /** Read access by slot, for walking a large fleet a slice at a time. */
  reader(): NodeReader {
    return new NodeReader(this.s);
  }

  view(nowMs: number): NodeView[] {
    return viewNodes(this.s, nowMs);
  }
}
