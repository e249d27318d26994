// Wires socket -> admission (decode, authenticate) -> detector -> events; when to judge is the
// Judge's (judge.ts). The arrival time of each datagram is read once, when it arrives. Reloads
// are made ready and applied a slice at a time (reload.ts), and the status document, replay
// marks and counters are served from here.

import { join } from "node:path";
import { WallTime, type Clock } from "../clock.js";
import type { LoadedConfig } from "../config/load.js";
import type { Config } from "../config/types.js";
import type { Emit, StateName } from "../events.js";
import { Throttle } from "../throttle.js";
import { VERSION } from "../version.js";
import { formatHostPort, type HostPort } from "../wire/address.js";
import { emptyDatagram, nodeIdOf, type Datagram } from "../wire/protocol.js";
import { familyOf, untilSocketEmpty, type DatagramSocket, type RemoteInfo } from "../wire/udp.js";
import { SLICE_MS, finish, finishInTurns } from "../slices.js";
import { HbError } from "../errors.js";
import { Admission, selfOf, type RejectReason } from "./admit.js";
import { Peers } from "./peers.js";
import { Detector } from "./detector.js";
import { Judge } from "./judge.js";
import { HeldBack, prepareReload } from "./reload.js";
import { LineBudget } from "./line-budget.js";
import { Rejections } from "./rejections.js";
import { MARKS_FILE, loadMarks, saveMarks, type ReplayMark } from "./replay-marks.js";
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
import { zeroCounts as noStates, type Counts, type NoticeFacts } from "./views.js";

/** How often replay marks are saved while heartbeats arrive (a crash loses at most this much). */
export const MARKS_SAVE_MS = 5000;

/** A monitor that hears no peer is cut off when it hears at most this share of its nodes. */
const ISOLATED_HEARD_SHARE = 0.05;
/** How often, at most, the nodes are walked to see whether this monitor is cut off. */
const ISOLATION_CHECK_MS = 50;

/** Nodes counted between two chances to give the event loop a turn (status, metrics). */
const COUNT_SLICE = 65_536;

export interface MonitorDeps {
  clock: Clock;
  emit: Emit;
  socket: DatagramSocket;
  pid?: number;
  /** Where replay marks are kept across restarts (only used when authentication is on). */
  stateDir?: string | undefined;
  /** Reads the kernel's drop counter for a local UDP port (default: /proc/net/udp). */
  kernelDrops?: (port: number) => number | null;
  /** Told when this monitor starts or stops speaking (cluster); `reason` is the event that did it. */
  onSpeaking?: (speaking: boolean) => void;
}

export class Monitor {
  private config: Config;
  private readonly admission: Admission;
  private readonly detector: Detector;
  private readonly judge: Judge;
  private readonly wall: WallTime;
  /** Display order of the nodes, kept between status requests. */
  private readonly order: NodeOrder;
  /** The other monitors of the site; null without a cluster. */
  readonly peers: Peers | null;
  /**
   * While this monitor is cut off (see checkIsolation): deadlines from here on are held, from a
   * peer timeout before it found out. Null when it is not.
   */
  private isolatedFromMs: number | null = null;
  private isolationCheckedAt = Number.NEGATIVE_INFINITY;
  private sameIdWarned = false;
  private readonly clock: Clock;
  private readonly emit: Emit;
  private readonly scratch = emptyDatagram();
  /** While a reload's config is applied: what arrives, held until it is whole. */
  private held: HeldBack | null = null;
  private readonly startedWall: number;
  private bound: HostPort | undefined;
  private received = 0;
  private accepted = 0;
  private readonly rejections: Rejections;
  /** Journal lines about unlisted nodes are budgeted; listed nodes always get theirs. */
  private readonly lines: LineBudget;
  private reloadState: ReloadState = { generation: 0, ok: null, at: null, changes: [], errors: [] };
  private receiveBuffer = { asked: 0, granted: 0 };
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
    // Peer heartbeats are always signed: with a cluster, marks are kept whatever `auth` says.
    const signed = this.config.auth !== "off" || this.config.cluster !== null;
    this.marksFile = deps.stateDir !== undefined && signed ? join(deps.stateDir, MARKS_FILE) : undefined;
    this.saveMarks = new Throttle(this.clock, MARKS_SAVE_MS, () => void this.writeMarks());
    this.wall = new WallTime(this.clock);
    this.lines = new LineBudget(this.clock, this.emit, (node) => this.config.nodes.has(node));
    this.detector = new Detector(this.config, this.clock.monoMs(), {
      emit: this.lines.filter,
      toWall: (mono) => this.wall.of(mono),
    });
    this.judge = new Judge({
      clock: this.clock,
      emit: this.emit,
      detector: this.detector,
      received: () => this.received,
      kernelDrops: () => this.kernelDrops(),
      holdMs: () => this.stallHoldMs(),
      beforeJudging: (nowMs) => this.checkIsolation(nowMs),
    });
    this.order = new NodeOrder(this.detector.reader());
    this.peers = this.makePeers(loaded);
  }

  private makePeers(loaded: LoadedConfig): Peers | null {
    const cluster = this.config.cluster;
    if (cluster === null) return null;
    const self = selfOf(loaded);
    if (self === null || !cluster.monitors.some((m) => m.id === self))
      throw new HbError(
        "HB_ERR_CONFIG",
        `${this.config.file}: this monitor's id ${JSON.stringify(self)} is not one of cluster.monitors (set cluster.self, --id or HB_MONITOR_ID)`,
      );
    const key = loaded.keyring.get(cluster.key);
    if (key === undefined)
      throw new HbError("HB_ERR_CONFIG", `${this.config.file}: cluster.key ${cluster.key} is not loaded`);
    const peers: Peers = new Peers(cluster, self, this.config, {
      clock: this.clock,
      wall: this.wall,
      emit: this.emit,
      socket: this.deps.socket,
      key,
      upstreamKey: cluster.upstream?.key == null ? undefined : loaded.keyring.get(cluster.upstream.key),
      received: () => this.received,
      beforeJudging: (nowMs) => this.checkIsolation(nowMs),
      onSpeakerChange: () => {
        if (!peers.speakingChanged()) return;
        const speaking = peers.speaking();
        this.emit("monitor.speaking", { speaking, speaker: peers.speaker(), reason: "peers" });
        this.deps.onSpeaking?.(speaking);
      },
    });
    return peers;
  }

  /** Binds the UDP socket; datagrams are handled from then on. */
  async listen(): Promise<HostPort> {
    if (this.marksFile !== undefined) {
      // One file for nodes and peers (their ids never meet): a heartbeat captured from a monitor
      // is no more replayable after a restart than a node's.
      const marks = await loadMarks(this.marksFile);
      const peerMarks = new Map<string, ReplayMark>();
      for (const id of this.peers?.ids ?? []) {
        const mark = marks.get(id);
        if (mark === undefined) continue;
        peerMarks.set(id, mark);
        marks.delete(id);
      }
      if (this.config.auth !== "off") this.detector.restoreMarks(marks);
      this.peers?.restoreMarks(peerMarks);
    }
    this.deps.socket.onMessage((msg, from) => this.handle(msg, from));
    this.bound = await this.deps.socket.bind(this.config.listen);
    const asked = this.config.receiveBufferBytes;
    this.receiveBuffer = { asked, granted: this.deps.socket.setReceiveBufferSize(asked) };
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
    const now = this.clock.monoMs();
    this.received++;
    if (this.held !== null) return this.held.datagram(msg, from, now);
    this.process(msg, from, now);
  }

  private process(msg: Buffer, from: RemoteInfo, now: number): void {
    const dg = this.scratch;
    const reason = this.admission.admit(msg, dg);
    if (reason !== null) {
      if (reason === "key_not_allowed") this.checkSameId(dg);
      return this.reject(reason);
    }
    if (this.peers !== null && this.admission.fromPeer(dg)) {
      const refused = this.peers.observe(dg, now, from);
      if (refused !== null) return this.reject(refused);
      if (this.marksFile !== undefined) this.saveMarks.trigger();
      return;
    }
    const verdict = this.detector.observe(dg, now, from, dg.tagOffset !== 0 && this.config.auth !== "off");
    if (verdict !== null) return this.reject(verdict);
    this.accepted++;
    this.judge.heard(now);
    if (this.marksFile !== undefined) this.saveMarks.trigger();
  }

  /**
   * A heartbeat signed with the cluster's key under this monitor's own id comes from another
   * monitor configured with the same id (a shared `self:`, one host name): the two cannot see
   * each other. Refused like any misuse of the key, and said once.
   */
  private checkSameId(dg: Datagram): void {
    const peers = this.peers;
    if (peers === null || this.sameIdWarned || dg.keyId !== this.config.cluster?.key) return;
    if (nodeIdOf(dg) !== peers.self) return;
    this.sameIdWarned = true;
    this.warn(
      "cluster",
      `another monitor sends heartbeats as ${peers.self}, this monitor's id: give each monitor its own (cluster.self, --id, HB_MONITOR_ID)`,
    );
  }

  private reject(reason: RejectReason): void {
    this.rejections.count(reason);
  }

  /**
   * A monitor that hears none of its peers and (almost) none of its nodes is the one cut off:
   * the silence is its own. It says so once per episode and judges no one while it lasts, that
   * is until it hears a peer, or more than a few of its nodes, again. What it heard is read from
   * arrivals, not from states (which a hold keeps as they were); looked at most every
   * ISOLATION_CHECK_MS, since it walks every node.
   */
  private checkIsolation(nowMs: number): void {
    const peers = this.peers;
    const cluster = this.config.cluster;
    if (peers === null || cluster === null) return;
    if (nowMs - this.isolationCheckedAt >= ISOLATION_CHECK_MS) {
      this.isolationCheckedAt = nowMs;
      // The nodes are walked only when the peers say something may be wrong.
      const inEpisode = this.isolatedFromMs !== null;
      const peersSilent = inEpisode
        ? peers.lastHeardMs() === null || nowMs - peers.lastHeardMs()! >= cluster.lateMs
        : peers.wentSilent();
      const nodes = peersSilent ? this.detector.reader().heard(nowMs, cluster.lateMs) : null;
      const cutOff =
        nodes !== null && nodes.expected > 0 && nodes.heard <= ISOLATED_HEARD_SHARE * nodes.expected;
      if (!cutOff) {
        if (inEpisode) peers.mute(false);
        this.isolatedFromMs = null;
      } else if (!inEpisode) {
        // Held from the last peer arrival: nothing heard since proves anything.
        this.isolatedFromMs = peers.lastHeardMs() ?? nowMs - cluster.timeoutMs;
        peers.mute(true);
        this.emit("monitor.isolated", {
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
    const holdMs = this.stallHoldMs();
    const fromMs = this.isolatedFromMs ?? nowMs;
    this.detector.hold(fromMs, nowMs, holdMs);
    this.peers?.hold(fromMs, nowMs, 2 * (this.config.cluster?.intervalMs ?? 0));
    return holdMs;
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
    if (this.held !== null) {
      // Done once the config being applied is whole, in its place among the held datagrams.
      this.held.forget(node);
      return this.detector.knows(node);
    }
    const now = this.clock.monoMs();
    if (!this.detector.forget(node, now)) return false;
    this.emit("node.forgotten", { node, silentMs: null, by: "operator" });
    this.judge.rearm();
    if (this.marksFile !== undefined) void this.writeMarks();
    return true;
  }

  /** Swaps in a new config at once; returns the changes (also reported as an event). */
  reload(loaded: LoadedConfig): string[] {
    const { changes, rules, staged } = finish(prepareReload(this.config, loaded, this.detector));
    this.config = staged.config;
    this.admission.configure(rules);
    finish(this.detector.commitSteps(staged, this.clock.monoMs()));
    return this.reloaded(changes);
  }

  /**
   * reload(), a few milliseconds per turn of the event loop (`pause` awaits the next turn), so
   * that no reload blocks the loop for long whatever the fleet's size. While it is compared and
   * staged, datagrams are received and judged by the current config; while it is applied, they
   * are read and held with their arrival times, judging waits, and both resume in arrival order
   * once it is whole. Reloads must not overlap. `sliceMs` 0 takes one step (a few thousand
   * nodes) per turn.
   */
  async reloadInTurns(
    loaded: LoadedConfig,
    pause: () => Promise<void>,
    sliceMs = SLICE_MS,
  ): Promise<string[]> {
    // Between slices, the socket is emptied: a slice per turn would leave all but 32 datagrams.
    let held: HeldBack | null = null;
    const rest = async (): Promise<void> => {
      await this.emptySocket(pause);
      held?.empty(this.clock.monoMs());
    };
    const prepare = prepareReload(this.config, loaded, this.detector);
    const { changes, rules, staged } = await finishInTurns(prepare, rest, undefined, sliceMs);
    this.config = staged.config;
    this.admission.configure(rules);
    held = this.held = new HeldBack();
    held.empty(this.clock.monoMs());
    this.judge.pause();
    // Once begun, applying is finished even if the caller stops meanwhile (its pause fails): a
    // half-applied config is no state to leave, not even to stop in.
    const restAnyway = (): Promise<void> => rest().catch(() => undefined);
    try {
      await finishInTurns(
        this.detector.commitSteps(staged, this.clock.monoMs()),
        restAnyway,
        undefined,
        sliceMs,
      );
      this.held = null;
      this.takeHeld(held);
      // What arrived during the last slice may still wait in the socket: read it before judging.
      await restAnyway();
    } finally {
      this.held = null;
      this.judge.resume();
    }
    return this.reloaded(changes);
  }

  /**
   * A rest between two slices of long work on this thread: turns the loop (`turn`) until the
   * socket is empty (see untilSocketEmpty).
   */
  emptySocket(turn: () => Promise<void>): Promise<void> {
    return untilSocketEmpty(turn, () => this.received);
  }

  /**
   * Takes in what was held while a config was applied, in order, forgets included. Deadlines are
   * judged only up to the last instant at which the socket was found empty before each datagram
   * was read: a node whose heartbeat still waited in the socket is never judged for it.
   */
  private takeHeld(held: HeldBack): void {
    const { messages, origins, arrivals, forgets, emptyAt, heldBy } = held;
    let forget = 0;
    let mark = 0;
    for (let i = 0; i <= messages.length; i++) {
      while (forget < forgets.length && forgets[forget]!.after === i) this.forget(forgets[forget++]!.node);
      if (i === messages.length) break;
      let safe = Number.NEGATIVE_INFINITY;
      while (mark < heldBy.length && heldBy[mark]! <= i) safe = emptyAt[mark++]!;
      if (safe !== Number.NEGATIVE_INFINITY) this.detector.advance(safe);
      this.process(messages[i]!, origins[i]!, arrivals[i]!);
    }
    if (held.dropped > 0) {
      const now = this.clock.monoMs();
      this.judge.overload("backlog", arrivals[0] ?? now, now);
    }
  }

  /** After a config is applied: judgement, then the event. */
  private reloaded(changes: string[]): string[] {
    this.detector.advance(this.clock.monoMs());
    this.judge.rearm();
    this.emit("config.reloaded", { changes });
    this.recordReload(true, changes, []);
    return changes;
  }

  /** Problems with how the monitor runs that the operator should fix (after monitor.started). */
  startupWarnings(): [problem: string, detail: string][] {
    const warnings: [problem: string, detail: string][] = [];
    const { asked, granted } = this.receiveBuffer;
    if (granted < asked)
      warnings.push([
        "receive_buffer",
        `asked for a ${asked}-byte UDP receive buffer, the kernel granted ${granted}: raise net.core.rmem_max (see systemd/90-hb.conf)`,
      ]);
    // Peer heartbeats leave from the heartbeat socket: one of the other family never arrives.
    const family = familyOf(this.config.listen.host);
    for (const monitor of this.config.cluster?.monitors ?? [])
      if (monitor.id !== this.peers?.self && familyOf(monitor.address.host) !== family)
        warnings.push([
          "cluster",
          `cluster.monitors.${monitor.id}: ${formatHostPort(monitor.address)} cannot be reached from listen ${this.listenAddress} (${family}): use an address of the same family`,
        ]);
    return warnings;
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
    return this.judge.overdueMs();
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
      cluster: this.peers?.view() ?? null,
      nodes: nodes ? this.detector.view(now) : [],
    };
  }

  datagramCounters(): { received: number; accepted: number; rejected: Readonly<Record<string, number>> } {
    return { received: this.received, accepted: this.accepted, rejected: this.rejections.total };
  }

  takeTimerLatenessMs(): number {
    return this.judge.takeTimerLatenessMs();
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

  /** What a notice about `node` says of it, read now; null when the node is not tracked. */
  facts(node: string): NoticeFacts | null {
    const reader = this.detector.reader();
    const slot = reader.slotOf(node);
    if (slot === undefined) return null;
    const spec = this.config.nodes.get(node);
    return {
      labels: spec?.labels ?? null,
      ...reader.arrival(slot),
      lateMs: spec?.lateMs ?? this.config.defaults.lateMs,
      timeoutMs: spec?.timeoutMs ?? this.config.defaults.timeoutMs,
    };
  }

  /** Whether `node` is down now (an alert about it may still fire). */
  isDown(node: string): boolean {
    const reader = this.detector.reader();
    const slot = reader.slotOf(node);
    return slot !== undefined && reader.state(slot, this.clock.monoMs()) === "down";
  }

  /** The other monitors and who speaks (metrics); null without a cluster. */
  cluster(): { speaking: boolean; peers: readonly { peer: string; state: StateName }[] } | null {
    return this.peers?.view() ?? null;
  }

  kernelDrops(): number | null {
    return this.bound === undefined ? null : (this.deps.kernelDrops ?? udpDrops)(this.bound.port);
  }

  private writeMarks(): Promise<void> {
    const file = this.marksFile;
    if (file === undefined) return this.saving;
    this.saving = this.saving.then(() =>
      saveMarks(file, [
        ...(this.config.auth === "off" ? [] : this.detector.marks()),
        ...(this.peers?.marks() ?? []),
      ]).catch((err: unknown) => {
        this.emit("monitor.warning", {
          problem: "replay_marks",
          detail: `cannot save ${file}: ${(err as Error).message}`,
        });
      }),
    );
    return this.saving;
  }

  async close(): Promise<void> {
    this.judge.stop();
    await this.peers?.stop();
    this.saveMarks.cancel();
    await this.writeMarks();
    this.rejections.flush();
    this.lines.flush();
    await this.deps.socket.close();
  }
}
