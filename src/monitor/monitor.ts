// Wires socket -> admission (decode, authenticate) -> detector -> events, and owns the one deadline
// timer. The arrival time of each datagram is read once, when it arrives. The timer is armed at
// the detector's earliest deadline; when it fires, judgement waits one turn of the event loop so
// that datagrams already queued are read first, and a timer that fires far too late means the
// monitor itself was frozen: that is reported as `monitor.stalled`, never blamed on the nodes.

import { join } from "node:path";
import { WallTime, type Clock, type Timer } from "../clock.js";
import { diffSteps } from "../config/diff.js";
import type { LoadedConfig } from "../config/load.js";
import type { Config } from "../config/types.js";
import type { Emit, StateName } from "../events.js";
import { Throttle } from "../throttle.js";
import { VERSION } from "../version.js";
import { formatHostPort, type HostPort } from "../wire/address.js";
import { emptyDatagram } from "../wire/protocol.js";
import { READS_PER_TURN, type DatagramSocket, type RemoteInfo } from "../wire/udp.js";
import { finish, finishInTurns, type Sliced } from "../slices.js";
import { Admission, admissionRules, type AdmissionRules, type RejectReason } from "./admit.js";
import { Detector } from "./detector.js";
import type { Staged } from "./reconfigure.js";
import { LineBudget } from "./line-budget.js";
import { Rejections } from "./rejections.js";
import { MARKS_FILE, loadMarks, saveMarks } from "./replay-marks.js";
import { NodeOrder } from "./node-order.js";
import {
  ALL_NODES,
  selectNodes,
  statusJson,
  type NodeQuery,
  type ReloadState,
  type ReloadStatus,
  type StatusDocument,
} from "./status.js";
import { udpDrops } from "./udp-drops.js";
import { zeroCounts as noStates, type Counts } from "./views.js";

/** How often replay marks are saved while heartbeats arrive (a crash loses at most this much). */
export const MARKS_SAVE_MS = 5000;

/** Nodes counted between two chances to give the event loop a turn (status, metrics). */
const COUNT_SLICE = 65_536;

/** A deadline timer later than this (or than half the smallest `late`) means the monitor stalled. */
export const MAX_STALL_THRESHOLD_MS = 1000;

/** A reload made ready while the current config goes on: swapped in at once. */
interface PreparedReload {
  readonly changes: string[];
  readonly rules: AdmissionRules;
  readonly staged: Staged;
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
  private readonly wall: WallTime;
  /** Display order of the nodes, kept between status requests. */
  private readonly order: NodeOrder;
  private readonly clock: Clock;
  private readonly emit: Emit;
  private readonly scratch = emptyDatagram();
  private timer: Timer | undefined;
  private armedAt = Number.POSITIVE_INFINITY;
  private judging = false;
  private readonly startedWall: number;
  private bound: HostPort | undefined;
  /** The kernel's drop count for our socket when last read, and when: a rise means overload. */
  private dropsSeen: number | null = null;
  private dropsReadAt = Number.NEGATIVE_INFINITY;
  private overloaded = false;
  /** When the current overload episode began: every deadline since is held while it lasts. */
  private overloadFrom = Number.NEGATIVE_INFINITY;
  private received = 0;
  private accepted = 0;
  private readonly rejections: Rejections;
  /** Journal lines about unlisted nodes are budgeted; listed nodes always get theirs. */
  private readonly lines: LineBudget;
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
    this.rejections = new Rejections(this.clock, this.emit, () => this.config.defaults.intervalMs);
    this.marksFile =
      deps.stateDir !== undefined && this.config.auth !== "off" ? join(deps.stateDir, MARKS_FILE) : undefined;
    this.saveMarks = new Throttle(this.clock, MARKS_SAVE_MS, () => void this.writeMarks());
    this.wall = new WallTime(this.clock);
    this.lines = new LineBudget(this.clock, this.emit, (node) => this.config.nodes.has(node));
    this.detector = new Detector(this.config, this.clock.monoMs(), {
      emit: this.lines.filter,
      toWall: (mono) => this.wall.of(mono),
    });
    this.order = new NodeOrder(this.detector.reader());
  }

  /** Binds the UDP socket; datagrams are handled from then on. */
  async listen(): Promise<HostPort> {
    if (this.marksFile !== undefined) this.detector.restoreMarks(await loadMarks(this.marksFile));
    this.deps.socket.onMessage((msg, from) => this.handle(msg, from));
    this.bound = await this.deps.socket.bind(this.config.listen);
    const asked = this.config.receiveBufferBytes;
    this.receiveBuffer = { asked, granted: this.deps.socket.setReceiveBufferSize(asked) };
    this.dropsSeen = this.kernelDrops();
    this.dropsReadAt = this.clock.monoMs();
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
    const verdict = this.detector.observe(dg, now, from, dg.tagOffset !== 0 && this.config.auth !== "off");
    if (verdict !== null) return this.reject(verdict);
    this.accepted++;
    if (now + this.detector.minLateMs < this.armedAt) this.arm();
    if (this.marksFile !== undefined) this.saveMarks.trigger();
  }

  private reject(reason: RejectReason): void {
    this.rejections.count(reason);
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
    // Read the datagrams that queued up while we were away, then judge. Node reads at most 32
    // datagrams from a socket per turn of the loop: turn until a turn reads fewer (the socket is
    // empty), for at most the stall threshold; a backlog that outlasts it is our own overload.
    this.judging = true;
    const drainUntil = now + this.stallThresholdMs();
    let readBefore = this.received;
    const judge = (): void => {
      const read = this.received - readBefore;
      readBefore = this.received;
      const judgeAt = this.clock.monoMs();
      if (read >= READS_PER_TURN && judgeAt < drainUntil) return this.clock.setImmediate(judge);
      this.judging = false;
      this.checkOverload(judgeAt, read >= READS_PER_TURN);
      this.detector.advance(judgeAt);
      this.armedAt = Number.POSITIVE_INFINITY;
      this.arm();
    };
    this.clock.setImmediate(judge);
  }

  /**
   * Datagrams the kernel dropped since the last look (the socket's receive buffer overflowed)
   * may have been anyone's heartbeat: silence since then is the monitor's own overload, like a
   * stall. Judgement of deadlines from then on is held, and that is said once per episode.
   */
  private checkOverload(nowMs: number, backlog: boolean): void {
    const drops = this.kernelDrops() ?? this.dropsSeen;
    const dropped = drops !== null && this.dropsSeen !== null && drops > this.dropsSeen;
    if (dropped || backlog) {
      if (!this.overloaded) this.overloadFrom = this.dropsReadAt;
      // Held from the episode's start, not from the last look: under lasting drops a node's
      // datagrams may keep being lost, and two intervals after any one look prove nothing.
      const holdMs = this.stallHoldMs();
      this.detector.hold(this.overloadFrom, nowMs, holdMs);
      if (!this.overloaded) {
        this.overloaded = true;
        this.emit("monitor.overloaded", {
          cause: dropped ? "kernel_drops" : "backlog",
          kernelDrops: dropped ? drops - this.dropsSeen! : 0,
          holdMs,
        });
      }
    } else {
      this.overloaded = false;
    }
    this.dropsSeen = drops;
    this.dropsReadAt = nowMs;
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

  /**
   * `hb forget NODE`: clears the node's replay mark and history (an operator who knows a forged
   * or stale datagram holds it back). False when the monitor knows nothing of it.
   */
  forget(node: string): boolean {
    const now = this.clock.monoMs();
    if (!this.detector.forget(node, now)) return false;
    this.emit("node.forgotten", { node, silentMs: null, by: "operator" });
    this.armedAt = Number.POSITIVE_INFINITY;
    this.arm();
    if (this.marksFile !== undefined) void this.writeMarks();
    return true;
  }

  /** Swaps in a new config at once; returns the changes (also reported as an event). */
  reload(loaded: LoadedConfig): string[] {
    return this.commitReload(finish(this.prepareReload(loaded)));
  }

  /**
   * reload(), with the comparing and staging done a few milliseconds per turn of the event loop
   * (`pause` awaits the next turn): meanwhile datagrams are received and judged by the current
   * config, and the swap itself is one short step. Reloads must not overlap.
   */
  async reloadInTurns(loaded: LoadedConfig, pause: () => Promise<void>): Promise<string[]> {
    return this.commitReload(await finishInTurns(this.prepareReload(loaded), pause));
  }

  private *prepareReload(loaded: LoadedConfig): Sliced<PreparedReload> {
    const changes = yield* diffSteps(this.config, loaded.config);
    const rules = yield* admissionRules(loaded);
    const staged = yield* this.detector.stage(loaded.config);
    return { changes, rules, staged };
  }

  private commitReload({ changes, rules, staged }: PreparedReload): string[] {
    this.config = staged.config;
    this.admission.configure(rules);
    const now = this.clock.monoMs();
    this.detector.commit(staged, now);
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
    return this.statusAt(now, options.nodes);
  }

  /** GET /status: the document with the nodes `query` selects, as JSON a piece at a time. */
  *statusBody(query: NodeQuery = ALL_NODES): Generator<string, void> {
    const now = this.clock.monoMs();
    const reader = this.detector.reader();
    const counts = noStates();
    for (let slot = 0; slot >= 0; yield "") slot = reader.countFrom(counts, slot, COUNT_SLICE, now);
    yield* statusJson(this.statusAt(now, false, counts), selectNodes(reader, this.order, query, now));
  }

  /** Counts `COUNT_SLICE` slots from `fromSlot` on into `counts`; returns where to go on, or -1. */
  countSlice(counts: Counts, fromSlot: number): number {
    return this.detector.reader().countFrom(counts, fromSlot, COUNT_SLICE, this.clock.monoMs());
  }

  /** What `hb reload` waits on: no node is counted or listed. */
  reloadStatus(): ReloadStatus {
    return { version: VERSION, pid: this.deps.pid ?? 0, reload: this.reloadState };
  }

  private statusAt(now: number, nodes: boolean, counts = this.detector.counts(now)): StatusDocument {
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
      counts,
      datagrams: { received: this.received, accepted: this.accepted, rejected: { ...this.rejections.total } },
      nodes: nodes ? this.detector.view(now) : [],
    };
  }

  datagramCounters(): { received: number; accepted: number; rejected: Readonly<Record<string, number>> } {
    return { received: this.received, accepted: this.accepted, rejected: this.rejections.total };
  }

  takeTimerLatenessMs(): number {
    const max = this.maxTimerLatenessMs;
    this.maxTimerLatenessMs = 0;
    return max;
  }

  /**
   * Visits the nodes in slots from `fromSlot` on, at most `max` of them: each one's id, state and
   * last arrival (epoch ms, null if never heard). Returns the slot to go on from, or -1 at the end.
   */
  forEachNode(
    fromSlot: number,
    max: number,
    visit: (id: string, state: StateName, lastSeenWallMs: number | null) => void,
  ): number {
    const reader = this.detector.reader();
    const now = this.clock.monoMs();
    const end = reader.slots;
    let slot = fromSlot;
    for (let visited = 0; slot < end && visited < max; slot++) {
      const id = reader.idAt(slot);
      if (id === undefined) continue;
      const lastSeen = reader.lastSeen(slot);
      visit(id, reader.state(slot, now), lastSeen === null ? null : this.wall.of(lastSeen));
      visited++;
    }
    return slot < end ? slot : -1;
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
    this.saveMarks.cancel();
    await this.writeMarks();
    this.rejections.flush();
    this.lines.flush();
    this.timer = undefined;
    this.armedAt = Number.POSITIVE_INFINITY;
    await this.deps.socket.close();
  }
}
