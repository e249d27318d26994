// How a monitor joins the other monitors of its site: the Peers made from the cluster section
// (or the config error that prevents it), who speaks reported as it changes, another monitor that
// uses this one's id named once, and the peer addresses that this monitor's socket cannot reach.

import type { Clock, WallTime } from "../clock.js";
import type { LoadedConfig } from "../config/load.js";
import type { Config } from "../config/types.js";
import { HbError } from "../errors.js";
import type { Emit } from "../events.js";
import { formatHostPort } from "../wire/address.js";
import { nodeIdOf, type Datagram } from "../wire/protocol.js";
import { familyOf, type DatagramSocket } from "../wire/udp.js";
import { selfOf } from "./admit.js";
import { Peers } from "./peers.js";

export interface PeeringDeps {
  clock: Clock;
  wall: WallTime;
  emit: Emit;
  socket: DatagramSocket;
  received: () => number;
  beforeJudging: (nowMs: number) => void;
  /** Told when this monitor starts or stops speaking. */
  onSpeaking?: ((speaking: boolean) => void) | undefined;
}

/** The other monitors of the site; null without a cluster. */
export function makePeers(loaded: LoadedConfig, deps: PeeringDeps): Peers | null {
  const config = loaded.config;
  const cluster = config.cluster;
  if (cluster === null) return null;
  const self = selfOf(loaded);
  if (self === null || !cluster.monitors.some((m) => m.id === self))
    throw new HbError(
      "HB_ERR_CONFIG",
      `${config.file}: this monitor's id ${JSON.stringify(self)} is not one of cluster.monitors (set cluster.self, --id or HB_MONITOR_ID)`,
    );
  const key = loaded.keyring.get(cluster.key);
  if (key === undefined)
    throw new HbError("HB_ERR_CONFIG", `${config.file}: cluster.key ${cluster.key} is not loaded`);
  const peers: Peers = new Peers(cluster, self, config, {
    clock: deps.clock,
    wall: deps.wall,
    emit: deps.emit,
    socket: deps.socket,
    key,
    upstreamKey: cluster.upstream?.key == null ? undefined : loaded.keyring.get(cluster.upstream.key),
    received: deps.received,
    beforeJudging: deps.beforeJudging,
    onSpeakerChange: () => {
      if (!peers.speakingChanged()) return;
      const speaking = peers.speaking();
      deps.emit("monitor.speaking", { speaking, speaker: peers.speaker(), reason: "peers" });
      deps.onSpeaking?.(speaking);
    },
  });
  return peers;
}

/**
 * A heartbeat signed with the cluster's key under this monitor's own id comes from another
 * monitor configured with the same id (a shared `self:`, one host name): the two cannot see
 * each other. Refused like any misuse of the key (`key_not_allowed`), and said once.
 */
export class SameIdCheck {
  private warned = false;

  constructor(
    private readonly peers: Peers,
    private readonly config: () => Config,
    private readonly warn: (problem: string, detail: string) => void,
  ) {}

  refused(dg: Datagram): void {
    const self = this.peers.self;
    if (this.warned || dg.keyId !== this.config().cluster?.key || nodeIdOf(dg) !== self) return;
    this.warned = true;
    this.warn(
      "cluster",
      `another monitor sends heartbeats as ${self}, this monitor's id: give each monitor its own (cluster.self, --id, HB_MONITOR_ID)`,
    );
  }
}

/** Peer heartbeats leave from the heartbeat socket: one of the other family never arrives. */
export function unreachablePeers(config: Config, self: string | undefined, listen: string): string[] {
  const family = familyOf(config.listen.host);
  const problems: string[] = [];
  for (const monitor of config.cluster?.monitors ?? [])
    if (monitor.id !== self && familyOf(monitor.address.host) !== family)
      problems.push(
        `cluster.monitors.${monitor.id}: ${formatHostPort(monitor.address)} cannot be reached from listen ${listen} (${family}): use an address of the same family`,
      );
  return problems;
}
