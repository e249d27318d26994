// The monitor, put together: socket -> receive (admission) -> detector -> events, with the one
// judging timer (judge.ts), reloads (reload.ts), isolation, the replay marks in the state
// directory, the peers, the answers of status-views.ts and `hb capture` (capture.ts). Each of
// those is its own module; this one builds them, in the order they need each other, and is the
// face the commands use.

import { WallTime, type Clock } from "../clock.js";
import type { LoadedConfig } from "../config/load.js";
import type { Config } from "../config/types.js";
import type { Emit } from "../events.js";
import type { NodeFacts } from "../facts.js";
import type { Counts, StateName } from "../states.js";
import { formatHostPort, type HostPort } from "../wire/address.js";
import type { DatagramSocket, RemoteInfo } from "../wire/udp.js";
import { Admission } from "./admit.js";
import { CAPTURE_LIMITS, Captures, type CaptureLimits } from "./capture.js";
import { Counters, type DatagramCounts } from "./counters.js";
import { Detector } from "./detector.js";
import { Isolation } from "./isolation.js";
import { Judge, stallHoldMs } from "./judge.js";
import { LineBudget } from "./line-budget.js";
import { SameIdCheck, makePeers, unreachablePeers } from "./peering.js";
import type { Peers } from "./peers.js";
import { Receiver } from "./receive.js";
import { Rejections } from "./rejections.js";
import { Reloads } from "./reload.js";
import { ReplayMarks } from "./replay-marks.js";
import { StateDir } from "./state-dir.js";
import type { NodeQuery, ReloadStatus, StatusDocument } from "./status.js";
import { StatusViews } from "./status-views.js";
import type { Annotate } from "./views.js";

export interface MonitorDeps {
  clock: Clock;
  emit: Emit;
  socket: DatagramSocket;
  pid?: number;
  /**
   * The state directory (a path, or its owner when it is shared): what the monitor keeps across
   * restarts. Replay marks are kept there only when datagrams are signed.
   */
  stateDir?: string | StateDir | undefined;
  /** Reads the kernel's drop counter for a local UDP port (default: /proc/net/udp). */
  kernelDrops?: (port: number) => number | null;
  /** Told when this monitor starts or stops speaking (cluster). */
  onSpeaking?: (speaking: boolean) => void;
  /** `hb capture`'s bounds and pace (tests); default CAPTURE_LIMITS. */
  captureLimits?: Partial<CaptureLimits>;
}

export class Monitor {
  private config: Config;
  private readonly detector: Detector;
  private readonly judge: Judge;
  /** The other monitors of the site; null without a cluster. */
  readonly peers: Peers | null;
  private readonly isolation: Isolation | null;
  private readonly counters: Counters;
  private readonly receiver: Receiver;
  private readonly reloads: Reloads;
  private readonly marks: ReplayMarks | null;
  private readonly views: StatusViews;
  private readonly captures: Captures;
  /** Journal lines about unlisted nodes are budgeted; listed nodes always get theirs. */
  private readonly lines: LineBudget;
  private readonly clock: Clock;
  private readonly emit: Emit;
  private bound: HostPort | undefined;
  /** What the policy layer adds to each node's status (set once it is built). */
  annotate: Annotate | null = null;

  constructor(
    loaded: LoadedConfig,
    private readonly deps: MonitorDeps,
  ) {
    this.config = loaded.config;
    const { clock, emit, socket } = deps;
    this.clock = clock;
    this.emit = emit;
    const config = (): Config => this.config;
    const wall = new WallTime(clock);
    const admission = new Admission(loaded);
    this.counters = new Counters(
      new Rejections(clock, emit, () => this.config.defaults.intervalMs),
      deps.kernelDrops,
    );
    this.lines = new LineBudget(clock, emit, (node) => this.config.nodes.has(node));
    const detector = (this.detector = new Detector(this.config, clock.monoMs(), {
      emit: this.lines.filter,
      toWall: (mono) => wall.of(mono),
    }));
    const received = (): number => this.counters.received;
    const holdMs = (): number => stallHoldMs(this.config);
    const beforeJudging = (nowMs: number): void => this.isolation?.check(nowMs);
    this.judge = new Judge({
      clock,
      emit,
      detector,
      received,
      kernelDrops: () => this.counters.kernelDrops(),
      holdMs,
      beforeJudging,
      onStall: (fromMs, toMs) => this.captures.stalled(fromMs, toMs),
    });
    const peers = (this.peers = makePeers(loaded, {
      clock,
      wall,
      emit,
      socket,
      received,
      beforeJudging,
      onSpeaking: deps.onSpeaking,
    }));
    this.isolation = peers === null ? null : new Isolation({ emit, detector, peers, config, holdMs });
    const stateDir =
      typeof deps.stateDir === "string" ? new StateDir(deps.stateDir) : (deps.stateDir ?? null);
    this.marks = ReplayMarks.keep(stateDir, this.config, { clock, emit, config, nodes: detector, peers });
    this.receiver = new Receiver({
      config,
      clock,
      admission,
      detector,
      judge: this.judge,
      counters: this.counters,
      peers,
      sameId: peers === null ? null : new SameIdCheck(peers, config, (p, d) => this.warn(p, d)),
      marks: this.marks,
    });
    const nodes = detector.reader();
    this.captures = new Captures(
      {
        clock,
        emit,
        config,
        slotOf: (dg) => detector.slotOf(dg),
        idAt: (slot) => nodes.idAt(slot),
        attach: (recorder) => (this.receiver.capture = recorder),
        heldSince: () => this.receiver.held?.arrivals[0] ?? null,
      },
      { ...CAPTURE_LIMITS, ...deps.captureLimits },
    );
    this.reloads = new Reloads({
      clock,
      emit,
      config,
      setConfig: (next) => (this.config = next),
      admission,
      detector,
      judge: this.judge,
      intake: this.receiver,
      forget: (node) => this.forget(node),
    });
    this.views = new StatusViews({
      clock,
      wall,
      config,
      detector,
      peers,
      counters: this.counters,
      reload: () => this.reloads.state,
      listenAddress: () => this.listenAddress,
      pid: deps.pid ?? 0,
      annotate: () => this.annotate,
    });
  }

  /** Loads what the state directory keeps, then binds the UDP socket; datagrams are handled from then on. */
  async listen(): Promise<HostPort> {
    // Before the first datagram is read and anyone judged or paged.
    await this.marks?.load();
    const { socket } = this.deps;
    socket.onMessage((msg, from) => this.receiver.handle(msg, from));
    this.bound = await socket.bind(this.config.listen);
    const asked = this.config.receiveBufferBytes;
    this.counters.bound(this.bound.port, { asked, granted: socket.setReceiveBufferSize(asked) });
    this.judge.start();
    this.peers?.start();
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
    this.receiver.handle(msg, from);
  }

  /**
   * `hb forget NODE`: clears the node's replay mark and history (an operator who knows a forged
   * or stale datagram holds it back). False when the monitor knows nothing of it.
   */
  forget(node: string): boolean {
    const held = this.receiver.held;
    if (held !== null) {
      // Done once the config being applied is whole, in its place among the held datagrams.
      held.forget(node);
      return this.detector.knows(node);
    }
    if (!this.detector.forget(node, this.clock.monoMs())) return false;
    this.emit("node.forgotten", { node, silentMs: null, by: "operator" });
    this.judge.rearm();
    void this.marks?.save();
    return true;
  }

  /**
   * POST /capture (`hb capture`): records the arrival of every datagram the detector accepts, as
   * a trace streamed to the client; or why not (one capture at a time).
   */
  capture(_arg: string, body: unknown): ReturnType<Captures["start"]> {
    return this.captures.start(body);
  }

  /** Rows written by every `hb capture` since start. */
  captureRows(): number {
    return this.captures.rows;
  }

  /** Ends a capture running (the monitor stops): its trace is finished, as far as its client takes it. */
  endCapture(): Promise<void> {
    return this.captures.close();
  }

  /** Swaps in a new config at once; returns the changes (also reported as an event). */
  reload(loaded: LoadedConfig): string[] {
    return this.reloads.reload(loaded);
  }

  /** reload(), a slice per turn of the event loop: see Reloads.reloadInTurns. */
  reloadInTurns(loaded: LoadedConfig, pause: () => Promise<void>, sliceMs?: number): Promise<string[]> {
    return this.reloads.reloadInTurns(loaded, pause, sliceMs);
  }

  /** A rest between two slices of long work on this thread: the socket is emptied. */
  emptySocket(turn: () => Promise<void>): Promise<void> {
    return this.reloads.emptySocket(turn);
  }

  /** A reload found an invalid config: the current one stays. */
  rejectReload(errors: string[]): void {
    this.reloads.reject(errors);
  }

  /** Problems with how the monitor runs that the operator should fix (after monitor.started). */
  startupWarnings(): [problem: string, detail: string][] {
    const warnings: [problem: string, detail: string][] = [];
    const buffer = this.counters.receiveBufferProblem();
    if (buffer !== null) warnings.push(["receive_buffer", buffer]);
    for (const detail of unreachablePeers(this.config, this.peers?.self, this.listenAddress))
      warnings.push(["cluster", detail]);
    return warnings;
  }

  warn(problem: string, detail: string): void {
    this.emit("monitor.warning", { problem, detail });
  }

  /** How far past its deadline the judging timer is (0 when on time): a wedged monitor shows here. */
  overdueMs(): number {
    return this.judge.overdueMs();
  }

  takeTimerLatenessMs(): number {
    return this.judge.takeTimerLatenessMs();
  }

  counts(): Counts {
    return this.views.counts();
  }

  /** The live view; without `nodes` the per-node list is left out (for very large fleets). */
  status(options: { nodes: boolean } = { nodes: true }): StatusDocument {
    return this.views.status(options.nodes);
  }

  /** GET /status: the document with the nodes `query` selects, as JSON a piece at a time. */
  statusBody(query?: NodeQuery): Generator<string, void> {
    return this.views.statusBody(query);
  }

  /** Counts a slice of slots from `fromSlot` on into `counts`; returns where to go on, or -1. */
  countSlice(counts: Counts, fromSlot: number): number {
    return this.views.countSlice(counts, fromSlot);
  }

  /** What `hb reload` waits on: no node is counted or listed. */
  reloadStatus(): ReloadStatus {
    return this.views.reloadStatus();
  }

  datagramCounters(): DatagramCounts {
    return this.counters.datagrams();
  }

  /** Visits a slice of the nodes: see StatusViews.forEachNode. */
  forEachNode(
    fromSlot: number,
    max: number,
    visit: (id: string, state: StateName, lastSeenWallMs: number | null) => void,
  ): number {
    return this.views.forEachNode(fromSlot, max, visit);
  }

  /** What a notice about `node` says of it, read now; null when the node is not tracked. */
  facts(node: string): NodeFacts | null {
    return this.views.facts(node);
  }

  /** The node's state now; null when it is not tracked. */
  stateOf(node: string): StateName | null {
    return this.views.stateOf(node);
  }

  /** Whether `node` is down now (an alert about it may still fire). */
  isDown(node: string): boolean {
    return this.views.isDown(node);
  }

  /** The other monitors and who speaks (metrics); null without a cluster. */
  cluster(): { speaking: boolean; peers: readonly { peer: string; state: StateName }[] } | null {
    return this.peers?.view() ?? null;
  }

  kernelDrops(): number | null {
    return this.counters.kernelDrops();
  }

  async close(): Promise<void> {
    await this.captures.close();
    this.judge.stop();
    await this.peers?.stop();
    await this.marks?.close();
    this.counters.rejections.flush();
    this.lines.flush();
    await this.deps.socket.close();
  }
}
