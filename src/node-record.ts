// What the monitor keeps per node (a NodeRecord: last arrival, incarnation, sequence, counters,
// the state last reported, and intrusive list links), the threshold groups whose lists order
// records by arrival, and the read-only view of a record that status output shows.

import type { Thresholds } from "./config.js";
import type { StateName } from "./events.js";
import type { Linked, NodeList } from "./node-list.js";

export const NEVER = Number.NEGATIVE_INFINITY;

export interface Group extends Thresholds {
  readonly key: string;
  readonly up: NodeList<NodeRecord>;
  readonly late: NodeList<NodeRecord>;
  /** The key of this group's live heap entry; +Infinity when it has none. */
  heapKey: number;
}

export function groupDeadline(group: Group): number {
  const up = group.up.head === null ? Number.POSITIVE_INFINITY : group.up.head.lastSeen + group.lateMs;
  const late =
    group.late.head === null ? Number.POSITIVE_INFINITY : group.late.head.lastSeen + group.timeoutMs;
  return Math.min(up, late);
}

export class NodeRecord implements Linked<NodeRecord> {
  prev: NodeRecord | null = null;
  next: NodeRecord | null = null;
  list: NodeList<NodeRecord> | null = null;

  lastSeen = NEVER;
  /** Expected but never heard: reported down if still unheard at this instant. */
  heardBy = NEVER;
  /** Unlisted and down or left: forgotten at this instant. */
  forgetAt = NEVER;
  incarnation = -1;
  sequence = -1;
  left = false;
  reported: StateName = "new";
  received = 0;
  lost = 0;
  restarts = 0;
  from = "";

  constructor(
    readonly id: string,
    public group: Group,
    public expected: boolean,
    public paused: boolean,
  ) {}
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

export function viewOf(
  rec: NodeRecord,
  state: StateName,
  nowMs: number,
  toWall: (mono: number) => number,
): NodeView {
  const heard = rec.lastSeen !== NEVER;
  const expectedCount = rec.received + rec.lost;
  return {
    node: rec.id,
    state,
    expected: rec.expected,
    lastSeen: heard ? toWall(rec.lastSeen) : null,
    silentMs: heard ? Math.round(nowMs - rec.lastSeen) : null,
    intervalMs: rec.group.intervalMs,
    lateMs: rec.group.lateMs,
    timeoutMs: rec.group.timeoutMs,
    lossPct: expectedCount === 0 ? 0 : Math.round((10_000 * rec.lost) / expectedCount) / 100,
    received: rec.received,
    lost: rec.lost,
    restarts: rec.restarts,
    incarnation: rec.incarnation >= 0 ? rec.incarnation : null,
    from: rec.from === "" ? null : rec.from,
  };
}
