// Makes notices from the events the monitor writes: the event as it went to the journal, plus
// the node's state, labels, timing and a dedup key read from the monitor at that moment. Which
// events become notices at all is decided here too (`wanted`), so that what no output carries
// costs nothing.

import { EVENT_LEVELS, NOTIFY_BY_DEFAULT, type EventName, type StateName } from "../events.js";
import type { Notice } from "./notice.js";

import type { NodeFacts } from "../facts.js";
export type { NodeFacts } from "../facts.js";

export interface NoticeSource {
  /** The monitor's name in notices (host name, or cluster.self). */
  readonly monitor: string;
  wallMs(): number;
  /** Null when the monitor no longer knows the node (forgotten). */
  facts(node: string): NodeFacts | null;
  /** The same of another monitor of the cluster. */
  peerFacts?(peer: string): NodeFacts | null;
}

const NO_LABELS: Readonly<Record<string, string>> = Object.freeze({});

/** The state a node is in after each of its events; null when the event is not about its state. */
const STATE_AFTER: Partial<Record<EventName, StateName>> = {
  "node.up": "up",
  "node.late": "late",
  "node.down": "down",
  "node.left": "left",
  "node.restarted": "up",
};

type Fields = Readonly<Record<string, unknown>>;

/** True when `event` with `fields` may become a notice for an output whose `on` is `on`. */
export function wanted(on: ReadonlySet<string> | null, event: string, fields: Fields): boolean {
  // What the outputs themselves did is for the journal and metrics: two failing outputs that
  // told each other of their failures would never stop.
  if (event.startsWith("notify.")) return false;
  // An operator's capture is an audit record, never news: the journal has it.
  if (event.startsWith("capture.")) return false;
  if (!(on ?? NOTIFY_BY_DEFAULT).has(event)) return false;
  if (event !== "node.up" && event !== "peer.up") return true;
  // A first contact is not news; a recovery is. Under the default set, a return from a planned
  // stop (left -> up) is not either.
  if (fields.previous === "new") return false;
  return on !== null || fields.previous === "late" || fields.previous === "down";
}

export class NoticeMaker {
  private seq = 0;

  constructor(private readonly source: NoticeSource) {}

  make(event: string, fields: Fields, test = false): Notice {
    const { monitor } = this.source;
    const time = this.source.wallMs();
    const level = EVENT_LEVELS[event as EventName] ?? "info";
    const node = typeof fields.node === "string" && event.startsWith("node.") ? fields.node : null;
    const peer = node === null && typeof fields.peer === "string" ? fields.peer : null;
    const previous = typeof fields.previous === "string" ? (fields.previous as StateName) : null;
    let state: StateName | null = null;
    let since: number | null = null;
    let lastSeen: number | null = null;
    let labels = NO_LABELS;
    let dedupKey = `monitor/${event}/${monitor}/${time}`;
    if (node !== null || peer !== null) {
      // A node's (or another monitor's) incarnation and the sequence number of the datagram that
      // decided its state: the same at every monitor that heard it, so every monitor that tells
      // of one state uses one key. A restart is told apart by its new incarnation.
      const facts = node !== null ? this.source.facts(node) : (this.source.peerFacts?.(peer!) ?? null);
      const kind = event.slice(event.indexOf(".") + 1);
      state =
        STATE_AFTER[`node.${kind}` as EventName] ??
        (event === "node.flapping" ? (fields.state as StateName) : null);
      lastSeen = typeof fields.lastSeen === "number" ? fields.lastSeen : (facts?.lastSeen ?? null);
      since = state === null ? null : time;
      if (kind === "down") since = typeof fields.at === "number" ? fields.at : time;
      else if (kind === "late") since = lastSeen === null || facts === null ? time : lastSeen + facts.lateMs;
      let heard = facts?.incarnation == null ? "-" : `${facts.incarnation}.${facts.sequence ?? 0}`;
      let what: string = kind;
      if (kind === "restarted") heard = String(fields.incarnation);
      else if (kind === "flapping" && fields.settled === true) what = "settled";
      else if (kind !== "flapping" && state !== null) what = state;
      dedupKey = node !== null ? `${node}/${what}/${heard}` : `peer/${peer}/${what}/${heard}`;
      labels = facts?.labels ?? NO_LABELS;
    }
    return {
      hb: 1,
      event,
      level,
      node,
      state,
      previous,
      since,
      lastSeen,
      labels,
      seq: ++this.seq,
      dedupKey,
      monitor,
      time,
      test,
      fields,
    };
  }
}
