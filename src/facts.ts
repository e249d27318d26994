// What a notice says of a node (or of another monitor) when one of its events is written: read
// from the monitor at that moment, and the same at every monitor that heard the same datagrams.
// The monitor answers with it; the notify outputs write it.

export interface NodeFacts {
  readonly labels: Readonly<Record<string, string>> | null;
  /** Of the node's last accepted datagram; null when never heard. */
  readonly incarnation: number | null;
  readonly sequence: number | null;
  /** Epoch ms of its last arrival; null when never heard. */
  readonly lastSeen: number | null;
  readonly lateMs: number;
  readonly timeoutMs: number;
}

/**
 * A `node.down` said again after the event (a new speaker, the end of a window or of a parent's
 * block), from the node's last arrival and timeout as known now.
 */
export function downFields(node: string, lastSeen: number | null, timeoutMs: number, nowMs: number) {
  return {
    node,
    lastSeen,
    silentMs: lastSeen === null ? 0 : nowMs - lastSeen,
    timeoutMs,
    at: lastSeen === null ? nowMs : lastSeen + timeoutMs,
  };
}
