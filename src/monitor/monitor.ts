// Wires socket -> admission (decode, authenticate) -> detector -> events, and owns the one deadline
// timer. The arrival time of each datagram is read once, when it arrives. The timer is armed at
// the detector's earliest deadline; when it fires, judgement waits one turn of the event loop so
// that datagrams already queued are read first, and a timer that fires far too late means the
// monitor itself was frozen: that is reported as `monitor.stalled`, never blamed on the nodes.

import { join } from "node:path";
import type { Clock, Timer } from "../clock.js";
import { toWallMs } from "../clock.js";
import { diffConfigs } from "../config/diff.js";
import type { LoadedConfig } from "../config/load.js";
import type { Config } from "../config/types.js";
import type { Emit, StateName } from "../events.js";
import { Throttle } from "../throttle.js";
import { VERSION } from "../version.js";
import { formatHostPort, type HostPort } from "../wire/address.js";
import { emptyDatagram } from "../wire/protocol.js";
import type { DatagramSocket, RemoteInfo } from "../wire/udp.js";
import { Admission, REJECT_REASONS, type RejectReason } from "./admit.js";
import { Detector } from "./detector.js";
import { MARKS_FILE, loadMarks, saveMarks } from "./replay-marks.js";
import type { ReloadState, StatusDocument } from "./status.js";
import { udpDrops } from "./udp-drops.js";
import type { Counts } from "./views.js";

/** How often replay marks are saved while heartbeats arrive (a crash loses at most this much). */
export const MARKS_SAVE_MS = 5000;

/** A deadline timer later than this (or than half the smallest `late`) means the monitor stalled. */
export const MAX_STALL_THRESHOLD_MS = 1000;

function zeroCounts(): Record<RejectReason, number> {
  return Object.fromEntries(REJECT_REASONS.map((r) => [r, 0])) as Record<RejectReason, number>;
}

export interface MonitorDeps {
  clock: Clock;
  emit: Emit;
  socket: DatagramSocket;
  pid?: number;
  /** Where replay marks are kept across restarts (only used when authentication is on). */
  stateDir?: string | undefined;
  /** Reads the kernel's drop counter for a local UDP port (default: /proc/net/udp). */
  kernelDrops?: (port: number) => number | null;
}

export class Monitor {
  private config: Config;
  private readonly admission: Admission;
  private readonly detector: Detector;
  private readonly clock: Clock;
  private readonly emit: Emit;
  private readonly scratch = emptyDatagram();
  private timer: Timer | undefined;
  private armedAt = Number.POSITIVE_INFINITY;
  private judging = false;
  private readonly startedWall: number;
  private bound: HostPort | undefined;
  private received = 0;
  private accepted = 0;
  private readonly rejected = zeroCounts();
  private pendingRejects = zeroCounts();
  private pendingRejectTotal = 0;
  /** At most one `datagrams.rejected` per interval, however many datagrams are refused. */
  private readonly rejectSummary: Throttle;
  private reloadState: ReloadState = { generation: 0, ok: null, at: null, changes: [], errors: [] };
  private receiveBuffer = { asked: 0, granted: 0 };
  private maxTimerLatenessMs = 0;
  private readonly marksFile: string | undefined;
  /** Replay marks are written at most this often while datagrams are accepted, and at stop. */
  private readonly saveMarks: Throttle;
  private saving: Promise<void> = Promise.resolve();

  constructor(
    loaded: LoadedConfig,
    private readonly deps: MonitorDeps,
  ) {
    this.config = loaded.config;
    this.admission = new Admission(loaded);
    this.clock = deps.clock;
    this.emit = deps.emit;
    this.startedWall = this.clock.wallMs();
    this.rejectSummary = new Throttle(
      this.clock,
      () => this.config.defaults.intervalMs,
      () => this.reportRejects(),
    );
    this.marksFile =
      deps.stateDir !== undefined && this.config.auth !== "off" ? join(deps.stateDir, MARKS_FILE) : undefined;
    this.saveMarks = new Throttle(this.clock, MARKS_SAVE_MS, () => void this.writeMarks());
    this.detector = new Detector(this.config, this.clock.monoMs(), {
      emit: this.emit,
      toWall: (mono) => toWallMs(this.clock, mono),
    });
  }

  /** Binds the UDP socket; datagrams are handled from then on. */
  async listen(): Promise<HostPort> {
    if (this.marksFile !== undefined) this.detector.restoreMarks(await loadMarks(this.marksFile));
    this.deps.socket.onMessage((msg, from) => this.handle(msg, from));
    this.bound = await this.deps.socket.bind(this.config.listen);
    const asked = this.config.receiveBufferBytes;
    this.receiveBuffer = { asked, granted: this.deps.socket.setReceiveBufferSize(asked) };
    this.arm();
    return this.bound;
  }

  get listenAddress(): string {
    return this.bound === undefined ? "" : formatHostPort(this.bound);
  }

  get nodeCount(): number {
    return this.detector.size;
  }

  /** The hot path: one datagram, read at its arrival. */
  handle(msg: Buffer, from: RemoteInfo): void {
    const now = this.clock.monoMs();
    this.received++;
    const dg = this.scratch;
    const reason = this.admission.admit(msg, dg);
    if (reason !== null) return this.reject(reason);
    const verdict = this.detector.observe(dg, now, from);
    if (verdict !== null) return this.reject(verdict);
    this.accepted++;
    if (now + this.detector.minLateMs < this.armedAt) this.arm();
    if (this.marksFile !== undefined) this.saveMarks.trigger();
  }

  private reject(reason: RejectReason): void {
    this.rejected[reason]++;
    this.pendingRejects[reason]++;
    this.pendingRejectTotal++;
    this.rejectSummary.trigger();
  }

  private reportRejects(): void {
    const counts: Record<string, number> = {};
    for (const reason of REJECT_REASONS)
      if (this.pendingRejects[reason] > 0) counts[reason] = this.pendingRejects[reason];
    this.emit("datagrams.rejected", {
      counts,
      total: this.pendingRejectTotal,
      windowMs: this.config.defaults.intervalMs,
    });
    this.pendingRejects = zeroCounts();
    this.pendingRejectTotal = 0;
  }

  /** (Re-)arms the one deadline timer at the detector's earliest deadline. */
  private arm(): void {
    const next = this.detector.nextDeadline() ?? Number.POSITIVE_INFINITY;
    if (next === this.armedAt || this.judging) return;
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.armedAt = next;
    if (next === Number.POSITIVE_INFINITY) return;
    const delay = Math.max(0, Math.ceil(next - this.clock.monoMs()));
    this.timer = this.clock.setTimeout(() => this.onTimer(), delay);
  }

  private onTimer(): void {
    this.timer = undefined;
    const scheduled = this.armedAt;
    const now = this.clock.monoMs();
    // Timers may fire a little early by the monotonic clock; never judge before the deadline.
    if (now < scheduled) {
      this.armedAt = Number.POSITIVE_INFINITY;
      return this.arm();
    }
    const lateness = now - scheduled;
    if (lateness > this.maxTimerLatenessMs) this.maxTimerLatenessMs = lateness;
    if (lateness > this.stallThresholdMs()) {
      const holdMs = this.stallHoldMs();
      this.detector.hold(scheduled, now, holdMs);
      this.emit("monitor.stalled", { stalledMs: Math.round(lateness), holdMs });
    }
    // Let the poll phase read the datagrams that queued up while we were away, then judge.
    this.judging = true;
    this.clock.setImmediate(() => {
      this.judging = false;
      this.detector.advance(this.clock.monoMs());
      this.armedAt = Number.POSITIVE_INFINITY;
      this.arm();
    });
  }

  private stallThresholdMs(): number {
    return Math.min(MAX_STALL_THRESHOLD_MS, this.detector.minLateMs / 2);
  }

  /** After a stall every node gets two of its intervals to be heard before anyone is judged. */
  private stallHoldMs(): number {
    let interval = this.config.defaults.intervalMs;
    for (const node of this.config.nodes.values()) interval = Math.max(interval, node.intervalMs);
    return 2 * interval;
  }

  /** Swaps in a new config atomically; returns the changes (also reported as an event). */
  reload(loaded: LoadedConfig): string[] {
    const changes = diffConfigs(this.config, loaded.config);
    this.config = loaded.config;
    this.admission.configure(loaded);
    const now = this.clock.monoMs();
    this.detector.configure(this.config, now);
    this.detector.advance(now);
    this.armedAt = Number.POSITIVE_INFINITY;
    this.arm();
    this.emit("config.reloaded", { changes });
    this.recordReload(true, changes, []);
    return changes;
  }

  /** Problems with how the monitor runs that the operator should fix (after monitor.started). */
  startupWarnings(): [problem: string, detail: string][] {
    const { asked, granted } = this.receiveBuffer;
    if (granted >= asked) return [];
    return [
      [
        "receive_buffer",
        `asked for a ${asked}-byte UDP receive buffer, the kernel granted ${granted}: raise net.core.rmem_max (see systemd/90-hb.conf)`,
      ],
    ];
  }

  warn(problem: string, detail: string): void {
    this.emit("monitor.warning", { problem, detail });
  }

  private recordReload(ok: boolean, changes: string[], errors: string[]): void {
    this.reloadState = {
      generation: this.reloadState.generation + 1,
      ok,
      at: this.clock.wallMs(),
      changes,
      errors,
    };
  }

  /** A reload found an invalid config: the current one stays. */
  rejectReload(errors: string[]): void {
    this.emit("config.rejected", { errors });
    this.recordReload(false, [], errors);
  }

  /** How far past its deadline the judging timer is (0 when on time): a wedged monitor shows here. */
  overdueMs(): number {
    return this.armedAt === Number.POSITIVE_INFINITY ? 0 : Math.max(0, this.clock.monoMs() - this.armedAt);
  }

  counts(): Counts {
    return this.detector.counts(this.clock.monoMs());
  }

  /** The live view; without `nodes` the per-node list is left out (for very large fleets). */
  status(options: { nodes: boolean } = { nodes: true }): StatusDocument {
    const now = this.clock.monoMs();
    return {
      version: VERSION,
      pid: this.deps.pid ?? 0,
      now: this.clock.wallMs(),
      startedAt: this.startedWall,
      listen: this.listenAddress,
      config: this.config.file,
      reload: this.reloadState,
      receiveBuffer: this.receiveBuffer,
      kernelDrops: this.kernelDrops(),
      counts: this.detector.counts(now),
      datagrams: { received: this.received, accepted: this.accepted, rejected: { ...this.rejected } },
      nodes: options.nodes ? this.detector.view(now) : [],
    };
  }

  datagramCounters(): { received: number; accepted: number; rejected: Readonly<Record<string, number>> } {
    return { received: this.received, accepted: this.accepted, rejected: this.rejected };
  }

  takeTimerLatenessMs(): number {
    const max = this.maxTimerLatenessMs;
    this.maxTimerLatenessMs = 0;
    return max;
  }

  forEachNode(visit: (id: string, state: StateName, lastSeenWallMs: number | null) => void): void {
    this.detector.forEachNode(this.clock.monoMs(), (id, state, lastSeen) =>
      visit(id, state, lastSeen === null ? null : toWallMs(this.clock, lastSeen)),
    );
  }

  kernelDrops(): number | null {
    return this.bound === undefined ? null : (this.deps.kernelDrops ?? udpDrops)(this.bound.port);
  }

  private writeMarks(): Promise<void> {
    const file = this.marksFile;
    if (file === undefined) return this.saving;
    this.saving = this.saving.then(() =>
      saveMarks(file, this.detector.marks()).catch((err: unknown) => {
        this.emit("monitor.warning", {
          problem: "replay_marks",
          detail: `cannot save ${file}: ${(err as Error).message}`,
        });
      }),
    );
    return this.saving;
  }

  async close(): Promise<void> {
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.rejectSummary.cancel();
    this.saveMarks.cancel();
    await this.writeMarks();
    if (this.pendingRejectTotal > 0) this.reportRejects();
    this.timer = undefined;
    this.armedAt = Number.POSITIVE_INFINITY;
    await this.deps.socket.close();
  }
}
