// Isolation: a monitor that hears none of its peers and (almost) none of its nodes is the one cut
// off, and the silence is its own. It says so once per episode (`monitor.isolated`), stops beating
// its peers so that another takes over, and judges no one, node or peer, until it hears a peer, or
// more than a few of its nodes, again. Only with a cluster: alone, a monitor cannot tell.

import type { Config } from "../config/types.js";
import type { Emit } from "../events.js";
import type { Detector } from "./detector.js";
import type { Peers } from "./peers.js";

/** A monitor that hears no peer is cut off when it hears at most this share of its nodes. */
const ISOLATED_HEARD_SHARE = 0.05;
/** How often, at most, the nodes are walked to see whether this monitor is cut off. */
const ISOLATION_CHECK_MS = 50;

export interface IsolationDeps {
  emit: Emit;
  detector: Detector;
  peers: Peers;
  /** The config now: its cluster section's thresholds apply. */
  config: () => Config;
  /** How long the nodes' judgement is held (as after a stall). */
  holdMs: () => number;
}

export class Isolation {
  /**
   * While this monitor is cut off: deadlines from here on are held, from a peer timeout before
   * it found out. Null when it is not.
   */
  private isolatedFromMs: number | null = null;
  private checkedAt = Number.NEGATIVE_INFINITY;

  constructor(private readonly deps: IsolationDeps) {}

  /**
   * Before nodes or peers are judged. What was heard is read from arrivals, not from states
   * (which a hold keeps as they were); looked at most every ISOLATION_CHECK_MS, since it walks
   * every node.
   */
  check(nowMs: number): void {
    const { peers, detector } = this.deps;
    const cluster = this.deps.config().cluster;
    if (cluster === null) return;
    if (nowMs - this.checkedAt >= ISOLATION_CHECK_MS) {
      this.checkedAt = nowMs;
      // The nodes are walked only when the peers say something may be wrong.
      const inEpisode = this.isolatedFromMs !== null;
      const lastHeardMs = peers.lastHeardMs();
      const peersSilent = inEpisode
        ? lastHeardMs === null || nowMs - lastHeardMs >= cluster.lateMs
        : peers.wentSilent();
      const nodes = peersSilent ? detector.reader().heard(nowMs, cluster.lateMs) : null;
      const cutOff =
        nodes !== null && nodes.expected > 0 && nodes.heard <= ISOLATED_HEARD_SHARE * nodes.expected;
      if (!cutOff) {
        if (inEpisode) peers.mute(false);
        this.isolatedFromMs = null;
      } else if (!inEpisode) {
        // Held from the last peer arrival: nothing heard since proves anything.
        this.isolatedFromMs = lastHeardMs ?? nowMs - cluster.timeoutMs;
        peers.mute(true);
        this.deps.emit("monitor.isolated", {
          heardNodes: nodes.heard,
          expectedNodes: nodes.expected,
          holdMs: this.holdAll(nowMs),
        });
        return;
      }
    }
    if (this.isolatedFromMs !== null) this.holdAll(nowMs);
  }

  /** Holds judgement of nodes and peers alike, from before the silence began; returns for how long. */
  private holdAll(nowMs: number): number {
    const holdMs = this.deps.holdMs();
    const fromMs = this.isolatedFromMs ?? nowMs;
    this.deps.detector.hold(fromMs, nowMs, holdMs);
    this.deps.peers.hold(fromMs, nowMs, 2 * (this.deps.config().cluster?.intervalMs ?? 0));
    return holdMs;
  }
}
