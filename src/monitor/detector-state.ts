// The detector's memory, shared by its parts (detector.ts, reconfigure.ts, views.ts) and by
// no one else: the node table; threshold groups, each with two lists ordered by lastSeen, `up`
// (next deadline lastSeen + late) and `late` (next: lastSeen + timeout); expected nodes never
// heard; unlisted nodes waiting to be forgotten; the heap of group deadlines; and the window in
// which a monitor stall holds judgement back. Nodes judged by φ-accrual have deadlines of their
// own, worked out at each arrival (phi.ts): they sit in one heap of slots by next deadline
// instead of their group's lists.

import type { AuthMode, Thresholds, UnknownNodes } from "../config/types.js";
import type { StateName } from "../states.js";
import { DeadlineHeap, SlotHeap } from "./deadline-heap.js";
import { F_LEFT, F_PAUSED, NEVER, NONE, NodeTable, S_DOWN, S_LATE, SlotList } from "./node-table.js";
import type { PhiHistory } from "./phi.js";
import { phiDeadlineMs } from "./phi.js";
import { ReplayGuard } from "./replay-guard.js";
import type { ReplayMark } from "./replay-marks.js";

export interface Group extends Thresholds {
  readonly index: number;
  readonly up: SlotList;
  readonly late: SlotList;
  /** The key of this group's live heap entry; +Infinity when it has none. */
  heapKey: number;
  /** For a φ group, yAt() of its threshold and of its late threshold (phi.ts); else NaN. */
  readonly phiY: number;
  readonly phiLateY: number;
}

/** Which list a slot is in (NodeTable.list). */
export const L_UP = 1;
export const L_LATE = 2;
export const L_UNHEARD = 3;
export const L_FORGET = 4;
/** In the φ heap (`phiHeap`), not a list. */
export const L_PHI = 5;

export class DetectorState {
  readonly t = new NodeTable();
  /** By index (a node's `group`); while a config is applied, old and new groups are both here. */
  groups: (Group | undefined)[] = [];
  defaultGroup!: Group;
  readonly unheard = new SlotList();
  readonly forgettable = new SlotList();
  /**
   * Replay marks of nodes not in the table: from before a monitor restart, or of unlisted nodes
   * forgotten or evicted since (so captured datagrams cannot bring them back). Oldest first;
   * at most `maxNodes` of them.
   */
  readonly floors = new Map<string, ReplayMark>();
  readonly guard = new ReplayGuard();
  auth: AuthMode = "off";
  /** Unlisted nodes evicted to make room for a newcomer since start. */
  evicted = 0;
  readonly heap = new DeadlineHeap<Group>();
  unknownNodes: UnknownNodes = "accept";
  startupGraceMs = 0;
  maxNodes = Number.POSITIVE_INFINITY;
  forgetAfterMs = Number.POSITIVE_INFINITY;
  holdFrom = Number.POSITIVE_INFINITY;
  holdUntil = NEVER;
  /** Smallest `late` of any group: a heartbeat never creates a deadline sooner than now + this. */
  minLateMs = Number.POSITIVE_INFINITY;
  /** The φ nodes' intervals, once some group is judged by φ. */
  phi: PhiHistory | null = null;
  /** Heard φ nodes that are up or late, by next deadline. */
  readonly phiHeap = new SlotHeap();

  constructor(
    /** Epoch milliseconds of a monotonic instant (display only). */
    readonly toWall: (monoMs: number) => number,
  ) {}

  groupOf(slot: number): Group {
    return this.groups[this.t.group[slot]!]!;
  }

  listOf(slot: number): SlotList | null {
    switch (this.t.list[slot]) {
      case L_UP:
        return this.groupOf(slot).up;
      case L_LATE:
        return this.groupOf(slot).late;
      case L_UNHEARD:
        return this.unheard;
      case L_FORGET:
        return this.forgettable;
      default:
        return null;
    }
  }

  unlink(slot: number): void {
    if (this.t.list[slot] === L_PHI) {
      this.phiHeap.delete(slot);
      this.t.list[slot] = 0;
      return;
    }
    const list = this.listOf(slot);
    if (list !== null) this.t.unlink(list, slot);
  }

  move(slot: number, list: SlotList, code: number): void {
    if (this.t.list[slot] === L_PHI) this.unlink(slot);
    this.t.push(list, code, slot, this.listOf(slot));
  }

  /** Whether `slot` is judged by φ: its group is, and it has a history (it has been heard). */
  isPhi(slot: number): boolean {
    return this.groupOf(slot).phi !== null && this.phi !== null && this.phi.has(slot);
  }

  /** How long after its last arrival `slot` is late: φ's late threshold, capped by `late`. */
  lateAfterMs(slot: number): number {
    const group = this.groupOf(slot);
    if (!this.isPhi(slot)) return group.lateMs;
    return Math.min(this.phi!.lateAfter[slot]!, group.lateMs, this.downAfterMs(slot));
  }

  /** How long after its last arrival `slot` is down: φ's threshold, capped by `timeout`. */
  downAfterMs(slot: number): number {
    const group = this.groupOf(slot);
    if (!this.isPhi(slot)) return group.timeoutMs;
    return Math.min(this.phi!.downAfter[slot]!, group.timeoutMs);
  }

  /** Works out a φ node's deadlines from its window (after an interval is recorded). */
  phiDeadlines(slot: number): void {
    const h = this.phi!;
    const group = this.groupOf(slot);
    const spec = group.phi!;
    const mean = h.mean(slot);
    const std = h.std(slot);
    h.downAfter[slot] = phiDeadlineMs(group.phiY, mean, std, spec);
    h.lateAfter[slot] = Math.max(0, phiDeadlineMs(group.phiLateY, mean, std, spec));
  }

  /** Puts a heard φ node in the heap (or moves it there) at `afterMs` past its last arrival. */
  schedulePhi(slot: number, afterMs: number): void {
    const t = this.t;
    this.phiHeap.set(slot, t.lastSeen[slot]! + afterMs);
    t.list[slot] = L_PHI;
  }

  /** True when a deadline has passed and is not held back by a monitor stall. */
  due(deadline: number, nowMs: number): boolean {
    return deadline <= nowMs && !(deadline >= this.holdFrom && nowMs < this.holdUntil);
  }

  groupDeadline(group: Group): number {
    const lastSeen = this.t.lastSeen;
    const up = group.up.head === NONE ? Number.POSITIVE_INFINITY : lastSeen[group.up.head]! + group.lateMs;
    const late =
      group.late.head === NONE ? Number.POSITIVE_INFINITY : lastSeen[group.late.head]! + group.timeoutMs;
    return Math.min(up, late);
  }

  /** Gives `group` a heap entry at its earliest deadline unless it has one as early. */
  schedule(group: Group): void {
    const deadline = this.groupDeadline(group);
    if (deadline < group.heapKey) {
      group.heapKey = deadline;
      this.heap.push(deadline, group);
    }
  }

  /** Drops stale heap entries until the top is a group's live, exact earliest deadline. */
  settleHeap(): void {
    for (let group = this.heap.peekItem(); group !== undefined; group = this.heap.peekItem()) {
      const key = this.heap.peekKey();
      if (key === group.heapKey && key === this.groupDeadline(group)) return;
      this.heap.pop();
      if (key === group.heapKey) {
        // Its head has beaten since: the group's deadline moved later.
        group.heapKey = Number.POSITIVE_INFINITY;
        this.schedule(group);
      }
    }
  }

  /**
   * A node's state now, derived from its last arrival and its group's thresholds. Only a datagram
   * brings a node back: one reported down or late stays so even if a reload raised its timeout.
   */
  stateOf(slot: number, nowMs: number): StateName {
    const t = this.t;
    const flags = t.flags[slot]!;
    if ((flags & F_PAUSED) !== 0) return "paused";
    if ((flags & F_LEFT) !== 0) return "left";
    const reported = t.reported[slot]!;
    if (reported === S_DOWN) return "down";
    const lastSeen = t.lastSeen[slot]!;
    if (lastSeen === NEVER) return this.due(t.until[slot]!, nowMs) ? "down" : "new";
    if (this.due(lastSeen + this.downAfterMs(slot), nowMs)) return "down";
    if (reported === S_LATE || this.due(lastSeen + this.lateAfterMs(slot), nowMs)) return "late";
    return "up";
  }
}
