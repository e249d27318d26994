// Reloading a running monitor's config: one at a time, read and parsed on another thread while
// the loop goes on receiving and judging, applied a slice per turn, then handed to the outputs
// and the peers; an invalid file is rejected with its errors, and the old config keeps running.
// Each reload's outcome is recorded by the Monitor, for `GET /status/reload`.

import { setImmediate as nextTurn } from "node:timers/promises";
import { firstLines, type LoadedConfig } from "../config/load.js";
import { loadConfigOffThread } from "../config/load-off-thread.js";
import type { Config } from "../config/types.js";
import { HbError } from "../errors.js";
import type { Monitor } from "../monitor/monitor.js";
import type { Notify } from "../notify/notify.js";

/** A rejected reload's event lists at most this many problems (a broken 100 000-node file has more). */
const MAX_REJECTED_LINES = 100;

export interface ReloadDeps {
  monitor: Monitor;
  notify: Notify;
  configPath: string;
  entry: URL;
  monitorId: string;
  adjust?: (loaded: LoadedConfig) => void;
  onReload?: (phase: "start" | "done") => void;
  /** Told of each config taken in (the policy's recurring windows). */
  onConfig?: (config: Config) => void;
}

export class Reloads {
  /** Set at stop: a reload under way ends unapplied (once applying it finishes), and says nothing. */
  stopping = false;
  private current: Config;
  private chain: Promise<void> = Promise.resolve();
  /** The reload that waits for the one under way, which every call meanwhile shares. */
  private queued: Promise<void> | null = null;

  constructor(
    loaded: LoadedConfig,
    private readonly deps: ReloadDeps,
  ) {
    this.current = loaded.config;
  }

  /** Reloads run one at a time; the calls made during one are served by a single next one, which reads the file as it is by then. */
  next(): Promise<void> {
    if (this.queued !== null) return this.queued;
    const queued = this.chain.then(() => {
      this.queued = null;
      return this.once();
    });
    this.queued = queued;
    this.chain = queued;
    return queued;
  }

  private async once(): Promise<void> {
    const { monitor, notify, onReload } = this.deps;
    onReload?.("start");
    try {
      // Between slices of the work done on this thread, the socket is emptied first.
      const rest = (): Promise<void> => monitor.emptySocket(() => nextTurn());
      const next = await loadConfigOffThread(this.deps.entry, this.deps.configPath, this.current, rest);
      if (this.stopping) return;
      this.deps.adjust?.(next);
      next.monitorId = this.deps.monitorId;
      // The cluster is read once, at start: the running peers keep theirs.
      if (JSON.stringify(next.config.cluster) !== JSON.stringify(this.current.cluster)) {
        monitor.warn("cluster", "cluster: changes take effect when the monitor restarts");
        next.config = Object.freeze({ ...next.config, cluster: this.current.cluster });
      }
      // A slice per turn; a stop while it is staged ends it unapplied, once applying it finishes.
      await monitor.reloadInTurns(next, () =>
        this.stopping ? Promise.reject(new Error("stopping")) : nextTurn(),
      );
      this.current = next.config;
      notify.configure(next.config.notify, next.keyring);
      this.deps.onConfig?.(next.config);
      // A rotated cluster key signs this monitor's heartbeats from now on, as it checks theirs.
      const cluster = this.current.cluster;
      const clusterKey = cluster === null ? undefined : next.keyring.get(cluster.key);
      if (clusterKey !== undefined) monitor.peers?.rekey(clusterKey);
      this.warn(next);
    } catch (err) {
      if (this.stopping) return;
      const errors =
        err instanceof HbError && err.details.length > 0 ? err.details : [(err as Error).message];
      monitor.rejectReload(firstLines(errors, MAX_REJECTED_LINES));
    }
    onReload?.("done");
  }

  /** What a loaded config works with but should not: the file's warnings and the hooks that will not run. */
  warn(loaded: LoadedConfig): void {
    for (const detail of loaded.warnings ?? []) this.deps.monitor.warn("config", detail);
    for (const detail of loaded.hookProblems ?? [])
      this.deps.monitor.warn("notify", `${detail}: it will not be run`);
  }
}
