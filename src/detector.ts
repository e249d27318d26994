// Liveness from arrival times; pure: times in, events out. The only per-node facts are when
// its last datagram arrived, its incarnation and sequence, and counters (kept in a NodeTable);
// up/late/down are derived from `now - lastSeen`. The one other thing kept is the state last
// *reported*, so that events fire on transitions only.
//
// Nodes that share thresholds form a group with two lists ordered by lastSeen: `up` (next
// deadline: lastSeen + late) and `late` (next: lastSeen + timeout). A heartbeat moves a node to
// the tail of `up` in O(1); a group's earliest deadline is at a list head, and the groups sit in
// a heap keyed by it (lazily: a key may be early, never late), so one timer armed at
// nextDeadline() serves the whole fleet whatever the number of nodes or distinct thresholds.
// After a monitor stall, deadlines that came due during it are held until nodes could speak.

import type { Config, NodeSpec, Thresholds, UnknownNodes } from "./config.js";
import { DeadlineHeap } from "./deadline-heap.js";
import type { Emit, StateName } from "./events.js";
import {
  F_EXPECTED,
  F_LEFT,
  F_PAUSED,
  NEVER,
  NONE,
  NodeTable,
  SlotList,
  STATE_NAMES,
  S_DOWN,
  S_LATE,
  S_LEFT,
  S_NEW,
  S_PAUSED,
  S_UP,
} from "./node-table.js";
import { Kind, type Datagram } from "./protocol.js";

export type DetectorReason = "replay" | "unknown_node" | "too_many_nodes";

/** The highest incarnation and sequence accepted from a node, kept across monitor restarts. */
export interface ReplayMark {
  readonly incarnation: number;
  readonly sequence: number;
}

/** Where a datagram came from; formatted only when an event needs it. */
export interface Origin {
  readonly address: string;
  readonly port: number;
}

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
}

export interface DetectorOptions {
  emit: Emit;
  /** Epoch milliseconds of a monotonic instant (display only). */
  toWall: (monoMs: number) => number;
}

export type Counts = Record<StateName, number>;

interface Group extends Thresholds {
  readonly index: number;
  readonly up: SlotList;
  readonly late: SlotList;
  /** The key of this group's live heap entry; +Infinity when it has none. */
  heapKey: number;
}

/** Which list a slot is in (NodeTable.list). */
const L_UP = 1;
const L_LATE = 2;
const L_UNHEARD = 3;
const L_FORGET = 4;

function isReplay(dg: Datagram, mark: ReplayMark): boolean {
  return (
    dg.incarnation < mark.incarnation || (dg.incarnation === mark.incarnation && dg.sequence <= mark.sequence)
  );
}

export class Detector {
  private readonly t = new NodeTable();
  private groups: Group[] = [];
  private readonly unheard = new SlotList();
  private readonly forgettable = new SlotList();
  /** Replay marks from before a monitor restart, for nodes not heard from since. */
  private readonly floors = new Map<string, ReplayMark>();
  private readonly heap = new DeadlineHeap<Group>();
  private defaultGroup!: Group;
  private unknownNodes: UnknownNodes = "accept";
  private startupGraceMs = 0;
  private maxNodes = Number.POSITIVE_INFINITY;
  private forgetAfterMs = Number.POSITIVE_INFINITY;
  private holdFrom = Number.POSITIVE_INFINITY;
  private holdUntil = NEVER;
  /** Smallest `late` of any group: a heartbeat never creates a deadline sooner than now + this. */
  minLateMs = Number.POSITIVE_INFINITY;

  constructor(
    config: Config,
    nowMs: number,
    private readonly options: DetectorOptions,
  ) {
    this.configure(config, nowMs);
  }

  get size(): number {
    return this.t.size;
  }

  private listOf(slot: number): SlotList | null {
    switch (this.t.list[slot]) {
      case L_UP:
        return this.groups[this.t.group[slot]!]!.up;
      case L_LATE:
        return this.groups[this.t.group[slot]!]!.late;
      case L_UNHEARD:
        return this.unheard;
      case L_FORGET:
        return this.forgettable;
      default:
        return null;
    }
  }

  private unlink(slot: number): void {
    const list = this.listOf(slot);
    if (list !== null) this.t.unlink(list, slot);
  }

  private move(slot: number, list: SlotList, code: number): void {
    this.t.push(list, code, slot, this.listOf(slot));
  }

  /** Records one decoded datagram that arrived at `nowMs`; returns null or why it was refused. */
  observe(dg: Datagram, nowMs: number, origin: Origin): DetectorReason | null {
    const t = this.t;
    let slot = t.index.get(dg.nodeId);
    if (slot === undefined) {
      if (this.unknownNodes === "ignore") return "unknown_node";
      if (t.size >= this.maxNodes) return "too_many_nodes";
      const floor = this.floors.get(dg.nodeId);
      if (floor !== undefined && isReplay(dg, floor)) return "replay";
      slot = t.add(dg.nodeId, this.defaultGroup.index, 0);
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
      this.options.emit("node.restarted", {
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
      this.unlink(slot);
      if ((flags & F_EXPECTED) === 0) this.forgetLater(slot, nowMs);
      if (t.reported[slot] !== S_LEFT) {
        t.reported[slot] = S_LEFT;
        t.setFrom(slot, origin.address, origin.port);
        this.options.emit("node.left", { node: dg.nodeId, from: t.from(slot)! });
      }
      return null;
    }
    t.flags[slot] = flags & ~F_LEFT;
    t.until[slot] = NEVER;
    if ((flags & F_PAUSED) !== 0) {
      this.unlink(slot);
      t.reported[slot] = S_PAUSED;
      return null;
    }
    const group = this.groups[t.group[slot]!]!;
    this.move(slot, group.up, L_UP);
    if (group.up.head === slot) this.schedule(group);
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
    const t = this.t;
    const previous = STATE_NAMES[t.reported[slot]!]!;
    t.reported[slot] = S_UP;
    t.setFrom(slot, origin.address, origin.port);
    const node = t.ids[slot]!;
    const from = t.from(slot)!;
    if (previous === "down") {
      const downAt =
        previousSeen === NEVER ? previousUntil : previousSeen + this.groups[t.group[slot]!]!.timeoutMs;
      this.options.emit("node.up", { node, from, previous, downMs: Math.round(nowMs - downAt) });
    } else {
      this.options.emit("node.up", { node, from, previous });
    }
  }

  /** True when a deadline has passed and is not held back by a monitor stall. */
  private due(deadline: number, nowMs: number): boolean {
    return deadline <= nowMs && !(deadline >= this.holdFrom && nowMs < this.holdUntil);
  }

  private groupDeadline(group: Group): number {
    const lastSeen = this.t.lastSeen;
    const up = group.up.head === NONE ? Number.POSITIVE_INFINITY : lastSeen[group.up.head]! + group.lateMs;
    const late =
      group.late.head === NONE ? Number.POSITIVE_INFINITY : lastSeen[group.late.head]! + group.timeoutMs;
    return Math.min(up, late);
  }

  /** Gives `group` a heap entry at its earliest deadline unless it has one as early. */
  private schedule(group: Group): void {
    const deadline = this.groupDeadline(group);
    if (deadline < group.heapKey) {
      group.heapKey = deadline;
      this.heap.push(deadline, group);
    }
  }

  /** Drops stale heap entries until the top is a group's live, exact earliest deadline. */
  private settleHeap(): void {
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

  /** Reports every transition due at `nowMs`. */
  advance(nowMs: number): void {
    const t = this.t;
    const emit = this.options.emit;
    for (this.settleHeap(); this.due(this.heap.peekKey(), nowMs); this.settleHeap()) {
      const group = this.heap.peekItem()!;
      this.heap.pop();
      group.heapKey = Number.POSITIVE_INFINITY;
      for (
        let s = group.up.head;
        s !== NONE && this.due(t.lastSeen[s]! + group.lateMs, nowMs);
        s = group.up.head
      ) {
        t.push(group.late, L_LATE, s, group.up);
        t.reported[s] = S_LATE;
        emit("node.late", {
          node: t.ids[s]!,
          silentMs: Math.round(nowMs - t.lastSeen[s]!),
          lateMs: group.lateMs,
        });
      }
      for (
        let s = group.late.head;
        s !== NONE && this.due(t.lastSeen[s]! + group.timeoutMs, nowMs);
        s = group.late.head
      ) {
        t.unlink(group.late, s);
        this.reportDown(s, t.lastSeen[s]! + group.timeoutMs, nowMs);
      }
      this.schedule(group);
    }
    for (let s = this.unheard.head; s !== NONE && this.due(t.until[s]!, nowMs); s = this.unheard.head) {
      t.unlink(this.unheard, s);
      this.reportDown(s, t.until[s]!, nowMs);
    }
    for (let s = this.forgettable.head; s !== NONE && t.until[s]! <= nowMs; s = this.forgettable.head) {
      t.unlink(this.forgettable, s);
      const node = t.ids[s]!;
      const silentMs = Math.round(nowMs - t.lastSeen[s]!);
      t.delete(s);
      emit("node.forgotten", { node, silentMs });
    }
  }

  private forgetLater(slot: number, nowMs: number): void {
    this.t.until[slot] = nowMs + this.forgetAfterMs;
    this.move(slot, this.forgettable, L_FORGET);
  }

  private takeFloor(slot: number): void {
    const id = this.t.ids[slot]!;
    const floor = this.floors.get(id);
    if (floor === undefined) return;
    this.floors.delete(id);
    this.t.incarnation[slot] = floor.incarnation;
    this.t.sequence[slot] = floor.sequence;
  }

  /** Restores the replay marks saved before a restart: older datagrams stay refused. */
  restoreMarks(marks: Iterable<[string, ReplayMark]>): void {
    for (const [id, mark] of marks) {
      const slot = this.t.index.get(id);
      if (slot === undefined) this.floors.set(id, mark);
      else if (this.t.incarnation[slot]! < 0) {
        this.floors.set(id, mark);
        this.takeFloor(slot);
      }
    }
  }

  /** The replay marks to save: every node's highest accepted incarnation and sequence. */
  *marks(): IterableIterator<[string, ReplayMark]> {
    const t = this.t;
    for (const [id, slot] of t.index) {
      if (t.incarnation[slot]! >= 0)
        yield [id, { incarnation: t.incarnation[slot]!, sequence: t.sequence[slot]! }];
    }
    yield* this.floors;
  }

  private reportDown(slot: number, deadline: number, nowMs: number): void {
    const t = this.t;
    t.reported[slot] = S_DOWN;
    const heard = t.lastSeen[slot] !== NEVER;
    const timeoutMs = this.groups[t.group[slot]!]!.timeoutMs;
    const node = t.ids[slot]!;
    // One conversion to epoch ms, so that at = lastSeen + timeout holds exactly in the event.
    const lastSeen = heard ? this.options.toWall(t.lastSeen[slot]!) : null;
    const silentMs = Math.round(nowMs - (heard ? t.lastSeen[slot]! : t.until[slot]! - this.startupGraceMs));
    if ((t.flags[slot]! & F_EXPECTED) === 0) this.forgetLater(slot, nowMs);
    this.options.emit("node.down", {
      node,
      lastSeen,
      silentMs,
      timeoutMs,
      at: lastSeen === null ? this.options.toWall(deadline) : lastSeen + timeoutMs,
    });
  }

  /** The earliest instant at which advance() has something to report, if any. */
  nextDeadline(): number | undefined {
    this.settleHeap();
    let next = this.heap.peekKey();
    if (this.unheard.head !== NONE) next = Math.min(next, this.t.until[this.unheard.head]!);
    if (next >= this.holdFrom && next < this.holdUntil) next = this.holdUntil;
    // Forgetting is housekeeping, not judgement: a monitor stall does not hold it back.
    if (this.forgettable.head !== NONE) next = Math.min(next, this.t.until[this.forgettable.head]!);
    return next === Number.POSITIVE_INFINITY ? undefined : next;
  }

  /**
   * The monitor could not run from `fromMs` to `nowMs`: silence in that span proves nothing, so
   * no deadline from `fromMs` on is judged before `nowMs + holdMs`.
   */
  hold(fromMs: number, nowMs: number, holdMs: number): void {
    if (nowMs >= this.holdUntil) this.holdFrom = fromMs;
    else this.holdFrom = Math.min(this.holdFrom, fromMs);
    this.holdUntil = Math.max(this.holdUntil, nowMs + holdMs);
  }

  private stateOf(slot: number, nowMs: number): StateName {
    const t = this.t;
    const flags = t.flags[slot]!;
    if ((flags & F_PAUSED) !== 0) return "paused";
    if ((flags & F_LEFT) !== 0) return "left";
    const lastSeen = t.lastSeen[slot]!;
    if (lastSeen === NEVER) return this.due(t.until[slot]!, nowMs) ? "down" : "new";
    const group = this.groups[t.group[slot]!]!;
    if (this.due(lastSeen + group.timeoutMs, nowMs)) return "down";
    if (this.due(lastSeen + group.lateMs, nowMs)) return "late";
    return "up";
  }

  counts(nowMs: number): Counts {
    const counts: Counts = { new: 0, up: 0, late: 0, down: 0, left: 0, paused: 0 };
    for (const slot of this.t.index.values()) counts[this.stateOf(slot, nowMs)]++;
    return counts;
  }

  /** Every node's id, state and last arrival (monotonic ms, null if never heard). */
  forEachNode(nowMs: number, visit: (id: string, state: StateName, lastSeen: number | null) => void): void {
    const lastSeen = this.t.lastSeen;
    for (const [id, slot] of this.t.index)
      visit(id, this.stateOf(slot, nowMs), lastSeen[slot] === NEVER ? null : lastSeen[slot]!);
  }

  view(nowMs: number): NodeView[] {
    const t = this.t;
    const views: NodeView[] = [];
    for (const [id, slot] of t.index) {
      const heard = t.lastSeen[slot] !== NEVER;
      const group = this.groups[t.group[slot]!]!;
      const lost = t.lost[slot]!;
      const expectedCount = t.received[slot]! + lost;
      views.push({
        node: id,
        state: this.stateOf(slot, nowMs),
        expected: (t.flags[slot]! & F_EXPECTED) !== 0,
        lastSeen: heard ? this.options.toWall(t.lastSeen[slot]!) : null,
        silentMs: heard ? Math.round(nowMs - t.lastSeen[slot]!) : null,
        intervalMs: group.intervalMs,
        lateMs: group.lateMs,
        timeoutMs: group.timeoutMs,
        lossPct: expectedCount === 0 ? 0 : Math.round((10_000 * lost) / expectedCount) / 100,
        received: t.received[slot]!,
        lost,
        restarts: t.restarts[slot]!,
        incarnation: t.incarnation[slot]! >= 0 ? t.incarnation[slot]! : null,
        from: t.from(slot),
      });
    }
    return views.sort((a, b) => a.node.localeCompare(b.node, "en", { numeric: true }));
  }

  /**
   * Applies a (new) config at `nowMs`: thresholds, expected and paused nodes. Nodes newly
   * expected get a fresh startup grace; nodes no longer listed become unknown senders (or are
   * forgotten when unknown senders are ignored). Transitions this causes are reported by the
   * next advance(), so the caller should call it and re-arm its timer.
   */
  configure(config: Config, nowMs: number): void {
    const t = this.t;
    this.unknownNodes = config.unknownNodes;
    this.startupGraceMs = config.startupGraceMs;
    this.maxNodes = config.maxNodes;
    this.forgetAfterMs = config.forgetAfterMs;
    // Take every slot out of the old groups' lists before the groups are replaced.
    for (const slot of t.index.values()) this.unlink(slot);
    this.groups = [];
    const byKey = new Map<string, Group>();
    const groupFor = (th: Thresholds): Group => {
      const key = `${th.intervalMs}/${th.lateMs}/${th.timeoutMs}`;
      let group = byKey.get(key);
      if (group === undefined) {
        group = {
          index: this.groups.length,
          intervalMs: th.intervalMs,
          lateMs: th.lateMs,
          timeoutMs: th.timeoutMs,
          up: new SlotList(),
          late: new SlotList(),
          heapKey: Number.POSITIVE_INFINITY,
        };
        byKey.set(key, group);
        this.groups.push(group);
      }
      return group;
    };
    this.defaultGroup = groupFor(config.defaults);

    for (const [id, slot] of t.index) {
      const spec = config.nodes.get(id);
      if (spec === undefined && (this.unknownNodes === "ignore" || t.lastSeen[slot] === NEVER)) {
        t.delete(slot);
        continue;
      }
      this.apply(slot, spec, spec === undefined ? this.defaultGroup : groupFor(spec), nowMs);
    }
    for (const spec of config.nodes.values()) {
      if (t.index.has(spec.id)) continue;
      const slot = t.add(spec.id, this.defaultGroup.index, 0);
      this.apply(slot, spec, groupFor(spec), nowMs);
    }
    this.relink(nowMs);
    this.minLateMs = Math.min(...this.groups.map((g) => g.lateMs));
  }

  private apply(slot: number, spec: NodeSpec | undefined, group: Group, nowMs: number): void {
    const t = this.t;
    const flags = t.flags[slot]!;
    const wasExpected = (flags & F_EXPECTED) !== 0;
    const wasPaused = (flags & F_PAUSED) !== 0;
    const paused = spec?.paused ?? false;
    t.group[slot] = group.index;
    t.flags[slot] = (flags & F_LEFT) | (spec !== undefined ? F_EXPECTED : 0) | (paused ? F_PAUSED : 0);
    if (paused) {
      t.reported[slot] = S_PAUSED;
      return;
    }
    if (t.lastSeen[slot] === NEVER && (!wasExpected || wasPaused || t.until[slot] === NEVER)) {
      t.until[slot] = nowMs + this.startupGraceMs;
      t.reported[slot] = S_NEW;
    } else if (wasPaused && (flags & F_LEFT) === 0) {
      // Back from maintenance: judged from here on by its timestamps, without an up event.
      t.reported[slot] = S_UP;
    }
  }

  /** Rebuilds the deadline lists (every slot is in none), ordered by lastSeen or deadline. */
  private relink(nowMs: number): void {
    const t = this.t;
    const live: number[] = [];
    const waiting: number[] = [];
    const fading: number[] = [];
    for (const slot of t.index.values()) {
      const flags = t.flags[slot]!;
      const left = (flags & F_LEFT) !== 0;
      if ((flags & F_EXPECTED) === 0 && (left || t.reported[slot] === S_DOWN)) {
        if (t.until[slot] === NEVER) t.until[slot] = nowMs + this.forgetAfterMs;
        fading.push(slot);
      } else if ((flags & F_PAUSED) !== 0 || left) {
        continue;
      } else if (t.lastSeen[slot] === NEVER) {
        if (t.reported[slot] === S_NEW) waiting.push(slot);
      } else if (t.reported[slot] === S_UP || t.reported[slot] === S_LATE) {
        live.push(slot);
      }
    }
    live.sort((a, b) => t.lastSeen[a]! - t.lastSeen[b]!);
    for (const slot of live) {
      const group = this.groups[t.group[slot]!]!;
      if (t.reported[slot] === S_LATE) t.push(group.late, L_LATE, slot, null);
      else t.push(group.up, L_UP, slot, null);
    }
    waiting.sort((a, b) => t.until[a]! - t.until[b]!);
    for (const slot of waiting) t.push(this.unheard, L_UNHEARD, slot, null);
    fading.sort((a, b) => t.until[a]! - t.until[b]!);
    for (const slot of fading) t.push(this.forgettable, L_FORGET, slot, null);
    this.heap.clear();
    for (const group of this.groups) {
      group.heapKey = Number.POSITIVE_INFINITY;
      this.schedule(group);
    }
  }
}
