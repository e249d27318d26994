// What is read of the other monitors, at the moment of asking: the cluster's part of the status
// document (each peer's state, and who speaks) and the peers that are down now, with what their
// `peer.down` said (for a new speaker to say it again). Read from the peers' detector; pure.

import type { WallTime } from "../clock.js";
import type { ClusterSpec } from "../config/types.js";
import type { EventFields } from "../events.js";
import type { StateName } from "../states.js";
import { formatHostPort } from "../wire/address.js";
import type { NodeReader } from "./views.js";

export interface PeerView {
  readonly peer: string;
  readonly address: string;
  readonly state: StateName;
  /** Epoch ms of its last heartbeat; null when never heard. */
  readonly lastSeen: number | null;
  /**
   * Whether it shares the cluster's state (it sent this monitor a sync datagram lately); a peer
   * that beats but does not is of an older version. null: this monitor shares none.
   */
  readonly shares: boolean | null;
}

export interface ClusterView {
  readonly self: string;
  readonly speak: "leader" | "all";
  /** Who speaks in this monitor's view (speak: leader); with speak: all, every monitor does. */
  readonly speaker: string | null;
  readonly speaking: boolean;
  readonly peers: readonly PeerView[];
}

export function clusterView(
  reader: NodeReader,
  cluster: ClusterSpec,
  peerIds: readonly string[],
  speech: { self: string; speaker: string | null; speaking: boolean },
  nowMs: number,
  shares: (peer: string) => boolean | null,
): ClusterView {
  const address = new Map(cluster.monitors.map((m) => [m.id, formatHostPort(m.address)]));
  return {
    self: speech.self,
    speak: cluster.speak,
    speaker: speech.speaker,
    speaking: speech.speaking,
    peers: peerIds.map((peer) => {
      const slot = reader.slotOf(peer);
      const view = slot === undefined ? null : reader.view(slot, nowMs);
      return {
        peer,
        address: address.get(peer)!,
        state: view?.state ?? "new",
        lastSeen: view?.lastSeen ?? null,
        shares: shares(peer),
      };
    }),
  };
}

/** The peers down at `nowMs`; one never heard counts as silent since `startedMs`. */
export function downPeers(
  reader: NodeReader,
  peerIds: readonly string[],
  wall: WallTime,
  startedMs: number,
  nowMs: number,
): EventFields["peer.down"][] {
  const out: EventFields["peer.down"][] = [];
  for (const peer of peerIds) {
    const slot = reader.slotOf(peer);
    if (slot === undefined || reader.state(slot, nowMs) !== "down") continue;
    const view = reader.view(slot, nowMs);
    const lastSeenMono = reader.lastSeen(slot);
    out.push({
      peer,
      lastSeen: view.lastSeen,
      silentMs: view.silentMs ?? Math.round(nowMs - startedMs),
      timeoutMs: view.timeoutMs,
      at: wall.of((lastSeenMono ?? startedMs) + view.timeoutMs),
    });
  }
  return out;
}
