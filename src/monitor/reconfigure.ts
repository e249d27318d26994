// Applying a (new) config to the detector's memory, in two steps: staging, in slices, does the
// lookups and groups the thresholds while the detector goes on with the current config; the
// commit then applies it all in one step, so that no node is ever judged by a mixture of the
// two. Transitions this causes are reported by the detector's next advance().

import type { Config, Thresholds } from "../config/types.js";
import { finish, type Sliced } from "../slices.js";
import { L_FORGET, L_LATE, L_UNHEARD, L_UP, type DetectorState, type Group } from "./detector-state.js";
import {
  F_EXPECTED,
  F_FLAPPING,
  F_SIGNED,
  F_LEFT,
  F_PAUSED,
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
  const byKey = new Map<string, Group>();
  let last: Group | undefined;
  const groupFor = (th: Thresholds): Group => {
    // Most nodes share the thresholds of the node before them: no key to build for those.
    if (
      last !== undefined &&
      last.intervalMs === th.intervalMs &&
      last.lateMs === th.lateMs &&
      last.timeoutMs === th.timeoutMs
    )
      return last;
    const key = `${th.intervalMs}/${th.lateMs}/${th.timeoutMs}`;
    let group = byKey.get(key);
    if (group === undefined) {
      group = {
        index: groups.length,
        intervalMs: th.intervalMs,
        lateMs: th.lateMs,
        timeoutMs: th.timeoutMs,
        up: new SlotList(),
        late: new SlotList(),
        heapKey: Number.POSITIVE_INFINITY,
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
  const groupOf = new Uint32Array(n);
  const paused = new Uint8Array(n);
  // The lookups run while datagrams add and forget nodes: the commit checks them if so.
  const generation = t.generation;
  let i = 0;
  for (const spec of config.nodes.values()) {
    const group = groupFor(spec).index;
    let slot = t.index.get(spec.id);
    if (slot === undefined) {
      slot = t.reserve(group, 0);
      reserved[i] = 1;
    }
    ids[i] = spec.id;
    slots[i] = slot;
    groupOf[i] = group;
    paused[i] = spec.paused ? 1 : 0;
    if (++i % NODES_PER_STEP === 0) yield;
  }
  return { config, groups, defaultGroup, ids, slots, reserved, groupOf, paused, generation };
}

/**
 * Applies a staged config at once: thresholds regroup the nodes, nodes newly expected get a
 * fresh startup grace, nodes no longer listed become unknown senders (or are forgotten when
 * unknown senders are ignored), and every deadline list is rebuilt in order.
 */
export function commit(s: DetectorState, staged: Staged, nowMs: number): void {
  const t = s.t;
  const { config } = staged;
  s.unknownNodes = config.unknownNodes;
  s.auth = config.auth;
  s.startupGraceMs = config.startupGraceMs;
  s.maxNodes = config.maxNodes;
  s.forgetAfterMs = config.forgetAfterMs;
  // The lists' current order, kept as a hint: rebuilt in it, they need next to no sorting.
  const hint = listOrder(s);
  s.groups = staged.groups;
  s.defaultGroup = staged.defaultGroup;

  // Every listed node, then every other node of the table: each is visited once, and those
  // in no list (not in the hint) are noted for the rebuild. The old lists are dropped whole.
  const { ids, slots, reserved, groupOf, paused } = staged;
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
      if (heard === undefined) t.claim(slot, id);
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
  }
  for (const slot of t.index.values()) {
    if (listed[slot] === 1) continue;
    if (s.unknownNodes === "ignore" || t.lastSeen[slot] === NEVER) {
      t.delete(slot);
      continue;
    }
    if (t.list[slot] === 0) outside.push(slot);
    apply(s, slot, false, false, s.defaultGroup.index, nowMs);
  }
  for (let k = 0; k < hint.length; k++) {
    const slot = hint[k]!;
    t.prev[slot] = t.next[slot] = NONE;
    t.list[slot] = 0;
  }
  for (const list of [s.unheard, s.forgettable]) {
    list.head = list.tail = NONE;
    list.size = 0;
  }
  relink(s, nowMs, hint, outside);
  s.minLateMs = Math.min(...s.groups.map((g) => g.lateMs));
}

/** Stages and commits at once (a monitor starting; tests). */
export function reconfigure(s: DetectorState, config: Config, nowMs: number): void {
  commit(s, finish(stage(s, config)), nowMs);
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
  t.group[slot] = group;
  t.flags[slot] =
    (flags & (F_LEFT | F_SIGNED | F_FLAPPING)) | (expected ? F_EXPECTED : 0) | (paused ? F_PAUSED : 0);
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
function listOrder(s: DetectorState): Int32Array {
  const t = s.t;
  const order = new Int32Array(t.size);
  let k = 0;
  const walk = (list: SlotList): void => {
    for (let n = list.head; n !== NONE; n = t.next[n]!) order[k++] = n;
  };
  // Late before up: a group's late nodes were all heard before its up ones, so the two lists
  // make one run in lastSeen order.
  for (const group of s.groups) {
    walk(group.late);
    walk(group.up);
  }
  walk(s.unheard);
  walk(s.forgettable);
  return order.subarray(0, k);
}

/**
 * Rebuilds the deadline lists (every slot is in none), ordered by lastSeen or deadline. Slots are
 * visited in `hint` order first (the old lists', already sorted runs), so that the sorts below
 * mostly merge runs instead of ordering 100 000 slots from scratch.
 */
function relink(s: DetectorState, nowMs: number, hint: Int32Array, outside: readonly number[]): void {
  const t = s.t;
  const live: number[] = [];
  const waiting: number[] = [];
  const fading: number[] = [];
  const seen = new Uint8Array(t.capacity);
  const visit = (slot: number): void => {
    if (seen[slot] === 1 || t.ids[slot] === undefined) return;
    seen[slot] = 1;
    const flags = t.flags[slot]!;
    const left = (flags & F_LEFT) !== 0;
    if ((flags & F_EXPECTED) === 0 && (left || t.reported[slot] === S_DOWN)) {
      if (t.until[slot] === NEVER) t.until[slot] = nowMs + s.forgetAfterMs;
      fading.push(slot);
    } else if ((flags & F_PAUSED) !== 0 || left) {
      return;
    } else if (t.lastSeen[slot] === NEVER) {
      if (t.reported[slot] === S_NEW) waiting.push(slot);
    } else if (t.reported[slot] === S_UP || t.reported[slot] === S_LATE) {
      live.push(slot);
    }
  };
  for (const slot of hint) visit(slot);
  for (const slot of outside) visit(slot);
  live.sort((a, b) => t.lastSeen[a]! - t.lastSeen[b]!);
  for (const slot of live) {
    const group = s.groupOf(slot);
    if (t.reported[slot] === S_LATE) t.push(group.late, L_LATE, slot, null);
    else t.push(group.up, L_UP, slot, null);
  }
  waiting.sort((a, b) => t.until[a]! - t.until[b]!);
  for (const slot of waiting) t.push(s.unheard, L_UNHEARD, slot, null);
  fading.sort((a, b) => t.until[a]! - t.until[b]!);
  for (const slot of fading) t.push(s.forgettable, L_FORGET, slot, null);
  s.heap.clear();
  for (const group of s.groups) {
    group.heapKey = Number.POSITIVE_INFINITY;
    s.schedule(group);
  }
}
