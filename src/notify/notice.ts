// A notice: one event as the notify outputs carry it. It is the journal's event (its name,
// level and fields, unchanged, under `fields`) plus what a receiver needs to act on it without
// reading the journal: the node's state and labels, when the state began, a per-monitor sequence
// number and a dedup key that two monitors watching the same node compute alike.

import type { Level, StateName } from "../events.js";

export interface Notice {
  /** The notice format's version. */
  readonly hb: 1;
  readonly event: string;
  readonly level: Level;
  /** The node the event is about; null for monitor-level events. */
  readonly node: string | null;
  /** The node's state after the event; null when the event is not about a node's state. */
  readonly state: StateName | null;
  readonly previous: StateName | null;
  /** When the state began (epoch ms): a down node's deadline, a late node's late instant. */
  readonly since: number | null;
  /** When the node's last heartbeat arrived (epoch ms); null when never heard. */
  readonly lastSeen: number | null;
  /** The node's labels from the config (`nodes.ID.labels`); {} when none. */
  readonly labels: Readonly<Record<string, string>>;
  /** Numbered per monitor process, from 1, in the order events were written. */
  readonly seq: number;
  /**
   * Stable across monitors and resends: `<node>/<state>/<incarnation>.<sequence>` for a node's
   * state (the node's incarnation and the sequence number of the datagram that decided it),
   * `monitor/<event>/<monitor>` for the monitor's own.
   */
  readonly dedupKey: string;
  /** Which monitor wrote it (its host name, or cluster.self). */
  readonly monitor: string;
  /** When the event was written (epoch ms). */
  readonly time: number;
  /** True for `hb notify test`: a check of the path, not a real event. */
  readonly test: boolean;
  /** The event's own fields, exactly as in its journal line. */
  readonly fields: Readonly<Record<string, unknown>>;
}
