// The one registry of log events: every event name hb writes, its level, and its fields.
// Names are a stable interface (operators filter on them); docs/events.md lists exactly these.

import type { CaptureEnd } from "./actions.js";
import type { StateName } from "./states.js";

export type { StateName };
export type Level = "info" | "warn" | "error";

export interface EventFields {
  "node.up": { node: string; from: string; previous: StateName; downMs?: number };
  "node.late": { node: string; silentMs: number; lateMs: number };
  "node.down": {
    node: string;
    lastSeen: number | null;
    silentMs: number;
    timeoutMs: number;
    at: number;
  };
  "node.left": { node: string; from: string };
  "node.restarted": { node: string; from: string; incarnation: number; previousIncarnation: number };
  /** `by`: "forget_after" (an unlisted node silent that long) or "operator" (`hb forget`). */
  "node.flapping": { node: string; changes: number; windowMs: number; settled: boolean; state: StateName };
  "node.forgotten": { node: string; silentMs: number | null; by: "forget_after" | "operator" };
  "peer.up": { peer: string; from: string; previous: StateName; downMs?: number };
  "peer.late": { peer: string; silentMs: number; lateMs: number };
  "peer.down": { peer: string; lastSeen: number | null; silentMs: number; timeoutMs: number; at: number };
  "peer.left": { peer: string; from: string };
  "peer.restarted": { peer: string; from: string; incarnation: number; previousIncarnation: number };
  /** Who speaks changed in this monitor's view: `speaking` is whether this one does now. */
  "monitor.speaking": { speaking: boolean; speaker: string | null; reason: string };
  /** This monitor hears no peer and (almost) no node: the silence is its own; no one is judged. */
  "monitor.isolated": { heardNodes: number; expectedNodes: number; holdMs: number };
  "monitor.started": { listen: string; status: string; nodes: number; version: string; config: string };
  "monitor.stopping": { listen: string; status: string; nodes: number; version: string; signal: string };
  "monitor.stalled": { stalledMs: number; holdMs: number };
  "monitor.overloaded": { cause: "kernel_drops" | "backlog"; kernelDrops: number; holdMs: number };
  "monitor.warning": { problem: string; detail: string };
  "config.reloaded": { changes: string[] };
  "config.rejected": { errors: string[] };
  "nodes.summarized": { counts: Record<string, number>; total: number; windowMs: number };
  "datagrams.rejected": { counts: Record<string, number>; total: number; windowMs: number };
  "log.dropped": { lines: number };
  /** An output gave up on a delivery: it failed for good, or ran out of attempts. */
  "notify.failed": {
    output: string;
    reason: string;
    detail: string;
    attempts: number;
    notices: number;
    nodes: string[];
  };
  /** An output's queue overflowed: its oldest notices were dropped (reported at most once a minute). */
  "notify.dropped": { output: string; notices: number; windowMs: number };
  /** `hb notify test`: a marked test notice, sent through one output. */
  "notify.test": { output: string; outcome: string; detail: string };
  /** A maintenance window was added, given a new end, ended by an operator, or ran out. */
  "maint.added": MaintFields;
  "maint.extended": MaintFields;
  "maint.ended": MaintFields;
  "maint.expired": MaintFields;
  /** `hb capture` began recording the arrivals of the nodes `node` matches (null: every node). */
  "capture.started": { seconds: number; node: string | null; maxBytes: number; author: string };
  /** It ended: why, and what the trace holds (`bytes`: the file's size; what was sent, if cut off). */
  "capture.ended": {
    seconds: number;
    node: string | null;
    author: string;
    reason: CaptureEnd;
    rows: number;
    nodes: number;
    bytes: number;
    capturedMs: number;
  };
  "sender.started": {
    node: string;
    monitors: string[];
    intervalMs: number;
    incarnation: number;
    keyId: string | null;
  };
  "sender.stopping": { node: string; signal: string; sent: number };
  "sender.failed": { node: string; monitor: string; error: string; failures: number };
  "sender.warning": { node: string; problem: string; detail: string };
}

export type EventName = keyof EventFields;

/** A maintenance window as its events tell of it; times are epoch ms, `by` the monitor that took it. */
export type MaintFields = {
  id: string;
  match: string[];
  author: string;
  comment: string;
  startsAt: number;
  endsAt: number;
  by: string;
};

export const EVENT_LEVELS: { readonly [E in EventName]: Level } = {
  "node.up": "info",
  "node.late": "warn",
  "node.down": "error",
  "node.left": "info",
  "node.restarted": "warn",
  "node.forgotten": "info",
  "node.flapping": "warn",
  "peer.up": "info",
  "peer.late": "warn",
  "peer.down": "error",
  "peer.left": "info",
  "peer.restarted": "warn",
  "monitor.speaking": "info",
  "monitor.isolated": "error",
  "monitor.started": "info",
  "monitor.stopping": "info",
  "monitor.stalled": "warn",
  "monitor.overloaded": "warn",
  "monitor.warning": "warn",
  "config.reloaded": "info",
  "config.rejected": "error",
  "datagrams.rejected": "warn",
  "nodes.summarized": "warn",
  "log.dropped": "warn",
  "notify.failed": "warn",
  "notify.dropped": "warn",
  "notify.test": "info",
  "maint.added": "info",
  "maint.extended": "info",
  "maint.ended": "info",
  "maint.expired": "info",
  "capture.started": "info",
  "capture.ended": "info",
  "sender.started": "info",
  "sender.stopping": "info",
  "sender.failed": "warn",
  "sender.warning": "warn",
};

/**
 * The events a notify output carries when its config names none (`on:`): what needs attention,
 * and recoveries. A `node.up` is a notice only as a recovery (from late or down): a first
 * contact, or a return from a planned stop, is not news to page about.
 */
export const NOTIFY_BY_DEFAULT: ReadonlySet<EventName> = new Set<EventName>([
  "node.down",
  "node.late",
  "node.up",
  "node.restarted",
  "node.flapping",
  "peer.down",
  "peer.late",
  "peer.up",
  "peer.restarted",
  "monitor.isolated",
  "monitor.stalled",
  "monitor.overloaded",
  "config.rejected",
]);

export type Emit = <E extends EventName>(event: E, fields: EventFields[E]) => void;
