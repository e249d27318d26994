// Liveness from arrival times; pure: times in, events out. Per node it keeps when the last
// datagram arrived, incarnation, sequence and counters; up/late/down are derived from
// `now - lastSeen`, and the state last *reported* is kept only so events fire on transitions.
// One timer armed at nextDeadline() serves the whole fleet, whatever its size or thresholds;
// after a monitor stall, deadlines that fell in it are held until nodes could speak.

import type { Config } from "../config/types.js";
import type { Emit, StateName } from "../events.js";
import { Kind, type Datagram } from "../wire/protocol.js";
import { DetectorState, L_FORGET, L_LATE, L_UP } from "./detector-state.js";
import {
  F_EXPECTED,
  F_LEFT,
  F_PAUSED,
  NEVER,
  NONE,
  STATE_NAMES,
  S_DOWN,
  S_LATE,
  S_LEFT,
  S_PAUSED,
  S_UP,
} from "./node-table.js";
import { reconfigure } from "./reconfigure.js";
import type { ReplayMark } from "./replay-marks.js";
import { countStates, forEachNode, viewNodes, type Counts, type NodeView } from "./views.js";

export type DetectorReason = "replay" | "unknown_node" | "too_many_nodes";

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

function isReplay(dg: Datagram, mark: ReplayMark): boolean {
  return (
    dg.incarnation < mark.incarnation || (dg.incarnation === mark.incarnation && dg.sequence <= mark.sequence)
  );
}

/**
 * A heartbeat moves its node to the tail of its group's `up` list in O(1); a group's earliest
 * deadline is at a list head, and the groups sit in a heap keyed by it (lazily: a key may be
 * early, never late), so finding the next deadline costs O(log groups), never O(nodes).
 */
export class Detector {
  private readonly s: DetectorState;
  private readonly emit: Emit;

  constructor(config: Config, nowMs: number, options: DetectorOptions) {
    this.s = new DetectorState(options.toWall);
    this.emit = options.emit;
    this.configure(config, nowMs);
  }

  get size(): number {
    return this.s.t.size;
  }

  /** Smallest `late` of any group: a heartbeat never creates a deadline sooner than now + this. */
  get minLateMs(): number {
    return this.s.minLateMs;
  }

  /** Records one decoded datagram that arrived at `nowMs`; returns null or why it was refused. */
  observe(dg: Datagram, nowMs: number, origin: Origin): DetectorReason | null {
    const s = this.s;
    const t = s.t;
    let slot = t.index.get(dg.nodeId);
    if (slot === undefined) {
      if (s.unknownNodes === "ignore") return "unknown_node";
      if (t.size >= s.maxNodes) return "too_many_nodes";
      const floor = s.floors.get(dg.nodeId);
      if (floor !== undefined && isReplay(dg, floor)) return "replay";
      slot = t.add(dg.nodeId, s.defaultGroup.index, 0);
      this.takeFloor(slot);
    }
    const incarnation = t.incarnation[slot]!;
    if (dg.incarnation < incarnation) return "replay";
    if (dg.incarnation === incarnation) {
      if (dg.sequence <= t.sequence[slot]!) return "replay";
      // Datagrams sent while this monitor was not running are not the network's loss.
      if (t.received[slot]! > 0) t.lost[slot] = t.lost[slot]! + dg.sequence - t.sequence[slot]! - 1;
    } else if (incarnation >= 0) {
      t.restarts[slot] = t.restarts[slot]! + 1;
      t.setFrom(slot, origin.address, origin.port);
      this.emit("node.restarted", {
        node: dg.nodeId,
        from: t.from(slot)!,
        incarnation: dg.incarnation,
        previousIncarnation: incarnation,
      });
    }
    const previousSeen = t.lastSeen[slot]!;
    const previousUntil = t.until[slot]!;
    t.incarnation[slot] = dg.incarnation;
    t.sequence[slot] = dg.sequence;
    t.received[slot] = t.received[slot]! + 1;
    t.lastSeen[slot] = nowMs;

    const flags = t.flags[slot]!;
    if (dg.kind === Kind.LEAVE) {
      t.flags[slot] = flags | F_LEFT;
      s.unlink(slot);
      if ((flags & F_EXPECTED) === 0) this.forgetLater(slot, nowMs);
      if (t.reported[slot] !== S_LEFT) {
        t.reported[slot] = S_LEFT;
        t.setFrom(slot, origin.address, origin.port);
        this.emit("node.left", { node: dg.nodeId, from: t.from(slot)! });
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
    s.move(slot, group.up, L_UP);
    if (group.up.head === slot) s.schedule(group);
    if (t.reported[slot] !== S_UP) this.reportUp(slot, previousSeen, previousUntil, nowMs, origin);
    return null;
  }

  private reportUp(
    slot: number,
    previousSeen: number,
    previousUntil: number,
    nowMs: number,
    origin: Origin,
  ): void {
    const t = this.s.t;
    const previous = STATE_NAMES[t.reported[slot]!]!;
    t.reported[slot] = S_UP;
    t.setFrom(slot, origin.address, origin.port);
    const node = t.ids[slot]!;
    const from = t.from(slot)!;
    if (previous === "down") {
      const downAt = previousSeen === NEVER ? previousUntil : previousSeen + this.s.groupOf(slot).timeoutMs;
      this.emit("node.up", { node, from, previous, downMs: Math.round(nowMs - downAt) });
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
        emit("node.late", {
          node: t.ids[n]!,
          silentMs: Math.round(nowMs - t.lastSeen[n]!),
          lateMs: group.lateMs,
        });
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
    for (let n = s.unheard.head; n !== NONE && s.due(t.until[n]!, nowMs); n = s.unheard.head) {
      t.unlink(s.unheard, n);
      this.reportDown(n, t.until[n]!, nowMs);
    }
    for (let n = s.forgettable.head; n !== NONE && t.until[n]! <= nowMs; n = s.forgettable.head) {
      t.unlink(s.forgettable, n);
      const node = t.ids[n]!;
      const silentMs = Math.round(nowMs - t.lastSeen[n]!);
      t.delete(n);
      emit("node.forgotten", { node, silentMs });
    }
  }

  private forgetLater(slot: number, nowMs: number): void {
    this.s.t.until[slot] = nowMs + this.s.forgetAfterMs;
    this.s.move(slot, this.s.forgettable, L_FORGET);
  }

  private takeFloor(slot: number): void {
    const { t, floors } = this.s;
    const id = t.ids[slot]!;
    const floor = floors.get(id);
    if (floor === undefined) return;
    floors.delete(id);
    t.incarnation[slot] = floor.incarnation;
    t.sequence[slot] = floor.sequence;
  }

  /** Restores the replay marks saved before a restart: older datagrams stay refused. */
  restoreMarks(marks: Iterable<[string, ReplayMark]>): void {
    const { t, floors } = this.s;
    for (const [id, mark] of marks) {
      const slot = t.index.get(id);
      if (slot === undefined) floors.set(id, mark);
      else if (t.incarnation[slot]! < 0) {
        floors.set(id, mark);
        this.takeFloor(slot);
      }
    }
  }

  /** The replay marks to save: every node's highest accepted incarnation and sequence. */
  *marks(): IterableIterator<[string, ReplayMark]> {
    const t = this.s.t;
    for (const [id, slot] of t.index) {
      if (t.incarnation[slot]! >= 0)
        yield [id, { incarnation: t.incarnation[slot]!, sequence: t.sequence[slot]! }];
    }
    yield* this.s.floors;
  }

  private reportDown(slot: number, deadline: number, nowMs: number): void {
    const s = this.s;
    const t = s.t;
    t.reported[slot] = S_DOWN;
    const heard = t.lastSeen[slot] !== NEVER;
    const timeoutMs = s.groupOf(slot).timeoutMs;
    const node = t.ids[slot]!;
    // One conversion to epoch ms, so that at = lastSeen + timeout holds exactly in the event.
    const lastSeen = heard ? s.toWall(t.lastSeen[slot]!) : null;
    const silentMs = Math.round(nowMs - (heard ? t.lastSeen[slot]! : t.until[slot]! - s.startupGraceMs));
    if ((t.flags[slot]! & F_EXPECTED) === 0) this.forgetLater(slot, nowMs);
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
    let next = s.heap.peekKey();
    if (s.unheard.head !== NONE) next = Math.min(next, s.t.until[s.unheard.head]!);
    if (next >= s.holdFrom && next < s.holdUntil) next = s.holdUntil;
    // Forgetting is housekeeping, not judgement: a monitor stall does not hold it back.
    if (s.forgettable.head !== NONE) next = Math.min(next, s.t.until[s.forgettable.head]!);
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

  counts(nowMs: number): Counts {
    return countStates(this.s, nowMs);
  }

  /** Every node's id, state and last arrival (monotonic ms, null if never heard). */
  forEachNode(nowMs: number, visit: (id: string, state: StateName, lastSeen: number | null) => void): void {
    forEachNode(this.s, nowMs, visit);
  }

  view(nowMs: number): NodeView[] {
    return viewNodes(this.s, nowMs);
  }
}
