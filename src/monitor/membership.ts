// Who is in the detector's table, and what outlives leaving it. A node's replay mark (its
// highest incarnation and sequence) is kept when it leaves the table (forgotten after
// `forget_after`, or evicted to make room), so captured datagrams cannot bring it back; those
// marks are bounded (`max_nodes` of them, oldest first out). An operator may clear one node.

import { L_UNHEARD, type DetectorState } from "./detector-state.js";
import { F_EXPECTED, F_LEFT, F_PAUSED, F_SIGNED, NONE, S_LEFT, S_PAUSED } from "./node-table.js";
import type { ReplayMark } from "./replay-marks.js";

export function markOf(s: DetectorState, slot: number): ReplayMark {
  const t = s.t;
  return {
    incarnation: t.incarnation[slot]!,
    sequence: t.sequence[slot]!,
    signed: (t.flags[slot]! & F_SIGNED) !== 0,
    left: (t.flags[slot]! & F_LEFT) !== 0,
  };
}

/** Keeps a replay mark for a node not in the table; the oldest go past `maxNodes` of them. */
export function keepFloor(s: DetectorState, id: string, mark: ReplayMark): void {
  const floors = s.floors;
  floors.delete(id);
  floors.set(id, mark);
  while (floors.size > s.maxNodes) floors.delete(floors.keys().next().value!);
}

/** Takes a node out of the table, keeping its replay mark: its old datagrams stay refused. */
export function drop(s: DetectorState, slot: number): void {
  const t = s.t;
  s.unlink(slot);
  if (t.incarnation[slot]! >= 0) keepFloor(s, t.ids[slot]!, markOf(s, slot));
  t.delete(slot);
}

/**
 * Makes room for a newcomer when the table is full: the unlisted node silent longest among
 * those down or left goes (listed nodes never do). False when there is none.
 */
export function evict(s: DetectorState): boolean {
  const head = s.forgettable.head;
  if (head === NONE) return false;
  drop(s, head);
  s.evicted++;
  return true;
}

/**
 * An operator's `hb forget`: the node's replay mark and history go. A listed node starts over
 * as never heard (with a fresh startup grace); an unlisted one is no longer tracked.
 */
export function forgetNode(s: DetectorState, id: string, nowMs: number): boolean {
  const slot = s.t.index.get(id);
  const known = slot !== undefined || s.floors.has(id);
  s.floors.delete(id);
  s.guard.forget(id);
  if (slot === undefined) return known;
  const t = s.t;
  s.unlink(slot);
  if ((t.flags[slot]! & F_EXPECTED) === 0) {
    t.delete(slot);
    return true;
  }
  const flags = t.flags[slot]! & (F_EXPECTED | F_PAUSED);
  t.delete(slot);
  const fresh = t.add(id, s.groupOf(slot).index, flags);
  if ((flags & F_PAUSED) !== 0) {
    t.reported[fresh] = S_PAUSED;
    return true;
  }
  t.until[fresh] = nowMs + s.startupGraceMs;
  t.push(s.unheard, L_UNHEARD, fresh, null);
  return true;
}

/**
 * A node just added to the table takes over the mark kept for it, if any. A mark that ended
 * with a leave keeps saying so (F_LEFT): the node's next incarnation is a return, not a crash.
 */
export function takeFloor(s: DetectorState, slot: number): void {
  const { t, floors } = s;
  const id = t.ids[slot]!;
  const floor = floors.get(id);
  if (floor === undefined) return;
  floors.delete(id);
  t.incarnation[slot] = floor.incarnation;
  t.sequence[slot] = floor.sequence;
  if (floor.signed) t.flags[slot] = t.flags[slot]! | F_SIGNED;
  if (floor.left) t.flags[slot] = t.flags[slot]! | F_LEFT;
}

/**
 * Restores the replay marks saved before a restart: older datagrams stay refused. A listed node
 * whose last datagram was a leave is `left` again, as it was before the restart, rather than
 * `new` and then down at the end of the startup grace.
 */
export function restoreMarks(s: DetectorState, marks: Iterable<[string, ReplayMark]>): void {
  const t = s.t;
  for (const [id, mark] of marks) {
    const slot = t.index.get(id);
    if (slot === undefined) keepFloor(s, id, mark);
    else if (t.incarnation[slot]! < 0) {
      s.floors.set(id, mark);
      takeFloor(s, slot);
      if (mark.left && (t.flags[slot]! & F_PAUSED) === 0) {
        s.unlink(slot);
        t.reported[slot] = S_LEFT;
      }
    }
  }
}

/** The replay marks to save: every node's highest accepted incarnation and sequence. */
export function* marksOf(s: DetectorState): IterableIterator<[string, ReplayMark]> {
  const t = s.t;
  for (let slot = 0; slot < t.capacity; slot++) {
    const id = t.ids[slot];
    if (id !== undefined && t.incarnation[slot]! >= 0) yield [id, markOf(s, slot)];
  }
  yield* s.floors;
}
