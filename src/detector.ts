// Liveness from arrival times; pure: times in, events out. The only per-node facts are when
// its last datagram arrived, its incarnation and sequence, and counters; up/late/down are
// derived from `now - lastSeen`. The one other thing kept is the state last *reported*, so that
// events fire on transitions only.
//
// Nodes that share thresholds form a group with two lists ordered by lastSeen: `up` (next
// deadline: lastSeen + late) and `late` (next: lastSeen + timeout). A heartbeat moves a node to
// the tail of `up` in O(1); a group's earliest deadline is at a list head, and the groups sit
// in a heap keyed by it (lazily: a key may be early, never late), so one timer armed at
// nextDeadline() serves the whole fleet whatever the number of nodes or distinct thresholds. After a monitor stall, deadlines that came due
// during the stall are held until the backlog is drained and nodes have had a chance to speak.

import type { Config, NodeSpec, Thresholds, UnknownNodes } from "./config.js";
import type { Emit, StateName } from "./events.js";
import { DeadlineHeap } from "./deadline-heap.js";
import { NodeList } from "./node-list.js";
import { NEVER, NodeRecord, groupDeadline, viewOf, type Group, type NodeView } from "./node-record.js";
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

function formatOrigin(from: Origin): string {
  return from.address.includes(":") ? `[${from.address}]:${from.port}` : `${from.address}:${from.port}`;
}

function isReplay(dg: Datagram, mark: ReplayMark): boolean {
  return (
    dg.incarnation < mark.incarnation || (dg.incarnation === mark.incarnation && dg.sequence <= mark.sequence)
  );
}

export interface DetectorOptions {
  emit: Emit;
  /** Epoch milliseconds of a monotonic instant (display only). */
  toWall: (monoMs: number) => number;
}

export type Counts = Record<StateName, number>;
export type { NodeView };

export class Detector {
  private readonly records = new Map<string, NodeRecord>();
  private readonly groups = new Map<string, Group>();
  private readonly unheard = new NodeList<NodeRecord>();
  private readonly forgettable = new NodeList<NodeRecord>();
  /** Replay marks from before a monitor restart, for nodes not heard from since. */
  private readonly floors = new Map<string, ReplayMark>();
  private maxNodes = Number.POSITIVE_INFINITY;
  private forgetAfterMs = Number.POSITIVE_INFINITY;
  private readonly heap = new DeadlineHeap<Group>();
  private defaultGroup!: Group;
  private unknownNodes: UnknownNodes = "accept";
  private startupGraceMs = 0;
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
    return this.records.size;
  }

  /** Records one decoded datagram that arrived at `nowMs`; returns null or why it was refused. */
  observe(dg: Datagram, nowMs: number, origin: Origin): DetectorReason | null {
    let rec = this.records.get(dg.nodeId);
    if (rec === undefined) {
      if (this.unknownNodes === "ignore") return "unknown_node";
      if (this.records.size >= this.maxNodes) return "too_many_nodes";
      const floor = this.floors.get(dg.nodeId);
      if (floor !== undefined && isReplay(dg, floor)) return "replay";
      rec = new NodeRecord(dg.nodeId, this.defaultGroup, false, false);
      this.records.set(dg.nodeId, rec);
      this.takeFloor(rec);
    }
    if (dg.incarnation < rec.incarnation) return "replay";
    if (dg.incarnation === rec.incarnation) {
      if (dg.sequence <= rec.sequence) return "replay";
      // Datagrams sent while this monitor was not running are not the network's loss.
      if (rec.received > 0) rec.lost += dg.sequence - rec.sequence - 1;
    } else if (rec.incarnation >= 0) {
      rec.restarts++;
      this.options.emit("node.restarted", {
        node: rec.id,
        from: formatOrigin(origin),
        incarnation: dg.incarnation,
        previousIncarnation: rec.incarnation,
      });
    }
    const previousSeen = rec.lastSeen;
    rec.incarnation = dg.incarnation;
    rec.sequence = dg.sequence;
    rec.received++;
    rec.lastSeen = nowMs;

    if (dg.kind === Kind.LEAVE) {
      rec.left = true;
      rec.list?.remove(rec);
      if (!rec.expected) this.forgetLater(rec, nowMs);
      if (rec.reported !== "left") {
        rec.reported = "left";
        rec.from = formatOrigin(origin);
        this.options.emit("node.left", { node: rec.id, from: rec.from });
      }
      return null;
    }
    rec.left = false;
    rec.forgetAt = NEVER;
    if (rec.paused) {
      rec.list?.remove(rec);
      rec.reported = "paused";
      return null;
    }
    const group = rec.group;
    group.up.push(rec);
    if (group.up.head === rec) this.schedule(group);
    if (rec.reported !== "up") this.reportUp(rec, previousSeen, nowMs, formatOrigin(origin));
    return null;
  }

  private reportUp(rec: NodeRecord, previousSeen: number, nowMs: number, from: string): void {
    const previous = rec.reported;
    rec.reported = "up";
    rec.from = from;
    if (previous === "down") {
      const downAt = previousSeen === NEVER ? rec.heardBy : previousSeen + rec.group.timeoutMs;
      this.options.emit("node.up", { node: rec.id, from, previous, downMs: Math.round(nowMs - downAt) });
    } else {
      this.options.emit("node.up", { node: rec.id, from, previous });
    }
  }

  /** True when a deadline has passed and is not held back by a monitor stall. */
  private due(deadline: number, nowMs: number): boolean {
    return deadline <= nowMs && !(deadline >= this.holdFrom && nowMs < this.holdUntil);
  }

  /** Gives `group` a heap entry at its earliest deadline unless it has one as early. */
  private schedule(group: Group): void {
    const deadline = groupDeadline(group);
    if (deadline < group.heapKey) {
      group.heapKey = deadline;
      this.heap.push(deadline, group);
    }
  }

  /** Drops stale heap entries until the top is a group's live, exact earliest deadline. */
  private settleHeap(): void {
    for (let group = this.heap.peekItem(); group !== undefined; group = this.heap.peekItem()) {
      const key = this.heap.peekKey();
      if (key === group.heapKey && key === groupDeadline(group)) return;
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
    const emit = this.options.emit;
    for (this.settleHeap(); this.due(this.heap.peekKey(), nowMs); this.settleHeap()) {
      const group = this.heap.peekItem()!;
      this.heap.pop();
      group.heapKey = Number.POSITIVE_INFINITY;
      for (
        let rec = group.up.head;
        rec !== null && this.due(rec.lastSeen + group.lateMs, nowMs);
        rec = group.up.head
      ) {
        group.late.push(rec);
        rec.reported = "late";
        emit("node.late", { node: rec.id, silentMs: Math.round(nowMs - rec.lastSeen), lateMs: group.lateMs });
      }
      for (
        let rec = group.late.head;
        rec !== null && this.due(rec.lastSeen + group.timeoutMs, nowMs);
        rec = group.late.head
      ) {
        group.late.remove(rec);
        this.reportDown(rec, rec.lastSeen + group.timeoutMs, nowMs);
      }
      this.schedule(group);
    }
    for (let rec = this.unheard.head; rec !== null && this.due(rec.heardBy, nowMs); rec = this.unheard.head) {
      this.unheard.remove(rec);
      this.reportDown(rec, rec.heardBy, nowMs);
    }
    for (
      let rec = this.forgettable.head;
      rec !== null && rec.forgetAt <= nowMs;
      rec = this.forgettable.head
    ) {
      this.forgettable.remove(rec);
      this.records.delete(rec.id);
      emit("node.forgotten", { node: rec.id, silentMs: Math.round(nowMs - rec.lastSeen) });
    }
  }

  private forgetLater(rec: NodeRecord, nowMs: number): void {
    rec.forgetAt = nowMs + this.forgetAfterMs;
    this.forgettable.push(rec);
  }

  private takeFloor(rec: NodeRecord): void {
    const floor = this.floors.get(rec.id);
    if (floor === undefined) return;
    this.floors.delete(rec.id);
    rec.incarnation = floor.incarnation;
    rec.sequence = floor.sequence;
  }

  /** Restores the replay marks saved before a restart: older datagrams stay refused. */
  restoreMarks(marks: Iterable<[string, ReplayMark]>): void {
    for (const [id, mark] of marks) {
      const rec = this.records.get(id);
      if (rec === undefined) this.floors.set(id, mark);
      else if (rec.incarnation < 0) {
        this.floors.set(id, mark);
        this.takeFloor(rec);
      }
    }
  }

  /** The replay marks to save: every node's highest accepted incarnation and sequence. */
  *marks(): IterableIterator<[string, ReplayMark]> {
    for (const rec of this.records.values()) {
      if (rec.incarnation >= 0) yield [rec.id, { incarnation: rec.incarnation, sequence: rec.sequence }];
    }
    yield* this.floors;
  }

  private reportDown(rec: NodeRecord, deadline: number, nowMs: number): void {
    rec.reported = "down";
    if (!rec.expected) this.forgetLater(rec, nowMs);
    const heard = rec.lastSeen !== NEVER;
    // One conversion to epoch ms, so that at = lastSeen + timeout holds exactly in the event.
    const lastSeen = heard ? this.options.toWall(rec.lastSeen) : null;
    this.options.emit("node.down", {
      node: rec.id,
      lastSeen,
      silentMs: Math.round(nowMs - (heard ? rec.lastSeen : rec.heardBy - this.startupGraceMs)),
      timeoutMs: rec.group.timeoutMs,
      at: lastSeen === null ? this.options.toWall(deadline) : lastSeen + rec.group.timeoutMs,
    });
  }

  /** The earliest instant at which advance() has something to report, if any. */
  nextDeadline(): number | undefined {
    this.settleHeap();
    let next = this.heap.peekKey();
    if (this.unheard.head !== null) next = Math.min(next, this.unheard.head.heardBy);
    if (next >= this.holdFrom && next < this.holdUntil) next = this.holdUntil;
    // Forgetting is housekeeping, not judgement: a monitor stall does not hold it back.
    if (this.forgettable.head !== null) next = Math.min(next, this.forgettable.head.forgetAt);
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

  stateOf(rec: NodeRecord, nowMs: number): StateName {
    if (rec.paused) return "paused";
    if (rec.left) return "left";
    if (rec.lastSeen === NEVER) return this.due(rec.heardBy, nowMs) ? "down" : "new";
    if (this.due(rec.lastSeen + rec.group.timeoutMs, nowMs)) return "down";
    if (this.due(rec.lastSeen + rec.group.lateMs, nowMs)) return "late";
    return "up";
  }

  counts(nowMs: number): Counts {
    const counts: Counts = { new: 0, up: 0, late: 0, down: 0, left: 0, paused: 0 };
    for (const rec of this.records.values()) counts[this.stateOf(rec, nowMs)]++;
    return counts;
  }

  /** Every node's id, state and last arrival (monotonic ms, null if never heard). */
  forEachNode(nowMs: number, visit: (id: string, state: StateName, lastSeen: number | null) => void): void {
    for (const rec of this.records.values())
      visit(rec.id, this.stateOf(rec, nowMs), rec.lastSeen === NEVER ? null : rec.lastSeen);
  }

  view(nowMs: number): NodeView[] {
    const views: NodeView[] = [];
    for (const rec of this.records.values())
      views.push(viewOf(rec, this.stateOf(rec, nowMs), nowMs, this.options.toWall));
    return views.sort((a, b) => a.node.localeCompare(b.node, "en", { numeric: true }));
  }

  /**
   * Applies a (new) config at `nowMs`: thresholds, expected and paused nodes. Nodes newly
   * expected get a fresh startup grace; nodes no longer listed become unknown senders (or are
   * forgotten when unknown senders are ignored). Transitions this causes are reported by the
   * next advance(), so the caller should call it and re-arm its timer.
   */
  configure(config: Config, nowMs: number): void {
    this.unknownNodes = config.unknownNodes;
    this.startupGraceMs = config.startupGraceMs;
    this.maxNodes = config.maxNodes;
    this.forgetAfterMs = config.forgetAfterMs;
    this.groups.clear();
    this.defaultGroup = this.groupFor(config.defaults);

    for (const rec of this.records.values()) {
      const spec = config.nodes.get(rec.id);
      if (spec === undefined && this.unknownNodes === "ignore") {
        rec.list?.remove(rec);
        this.records.delete(rec.id);
        continue;
      }
      if (spec === undefined && rec.lastSeen === NEVER) {
        rec.list?.remove(rec);
        this.records.delete(rec.id);
        continue;
      }
      this.apply(rec, spec, nowMs);
    }
    for (const spec of config.nodes.values()) {
      if (this.records.has(spec.id)) continue;
      const rec = new NodeRecord(spec.id, this.defaultGroup, true, false);
      this.records.set(spec.id, rec);
      this.apply(rec, spec, nowMs);
    }
    this.relink(nowMs);
    this.minLateMs = Math.min(...[...this.groups.values()].map((g) => g.lateMs));
  }

  private apply(rec: NodeRecord, spec: NodeSpec | undefined, nowMs: number): void {
    const wasExpected = rec.expected;
    rec.group = spec === undefined ? this.defaultGroup : this.groupFor(spec);
    rec.expected = spec !== undefined;
    const wasPaused = rec.paused;
    rec.paused = spec?.paused ?? false;
    if (rec.paused) {
      rec.list?.remove(rec);
      rec.reported = "paused";
      return;
    }
    if (rec.lastSeen === NEVER && (!wasExpected || wasPaused || rec.heardBy === NEVER)) {
      rec.heardBy = nowMs + this.startupGraceMs;
      rec.reported = "new";
    } else if (wasPaused && !rec.left) {
      // Back from maintenance: judged from here on by its timestamps, without an up event.
      rec.reported = "up";
    }
  }

  /** Rebuilds the deadline lists, keeping them ordered by lastSeen (and unheard by heardBy). */
  private relink(nowMs: number): void {
    const live: NodeRecord[] = [];
    const waiting: NodeRecord[] = [];
    const fading: NodeRecord[] = [];
    for (const rec of this.records.values()) {
      rec.list?.remove(rec);
      if (!rec.expected && (rec.left || rec.reported === "down")) {
        if (rec.forgetAt === NEVER) rec.forgetAt = nowMs + this.forgetAfterMs;
        fading.push(rec);
        continue;
      }
      if (rec.paused || rec.left) continue;
      if (rec.lastSeen === NEVER) {
        if (rec.reported === "new") waiting.push(rec);
      } else if (rec.reported === "up" || rec.reported === "late") {
        live.push(rec);
      }
    }
    live.sort((a, b) => a.lastSeen - b.lastSeen);
    for (const rec of live) (rec.reported === "late" ? rec.group.late : rec.group.up).push(rec);
    waiting.sort((a, b) => a.heardBy - b.heardBy);
    for (const rec of waiting) this.unheard.push(rec);
    fading.sort((a, b) => a.forgetAt - b.forgetAt);
    for (const rec of fading) this.forgettable.push(rec);
    this.heap.clear();
    for (const group of this.groups.values()) {
      group.heapKey = Number.POSITIVE_INFINITY;
      this.schedule(group);
    }
  }

  private groupFor(t: Thresholds): Group {
    const key = `${t.intervalMs}/${t.lateMs}/${t.timeoutMs}`;
    let group = this.groups.get(key);
    if (group === undefined) {
      group = {
        key,
        intervalMs: t.intervalMs,
        lateMs: t.lateMs,
        timeoutMs: t.timeoutMs,
        up: new NodeList(),
        late: new NodeList(),
        heapKey: Number.POSITIVE_INFINITY,
      };
      this.groups.set(key, group);
    }
    return group;
  }
}
