// Applying a (new) config to the detector's memory, in two parts, each a step at a time (see
// slices.ts): staging does the lookups and groups the thresholds while the detector goes on with
// the current config; the commit then applies it while the monitor holds datagrams and judging
// back, so that no node is ever judged by a mixture of the two. Transitions this causes are
// reported by the detector's next advance().

import type { Config, Thresholds } from "../config/types.js";
import { finish, type Sliced } from "../slices.js";
import { L_FORGET, L_LATE, L_UNHEARD, L_UP, type DetectorState, type Group } from "./detector-state.js";
import { PhiHistory, yAt } from "./phi.js";
import {
  F_EXPECTED,
  F_FLAPPING,
  F_SIGNED,
  F_LEFT,
  F_PAUSED,
  F_UNNUMBERED,
  NEVER,
  NONE,
  S_DOWN,
  S_LATE,
  S_NEW,
  S_PAUSED,
  S_UP,
  SlotList,
} from "./node-table.js";

/**
 * A config made ready to apply: its threshold groups, and per listed node (in the config's
 * order) its group and the slot it had when looked up. Built in slices while the detector goes
 * on with the current config; only the commit changes the detector.
 */
export interface Staged {
  readonly config: Config;
  readonly groups: Group[];
  readonly defaultGroup: Group;
  readonly ids: string[];
  /** The node's slot, or for a node the table lacked, a slot reserved for it (`reserved` 1). */
  readonly slots: Int32Array;
  readonly reserved: Uint8Array;
  /** For a reserved slot, the hash of its id in the table's index. */
  readonly hashes: Int32Array;
  readonly groupOf: Uint32Array;
  readonly paused: Uint8Array;
  /** The table's generation at the lookups: when it moved since, the slots are checked again. */
  readonly generation: number;
}

/** Listed nodes looked up between two points where staging may pause (see slices.ts). */
const NODES_PER_STEP = 1024;

export function* stage(s: DetectorState, config: Config): Sliced<Staged> {
  const t = s.t;
  const groups: Group[] = [];
  // New groups take indices no current group has: while the config is applied, each node
  // points at its old group or its new one, and both must be there.
  let nextIndex = 0;
  const freeIndex = (): number => {
    while (s.groups[nextIndex] !== undefined) nextIndex++;
    return nextIndex++;
  };
  const byKey = new Map<string, Group>();
  let last: Group | undefined;
  const groupFor = (th: Thresholds): Group => {
    // Most nodes share the thresholds of the node before them: no key to build for those.
    if (
      last !== undefined &&
      last.intervalMs === th.intervalMs &&
      last.lateMs === th.lateMs &&
      last.timeoutMs === th.timeoutMs &&
      last.phi === th.phi
    )
      return last;
    const key = `${th.intervalMs}/${th.lateMs}/${th.timeoutMs}/${th.phi === null ? "" : JSON.stringify(th.phi)}`;
    let group = byKey.get(key);
    if (group === undefined) {
      group = {
        index: freeIndex(),
        intervalMs: th.intervalMs,
        lateMs: th.lateMs,
        timeoutMs: th.timeoutMs,
        phi: th.phi,
        up: new SlotList(),
        late: new SlotList(),
        heapKey: Number.POSITIVE_INFINITY,
        phiY: th.phi === null ? Number.NaN : yAt(th.phi.threshold),
        phiLateY: th.phi === null ? Number.NaN : yAt(th.phi.lateThreshold),
      };
      byKey.set(key, group);
      groups.push(group);
    }
    return (last = group);
  };
  const defaultGroup = groupFor(config.defaults);
  const n = config.nodes.size;
  const ids: string[] = new Array<string>(n);
  const slots = new Int32Array(n);
  const reserved = new Uint8Array(n);
  const hashes = new Int32Array(n);
  const groupOf = new Uint32Array(n);
  const paused = new Uint8Array(n);
  // The lookups run while datagrams add and forget nodes: the commit checks them if so.
  const generation = t.generation;
  let i = 0;
  for (const spec of config.nodes.values()) {
    const group = groupFor(spec).index;
    // Hashed once: for a node the table lacks, the commit indexes it under the same hash.
    const hash = t.index.hashOfString(spec.id);
    let slot = t.index.getHashed(spec.id, hash);
    if (slot === undefined) {
      slot = t.reserve(group, 0);
      reserved[i] = 1;
      hashes[i] = hash;
    }
    ids[i] = spec.id;
    slots[i] = slot;
    groupOf[i] = group;
    paused[i] = spec.paused ? 1 : 0;
    if (++i % NODES_PER_STEP === 0) yield;
  }
  // Room in the id index for every node the commit may add: adding them then never rehashes.
  t.index.reserve(t.size + n);
  return { config, groups, defaultGroup, ids, slots, reserved, hashes, groupOf, paused, generation };
}

/** Slots visited between two points where applying may pause (see slices.ts). */
const SLOTS_PER_STEP = 4096;

/**
 * Applies a staged config, a step at a time: thresholds regroup the nodes, nodes newly expected
 * get a fresh startup grace, nodes no longer listed become unknown senders (or are forgotten when
 * unknown senders are ignored), and every deadline list is rebuilt in order. Between two steps
 * each node is whole, under its old group or its new one (both are in `s.groups` until the end),
 * so the nodes can be read; but the deadline lists are being rebuilt, so nothing may record a
 * datagram, judge, or forget until it is done (the monitor holds those back meanwhile).
 */
export function* commitSteps(s: DetectorState, staged: Staged, nowMs: number): Sliced<void> {
  const t = s.t;
  const { config } = staged;
  s.unknownNodes = config.unknownNodes;
  s.auth = config.auth;
  s.startupGraceMs = config.startupGraceMs;
  s.maxNodes = config.maxNodes;
  s.forgetAfterMs = config.forgetAfterMs;
  // The lists' current order, kept as a hint: rebuilt in it, they need next to no sorting.
  const hint = yield* listOrder(s);
  const retired = s.groups.filter((g) => g !== undefined);
  for (const group of staged.groups) s.groups[group.index] = group;

  // Every listed node, then every other node of the table: each is visited once, and those
  // in no list (not in the hint) are noted for the rebuild. The old lists are dropped whole.
  const { ids, slots, reserved, hashes, groupOf, paused } = staged;
  const moved = t.generation !== staged.generation;
  // Slots past the capacity are only those added below, at most one per listed node.
  const listed = new Uint8Array(t.capacity + ids.length);
  const outside: number[] = [];
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i]!;
    let slot = slots[i]!;
    if (reserved[i] === 1) {
      // A new node, unless it was heard as an unlisted one since it was staged.
      const heard = moved ? t.index.get(id) : undefined;
      if (heard === undefined) t.claim(slot, id, hashes[i]);
      else {
        t.release(slot);
        slot = heard;
      }
    } else if (moved && t.ids[slot] !== id) {
      // Forgotten, or evicted, since it was staged.
      slot = t.index.get(id) ?? t.add(id, groupOf[i]!, 0);
    }
    listed[slot] = 1;
    if (t.list[slot] === 0) outside.push(slot);
    apply(s, slot, true, paused[i] === 1, groupOf[i]!, nowMs);
    if (i % SLOTS_PER_STEP === SLOTS_PER_STEP - 1) yield;
  }
  for (let slot = 0; slot < t.capacity; slot++) {
    if (slot % SLOTS_PER_STEP === SLOTS_PER_STEP - 1) yield;
    if (t.ids[slot] === undefined || listed[slot] === 1) continue;
    if (s.unknownNodes === "ignore" || t.lastSeen[slot] === NEVER) {
      t.delete(slot);
      continue;
    }
    if (t.list[slot] === 0) outside.push(slot);
    apply(s, slot, false, false, staged.defaultGroup.index, nowMs);
  }
  // No node is in an old group now.
  for (const group of retired) if (s.groups[group.index] === group) s.groups[group.index] = undefined;
  s.defaultGroup = staged.defaultGroup;
  for (let k = 0; k < hint.length; k++) {
    const slot = hint[k]!;
    t.prev[slot] = t.next[slot] = NONE;
    t.list[slot] = 0;
    if (k % SLOTS_PER_STEP === SLOTS_PER_STEP - 1) yield;
  }
  for (const list of [s.unheard, s.forgettable]) {
    list.head = list.tail = NONE;
    list.size = 0;
  }
  s.phiHeap.clear();
  if (s.phi === null && staged.groups.some((g) => g.phi !== null)) s.phi = new PhiHistory();
  s.phi?.ensure(t.capacity);
  yield* relink(s, nowMs, hint, outside);
  s.minLateMs = Math.min(...staged.groups.map(soonestLateMs));
}

/**
 * The soonest a heartbeat of `group` can be followed by a deadline: its `late`, or for φ the
 * least its late threshold can give: with a mean of 0 and the smallest standard deviation when
 * that threshold lies above the mean (y ≥ 0), else nothing above 0.
 */
function soonestLateMs(group: Group): number {
  if (group.phi === null) return group.lateMs;
  const y = group.phiLateY;
  return Math.min(group.lateMs, y >= 0 ? group.phi.acceptablePauseMs + y * group.phi.minStdMs : 0);
}

/** Stages and commits at once (a monitor starting; tests). */
export function reconfigure(s: DetectorState, config: Config, nowMs: number): void {
  finish(commitSteps(s, finish(stage(s, config)), nowMs));
}

function apply(
  s: DetectorState,
  slot: number,
  expected: boolean,
  paused: boolean,
  group: number,
  nowMs: number,
): void {
  const t = s.t;
  const flags = t.flags[slot]!;
  const wasExpected = (flags & F_EXPECTED) !== 0;
  const wasPaused = (flags & F_PAUSED) !== 0;
  t.setGroup(slot, group);
  t.flags[slot] =
    (flags & (F_LEFT | F_SIGNED | F_FLAPPING | F_UNNUMBERED)) |
    (expected ? F_EXPECTED : 0) |
    (paused ? F_PAUSED : 0);
  if (paused) {
    t.reported[slot] = S_PAUSED;
    return;
  }
  if (t.lastSeen[slot] === NEVER && (!wasExpected || wasPaused || t.until[slot] === NEVER)) {
    t.until[slot] = nowMs + s.startupGraceMs;
    t.reported[slot] = S_NEW;
  } else if (wasPaused && (flags & F_LEFT) === 0) {
    // Back from maintenance: judged from here on by its timestamps, without an up event.
    t.reported[slot] = S_UP;
  }
}

/** Every slot in a deadline list, list by list, each in its order. */
function* listOrder(s: DetectorState): Sliced<Int32Array> {
  const t = s.t;
  const order = new Int32Array(t.size);
  let k = 0;
  // Late before up: a group's late nodes were all heard before its up ones, so the two lists
  // make one run in lastSeen order.
  const lists: SlotList[] = [];
  for (const group of s.groups) if (group !== undefined) lists.push(group.late, group.up);
  lists.push(s.unheard, s.forgettable);
  for (const list of lists) {
    for (let n = list.head; n !== NONE; n = t.next[n]!) {
      order[k++] = n;
      if (k % SLOTS_PER_STEP === 0) yield;
    }
  }
  // φ nodes are in no list; their order is their heap's.
  const phi = s.phiHeap.members();
  order.set(phi, k);
  return order.subarray(0, k + phi.length);
}

/**
 * Rebuilds the deadline lists (every slot is in none), ordered by lastSeen or deadline. Slots are
 * visited in `hint` order first (the old lists', already sorted runs), so that the sorts below
 * mostly merge runs instead of ordering 100 000 slots from scratch.
 */
function* relink(
  s: DetectorState,
  nowMs: number,
  hint: Int32Array,
  outside: readonly number[],
): Sliced<void> {
  const t = s.t;
  const live: number[] = [];
  const waiting: number[] = [];
  const fading: number[] = [];
  const seen = new Uint8Array(t.capacity);
  let visited = 0;
  for (const slots of [hint, outside]) {
    for (let k = 0; k < slots.length; k++) {
      if (++visited % SLOTS_PER_STEP === 0) yield;
      const slot = slots[k]!;
      if (seen[slot] === 1 || t.ids[slot] === undefined) continue;
      seen[slot] = 1;
      const flags = t.flags[slot]!;
      const left = (flags & F_LEFT) !== 0;
      if ((flags & F_EXPECTED) === 0 && (left || t.reported[slot] === S_DOWN)) {
        if (t.until[slot] === NEVER) t.until[slot] = nowMs + s.forgetAfterMs;
        fading.push(slot);
      } else if ((flags & F_PAUSED) !== 0 || left) {
        continue;
      } else if (t.lastSeen[slot] === NEVER) {
        if (t.reported[slot] === S_NEW) waiting.push(slot);
      } else if (t.reported[slot] === S_UP || t.reported[slot] === S_LATE) {
        live.push(slot);
      }
    }
  }
  sortBy(live, t.lastSeen);
  yield;
  for (let k = 0; k < live.length; k++) {
    const slot = live[k]!;
    const group = s.groupOf(slot);
    if (group.phi !== null) {
      // Judged by φ from here: a node new to it (or to this window size) starts from the
      // bootstrap, as at its first heartbeat; its silence so far counts from its last arrival.
      const h = s.phi!;
      if (h.window[slot] !== group.phi.window) h.bootstrap(slot, group.intervalMs, group.phi.window);
      s.phiDeadlines(slot);
      // Its next deadline: late if it is up, down if it is late.
      s.schedulePhi(slot, t.reported[slot] === S_LATE ? s.downAfterMs(slot) : s.lateAfterMs(slot));
    } else {
      s.phi?.release(slot);
      if (t.reported[slot] === S_LATE) t.push(group.late, L_LATE, slot, null);
      else t.push(group.up, L_UP, slot, null);
    }
    if (k % SLOTS_PER_STEP === SLOTS_PER_STEP - 1) yield;
  }
  sortBy(waiting, t.until);
  for (const slot of waiting) t.push(s.unheard, L_UNHEARD, slot, null);
  yield;
  sortBy(fading, t.until);
  for (const slot of fading) t.push(s.forgettable, L_FORGET, slot, null);
  s.heap.clear();
  for (const group of s.groups) {
    if (group === undefined) continue;
    group.heapKey = Number.POSITIVE_INFINITY;
    s.schedule(group);
  }
}

/** Orders `slots` by `key[slot]`: usually they already are (visited in the old lists' order). */
function sortBy(slots: number[], key: Float64Array): void {
  for (let i = 1; i < slots.length; i++) {
    if (key[slots[i - 1]!]! > key[slots[i]!]!) {
      slots.sort((a, b) => key[a]! - key[b]!);
      return;
    }
  }
}
