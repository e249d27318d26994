// The monitor's status document (GET /status, `hb status --json`) and the one-line summary of
// counts that systemd shows. The shape is an interface operators script against: fields are
// added, never renamed.

import type { RejectReason } from "./admit.js";
import type { Counts, NodeView } from "./views.js";

export interface ReloadState {
  /** How many reloads were attempted (accepted or rejected) since start. */
  generation: number;
  ok: boolean | null;
  at: number | null;
  changes: string[];
  errors: string[];
}

export interface StatusDocument {
  version: string;
  pid: number;
  now: number;
  startedAt: number;
  listen: string;
  config: string;
  reload: ReloadState;
  receiveBuffer: { asked: number; granted: number };
  /** Datagrams the kernel dropped for this socket because its receive buffer was full. */
  kernelDrops: number | null;
  counts: Counts;
  datagrams: { received: number; accepted: number; rejected: Record<RejectReason, number> };
  nodes: NodeView[];
}

/** "12 up, 1 late, 2 down, 0 left" (plus new and paused when there are any). */
export function formatCounts(c: Counts): string {
  const extra = [c.new > 0 ? `, ${c.new} new` : "", c.paused > 0 ? `, ${c.paused} paused` : ""].join("");
  return `${c.up} up, ${c.late} late, ${c.down} down, ${c.left} left${extra}`;
}
