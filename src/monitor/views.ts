// What the detector answers about its nodes, derived at the moment of asking: counts by state,
// every node's state and last arrival (for metrics), and the full per-node view (for /status).
// Nothing here changes the detector's memory.

import type { StateName } from "../events.js";
import type { DetectorState } from "./detector-state.js";
import { F_EXPECTED, NEVER } from "./node-table.js";

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

export type Counts = Record<StateName, number>;

export function countStates(s: DetectorState, nowMs: number): Counts {
  const counts: Counts = { new: 0, up: 0, late: 0, down: 0, left: 0, paused: 0 };
  for (const slot of s.t.index.values()) counts[s.stateOf(slot, nowMs)]++;
  return counts;
}

/** Every node's id, state and last arrival (monotonic ms, null if never heard). */
export function forEachNode(
  s: DetectorState,
  nowMs: number,
  visit: (id: string, state: StateName, lastSeen: number | null) => void,
): void {
  const lastSeen = s.t.lastSeen;
  for (const [id, slot] of s.t.index)
    visit(id, s.stateOf(slot, nowMs), lastSeen[slot] === NEVER ? null : lastSeen[slot]!);
}

export function viewNodes(s: DetectorState, nowMs: number): NodeView[] {
  const t = s.t;
  const views: NodeView[] = [];
  for (const [id, slot] of t.index) {
    const heard = t.lastSeen[slot] !== NEVER;
    const group = s.groupOf(slot);
    const lost = t.lost[slot]!;
    const expectedCount = t.received[slot]! + lost;
    views.push({
      node: id,
      state: s.stateOf(slot, nowMs),
      expected: (t.flags[slot]! & F_EXPECTED) !== 0,
      lastSeen: heard ? s.toWall(t.lastSeen[slot]!) : null,
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
