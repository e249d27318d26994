// Prometheus metrics for GET /metrics, with prom-client for the registry and exposition format.
// Values are read from the monitor when scraped: nothing is counted twice on the hot path.
// prom-client's default metrics stay off (their 10 ms timer would wake an idle monitor); per-node
// series are written directly, a slice of nodes at a time (a million nodes through label sets, or
// in one go, would block a scrape), and `?nodes=0` leaves them out.

import { readFileSync } from "node:fs";
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import { STATES, zeroCounts, type Counts, type StateName } from "../states.js";

/** Nodes written between two chances to give the event loop a turn. */
const NODES_PER_PIECE = 2048;

export interface MetricsSource {
  /** Adds a slice of nodes' states to `counts`; returns where to go on, or -1 at the end. */
  countSlice(counts: Counts, fromSlot: number): number;
  datagramCounters(): { received: number; accepted: number; rejected: Readonly<Record<string, number>> };
  kernelDrops(): number | null;
  /** The largest delay of the deadline timer since the last call, in ms; resets it. */
  takeTimerLatenessMs(): number;
  /** Rows written by every `hb capture` since start. */
  captureRows?(): number;
  /** The other monitors and who speaks; null without a cluster. */
  cluster?(): { speaking: boolean; peers: readonly { peer: string; state: StateName }[] } | null;
  /** Visits up to `max` nodes from `fromSlot` on; returns where to go on from, or -1 at the end. */
  forEachNode(
    fromSlot: number,
    max: number,
    visit: (id: string, state: StateName, lastSeenWallMs: number | null) => void,
  ): number;
}

/** The notify outputs' counts, as the dispatcher keeps them (notices, not calls). */
export interface NotifyStatsSource {
  stats(): readonly {
    output: string;
    queued: number;
    delivered: number;
    retried: number;
    failed: number;
    dropped: number;
  }[];
  /** Set by Metrics: told of each delivery's duration. */
  onDelivery: ((output: string, seconds: number) => void) | undefined;
}

/** What the policy layer counts: notices it kept back, and the nodes in maintenance now. */
export interface PolicyStatsSource {
  /** Notices not sent, by the kind of reason (maint, parent, flapping, not_paged), since start. */
  suppressed(): Readonly<Record<string, number>>;
  /** Nodes a maintenance window covers now (looked at a slice at a time). */
  nodesInMaintenance(): Promise<number>;
  /** Runtime windows kept, by state. */
  windows(): Readonly<Record<string, number>>;
}

/** Seconds: a webhook answers in milliseconds, a hook may run for its whole timeout. */
const DELIVERY_BUCKETS = [0.005, 0.025, 0.1, 0.25, 1, 2.5, 10, 30, 60];

/** A counter whose value is read from `read` at scrape time. */
function readCounter(registry: Registry, name: string, help: string, read: () => number | null): void {
  new Counter({
    name,
    help,
    registers: [registry],
    collect() {
      const value = read();
      this.reset();
      if (value !== null) this.inc(value);
    },
  });
}

export class Metrics {
  readonly registry = new Registry();

  constructor(
    private readonly source: MetricsSource,
    notify?: NotifyStatsSource,
    policy?: PolicyStatsSource,
  ) {
    const r = this.registry;
    if (notify !== undefined) this.notifyMetrics(notify);
    if (policy !== undefined) this.policyMetrics(policy);
    new Gauge({
      name: "hb_nodes",
      help: "Tracked nodes by state.",
      labelNames: ["state"],
      registers: [r],
      async collect() {
        const counts = zeroCounts();
        // A million nodes are counted a slice at a time, with the loop free in between.
        for (let slot = source.countSlice(counts, 0); slot >= 0; slot = source.countSlice(counts, slot))
          await new Promise((resolve) => setImmediate(resolve));
        for (const state of STATES) this.set({ state }, counts[state]);
      },
    });
    if (source.cluster !== undefined) {
      const cluster = source.cluster.bind(source);
      new Gauge({
        name: "hb_peer_up",
        help: "1 when the other monitor is up or late in this monitor's view, else 0.",
        labelNames: ["peer"],
        registers: [r],
        collect() {
          this.reset();
          for (const p of cluster()?.peers ?? [])
            this.set({ peer: p.peer }, p.state === "up" || p.state === "late" ? 1 : 0);
        },
      });
      new Gauge({
        name: "hb_speaker",
        help: "1 when this monitor runs the notify outputs (it speaks for the cluster), else 0.",
        registers: [r],
        collect() {
          this.set((cluster()?.speaking ?? true) ? 1 : 0);
        },
      });
    }
    readCounter(
      r,
      "hb_datagrams_received_total",
      "Datagrams read from the UDP socket.",
      () => source.datagramCounters().received,
    );
    readCounter(
      r,
      "hb_heartbeats_received_total",
      "Datagrams accepted as heartbeats (or leaves).",
      () => source.datagramCounters().accepted,
    );
    new Counter({
      name: "hb_datagrams_rejected_total",
      help: "Datagrams refused, by reason.",
      labelNames: ["reason"],
      registers: [r],
      collect() {
        this.reset();
        for (const [reason, n] of Object.entries(source.datagramCounters().rejected)) this.inc({ reason }, n);
      },
    });
    if (source.captureRows !== undefined) {
      const captureRows = source.captureRows.bind(source);
      readCounter(r, "hb_capture_rows_total", "Arrivals written to `hb capture` traces.", captureRows);
    }
    readCounter(
      r,
      "hb_kernel_drops_total",
      "Datagrams the kernel dropped because the socket's receive buffer was full.",
      () => source.kernelDrops(),
    );
    new Gauge({
      name: "hb_event_loop_lag_seconds",
      help: "The largest delay of the monitor's deadline timer since the previous scrape.",
      registers: [r],
      collect() {
        this.set(source.takeTimerLatenessMs() / 1000);
      },
    });
    new Gauge({
      name: "process_resident_memory_bytes",
      help: "Resident memory size in bytes.",
      registers: [r],
      collect() {
        this.set(process.memoryUsage.rss());
      },
    });
    new Counter({
      name: "process_cpu_seconds_total",
      help: "User and system CPU time spent in seconds.",
      registers: [r],
      collect() {
        const { user, system } = process.cpuUsage();
        this.reset();
        this.inc((user + system) / 1e6);
      },
    });
    new Gauge({
      name: "process_start_time_seconds",
      help: "Start time of the process since the epoch in seconds.",
      registers: [r],
      collect() {
        this.set(startTimeSeconds);
      },
    });
  }

  private policyMetrics(policy: PolicyStatsSource): void {
    const r = this.registry;
    new Counter({
      name: "hb_notices_suppressed_total",
      help: "Judgements that did not become notices, by reason: maint, parent, flapping, not_paged.",
      labelNames: ["reason"],
      registers: [r],
      collect() {
        this.reset();
        for (const [reason, n] of Object.entries(policy.suppressed())) this.inc({ reason }, n);
      },
    });
    new Gauge({
      name: "hb_nodes_in_maintenance",
      help: "Nodes a maintenance window covers now.",
      registers: [r],
      async collect() {
        this.set(await policy.nodesInMaintenance());
      },
    });
    new Gauge({
      name: "hb_maintenance_windows",
      help: "Maintenance windows added with hb maint and kept, by state.",
      labelNames: ["state"],
      registers: [r],
      collect() {
        this.reset();
        for (const [state, n] of Object.entries(policy.windows())) this.set({ state }, n);
      },
    });
  }

  private notifyMetrics(notify: NotifyStatsSource): void {
    const r = this.registry;
    new Gauge({
      name: "hb_notify_queue_depth",
      help: "Notices waiting for an output, or in its deliveries not yet ended.",
      labelNames: ["output"],
      registers: [r],
      collect() {
        this.reset();
        for (const lane of notify.stats()) this.set({ output: lane.output }, lane.queued);
      },
    });
    new Counter({
      name: "hb_notify_deliveries_total",
      help: "Notices by output and result: delivered, retried (a failed attempt to be tried again), failed (given up).",
      labelNames: ["output", "result"],
      registers: [r],
      collect() {
        this.reset();
        for (const lane of notify.stats())
          for (const result of ["delivered", "retried", "failed"] as const)
            this.inc({ output: lane.output, result }, lane[result]);
      },
    });
    new Counter({
      name: "hb_notify_dropped_total",
      help: "Notices dropped because an output's queue was full (the oldest go first).",
      labelNames: ["output"],
      registers: [r],
      collect() {
        this.reset();
        for (const lane of notify.stats()) this.inc({ output: lane.output }, lane.dropped);
      },
    });
    const duration = new Histogram({
      name: "hb_notify_delivery_seconds",
      help: "How long one delivery (a hook run, a request) took, by output.",
      labelNames: ["output"],
      buckets: DELIVERY_BUCKETS,
      registers: [r],
    });
    notify.onDelivery = (output, seconds) => duration.observe({ output }, seconds);
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** The exposition text, a piece at a time: the process-wide metrics, then each per-node series. */
  async body(perNode: boolean): Promise<Iterator<string, void>> {
    const global = await this.registry.metrics();
    return this.pieces(global, perNode);
  }

  private *pieces(global: string, perNode: boolean): Generator<string, void> {
    yield global;
    if (!perNode) return;
    // A series' samples must be contiguous, so the nodes are walked once per series.
    yield "# HELP hb_node_up 1 when the node is up or late, else 0.\n# TYPE hb_node_up gauge\n";
    // Node ids are [A-Za-z0-9._-]: nothing to escape in label values.
    yield* this.perNode(
      (id, state) => `hb_node_up{node="${id}"} ${state === "up" || state === "late" ? 1 : 0}\n`,
    );
    yield "# HELP hb_node_down 1 when the node is down (silent past its timeout), else 0.\n# TYPE hb_node_down gauge\n";
    yield* this.perNode((id, state) => `hb_node_down{node="${id}"} ${state === "down" ? 1 : 0}\n`);
    yield "# HELP hb_node_last_seen_seconds When the node's last heartbeat arrived (epoch seconds).\n# TYPE hb_node_last_seen_seconds gauge\n";
    yield* this.perNode((id, _, lastSeen) =>
      lastSeen === null ? "" : `hb_node_last_seen_seconds{node="${id}"} ${lastSeen / 1000}\n`,
    );
  }

  private *perNode(
    line: (id: string, state: StateName, lastSeen: number | null) => string,
  ): Generator<string, void> {
    for (let slot = 0; slot >= 0;) {
      let piece = "";
      slot = this.source.forEachNode(slot, NODES_PER_PIECE, (id, state, lastSeen) => {
        piece += line(id, state, lastSeen);
      });
      yield piece;
    }
  }
}

const startTimeSeconds = (() => {
  try {
    // Field 22 of /proc/self/stat is the start time in clock ticks since boot.
    const stat = readFileSync("/proc/self/stat", "utf8");
    const ticks = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19]);
    const uptime = Number(readFileSync("/proc/uptime", "utf8").split(" ")[0]);
    return Math.round(Date.now() / 1000 - uptime + ticks / 100);
  } catch {
    return Math.round(Date.now() / 1000 - process.uptime());
  }
})();
