// Applying a (new) config to the detector's memory: thresholds regroup the nodes, nodes newly
// expected get a fresh startup grace, nodes no longer listed become unknown senders (or are
// forgotten when unknown senders are ignored), and every deadline list is rebuilt in order.
// Transitions this causes are reported by the detector's next advance().

import type { Config, NodeSpec, Thresholds } from "../config/types.js";
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

export function reconfigure(s: DetectorState, config: Config, nowMs: number): void {
  const t = s.t;
  s.unknownNodes = config.unknownNodes;
  s.auth = config.auth;
  s.startupGraceMs = config.startupGraceMs;
  s.maxNodes = config.maxNodes;
  s.forgetAfterMs = config.forgetAfterMs;
  // The lists' current order, kept as a hint: rebuilt in it, they need next to no sorting.
  const hint = listOrder(s);
  // Take every slot out of the old groups' lists before the groups are replaced.
  for (const slot of t.index.values()) s.unlink(slot);
  s.groups = [];
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
        index: s.groups.length,
        intervalMs: th.intervalMs,
        lateMs: th.lateMs,
        timeoutMs: th.timeoutMs,
        up: new SlotList(),
        late: new SlotList(),
        heapKey: Number.POSITIVE_INFINITY,
      };
      byKey.set(key, group);
      s.groups.push(group);
    }
    return (last = group);
  };
  s.defaultGroup = groupFor(config.defaults);

  // One lookup per listed node, one pass over the nodes the config does not list, then the
  // newly listed ones (added last, so that they may reuse the slots just freed).
  const listed = new Uint8Array(t.capacity);
  const added: NodeSpec[] = [];
  for (const spec of config.nodes.values()) {
    const slot = t.index.get(spec.id);
    if (slot === undefined) {
      added.push(spec);
      continue;
    }
    listed[slot] = 1;
    apply(s, slot, spec, groupFor(spec), nowMs);
  }
  for (const slot of t.index.values()) {
    if (listed[slot] === 1) continue;
    if (s.unknownNodes === "ignore" || t.lastSeen[slot] === NEVER) t.delete(slot);
    else apply(s, slot, undefined, s.defaultGroup, nowMs);
  }
  for (const spec of added) apply(s, t.add(spec.id, s.defaultGroup.index, 0), spec, groupFor(spec), nowMs);
  relink(s, nowMs, hint);
  s.minLateMs = Math.min(...s.groups.map((g) => g.lateMs));
}

function apply(
  s: DetectorState,
  slot: number,
  spec: NodeSpec | undefined,
  group: Group,
  nowMs: number,
): void {
  const t = s.t;
  const flags = t.flags[slot]!;
  const wasExpected = (flags & F_EXPECTED) !== 0;
  const wasPaused = (flags & F_PAUSED) !== 0;
  const paused = spec?.paused ?? false;
  t.group[slot] = group.index;
  t.flags[slot] =
    (flags & (F_LEFT | F_SIGNED | F_FLAPPING)) |
    (spec !== undefined ? F_EXPECTED : 0) |
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
function listOrder(s: DetectorState): number[] {
  const t = s.t;
  const order: number[] = [];
  const walk = (list: SlotList): void => {
    for (let n = list.head; n !== NONE; n = t.next[n]!) order.push(n);
  };
  for (const group of s.groups) {
    walk(group.up);
    walk(group.late);
  }
  walk(s.unheard);
  walk(s.forgettable);
  return order;
}

/**
 * Rebuilds the deadline lists (every slot is in none), ordered by lastSeen or deadline. Slots are
 * visited in `hint` order first (the old lists', already sorted runs), so that the sorts below
 * mostly merge runs instead of ordering 100 000 slots from scratch.
 */
function relink(s: DetectorState, nowMs: number, hint: readonly number[]): void {
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
  for (const slot of t.index.values()) visit(slot);
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
