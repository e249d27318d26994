// The other monitors of the site, watched like nodes: each monitor sends them hb heartbeats
// (signed with the cluster's key) and judges theirs with a detector of its own, so a dead or hung
// monitor is reported as `peer.down` at its deadline. Who speaks is derived, never stored: with
// `speak: leader`, the first monitor in rank order that is up in this one's view; a monitor that
// has just started speaks only once it has heard the monitors ranked before it, or once the
// settle time has passed. They also carry the cluster's replicated state: `replica(name, codec)`
// (before start) makes a Replica that the sync engine (sync.ts) keeps alike on every monitor, in
// sync datagrams that, like the beats, are signed with the cluster's key and numbered in one
// sequence per peer, so that they prove life and are refused as replays as beats are.

import type { KeyObject } from "node:crypto";
import type { Clock, Timer, WallTime } from "../clock.js";
import type { ClusterSpec, Config } from "../config/types.js";
import type { Emit, EventFields, EventName } from "../events.js";
import type { NodeFacts } from "../facts.js";
import { Kind, encode, nodeIdOf, syncPayloadCapacity, type Datagram } from "../wire/protocol.js";
import type { HostPort } from "../wire/address.js";
import type { DatagramSocket, RemoteInfo } from "../wire/udp.js";
import { Detector, type DetectorReason } from "./detector.js";
import { Judge } from "./judge.js";
import { clusterView, downPeers, type ClusterView } from "./peer-views.js";
import { Replica, type ReplicaCodec } from "./replica.js";
import type { ReplayMark } from "./replay-marks.js";
import { Sync, type SyncCounts } from "./sync.js";

/** A peer's events are its node events, renamed: `node.down` about a monitor is `peer.down`. */
const PEER_EVENTS: Partial<Record<EventName, EventName>> = {
  "node.up": "peer.up",
  "node.late": "peer.late",
  "node.down": "peer.down",
  "node.left": "peer.left",
  "node.restarted": "peer.restarted",
};

export interface PeersDeps {
  clock: Clock;
  wall: WallTime;
  emit: Emit;
  socket: DatagramSocket;
  /** The key peer heartbeats are signed with. */
  key: KeyObject;
  /** The key the upstream heartbeats are signed with (cluster.upstream.key); none: unsigned. */
  upstreamKey?: KeyObject | undefined;
  /** Datagrams read from the socket so far (the judge's rest). */
  received: () => number;
  /** Told whenever who speaks may have changed. */
  onSpeakerChange: () => void;
  /** Called before peers are judged, as before nodes are (the monitor may find itself cut off). */
  beforeJudging?: (nowMs: number) => void;
}

/** The config of the peer detector: the other monitors, as nodes with the cluster's thresholds. */
function peerConfig(base: Config, cluster: ClusterSpec, self: string): Config {
  const thresholds = {
    intervalMs: cluster.intervalMs,
    timeoutMs: cluster.timeoutMs,
    lateMs: cluster.lateMs,
    phi: null,
  };
  const nodes = new Map(
    cluster.monitors
      .filter((m) => m.id !== self)
      .map((m) => [
        m.id,
        Object.freeze({ id: m.id, ...thresholds, paused: false, keys: null, labels: null, parents: [] }),
      ]),
  );
  return Object.freeze({
    ...base,
    defaults: Object.freeze(thresholds),
    startupGraceMs: cluster.settleMs,
    unknownNodes: "ignore" as const,
    maxNodes: nodes.size,
    nodes,
    notify: [],
    cluster: null,
  });
}

export class Peers {
  private readonly detector: Detector;
  private readonly judge: Judge;
  private readonly startedMs: number;
  /** When this monitor started, or last resumed from a stall: it settles again from there. */
  private settleFromMs: number;
  /** While this monitor finds itself cut off, it sends nothing: the others must take over. */
  private muted = false;
  private readonly incarnation: number;
  /**
   * By peer: the last sequence sent to it. Each peer's datagrams count up without gaps, though
   * some (records) go to one peer only: a gap it sees is loss.
   */
  private readonly sequences = new Map<string, number>();
  private readonly sync: Sync;
  private beat: Timer | undefined;
  private settle: Timer | undefined;
  private stopped = false;
  private lastSpeaking: boolean | null = null;
  /** Peers back from down (or restarted), and when: they may speak again once up for `settle`. */
  private readonly returnedAt = new Map<string, number>();
  /** After a long stall this monitor does not speak before this (monotonic ms). */
  private yieldUntilMs = Number.NEGATIVE_INFINITY;
  /** While this monitor beats upstream (it leads the site): that run's incarnation and sequence. */
  private upstream: { incarnation: number; sequence: number } | null = null;

  constructor(
    private readonly cluster: ClusterSpec,
    readonly self: string,
    config: Config,
    private readonly deps: PeersDeps,
  ) {
    const { clock } = deps;
    this.startedMs = this.settleFromMs = clock.monoMs();
    // Larger at every start, as a node's is: a restarted monitor is told apart from a replay.
    this.incarnation = clock.wallMs();
    for (const peer of this.peerIds()) this.sequences.set(peer, 0);
    this.sync = new Sync({
      clock,
      intervalMs: cluster.intervalMs,
      peers: this.peerIds(),
      capacity: syncPayloadCapacity(self, cluster.key),
      send: (peer, payload) => this.sendSync(peer, payload),
    });
    const emit: Emit = (event, fields) => this.peerEvent(event, fields);
    this.detector = new Detector(peerConfig(config, cluster, self), this.settleFromMs, {
      emit,
      toWall: (mono) => deps.wall.of(mono),
    });
    this.judge = new Judge({
      clock,
      // The monitor's own stalls and overloads are told once, by the nodes' judge. After a stall
      // this monitor settles again, as after a start: others may have spoken meanwhile.
      emit: (event, fields) => {
        if (event === "monitor.stalled") this.resettle((fields as { stalledMs: number }).stalledMs);
        if (!event.startsWith("monitor.")) emit(event, fields);
      },
      detector: this.detector,
      received: deps.received,
      kernelDrops: () => null,
      holdMs: () => 2 * cluster.intervalMs,
      ...(deps.beforeJudging === undefined ? {} : { beforeJudging: deps.beforeJudging }),
    });
  }

  private peerEvent<E extends EventName>(event: E, fields: EventFields[E]): void {
    const renamed = PEER_EVENTS[event];
    if (renamed !== undefined) {
      const { node, ...rest } = fields as { node: string } & Record<string, unknown>;
      this.deps.emit(renamed, { peer: node, ...rest } as never);
      const now = this.deps.clock.monoMs();
      // Another monitor is back: it may have led the site meanwhile, and it speaks again only
      // once it has stayed up for the settle time (a leader that comes and goes does not take
      // the voice back each time). A first contact is not a return.
      const previous = (rest as { previous?: string }).previous;
      if (
        renamed === "peer.restarted" ||
        (renamed === "peer.up" && previous !== "new" && previous !== "late")
      ) {
        this.returnedAt.set(node, now);
        this.upstream = null;
      } else if (renamed === "peer.down" || renamed === "peer.left") this.returnedAt.delete(node);
    }
    this.deps.onSpeakerChange();
  }

  /** Settle again from now (after a stall): this monitor speaks once it has heard its peers. */
  private resettle(stalledMs: number): void {
    const now = this.deps.clock.monoMs();
    this.settleFromMs = now;
    // Frozen past a peer timeout, this monitor was down in the others' view and one of them took
    // over: it yields to it for the settle time, as they do to a monitor that comes back.
    if (stalledMs >= this.cluster.timeoutMs) this.yieldUntilMs = now + this.cluster.settleMs;
    this.upstream = null;
    this.deps.onSpeakerChange();
  }

  /**
   * While this monitor is cut off it sends no heartbeat, to its peers or upstream: one that can
   * send but not hear must not keep the others quiet.
   */
  mute(muted: boolean): void {
    if (muted === this.muted) return;
    this.muted = muted;
    this.upstream = null;
  }

  /**
   * A map kept alike on every monitor of the cluster (replica.ts); made before start, so that the
   * first digests carry it. Its name must be new.
   */
  replica<V>(name: string, codec: ReplicaCodec<V>): Replica<V> {
    const replica = new Replica(name, codec);
    this.sync.add(replica);
    return replica;
  }

  /** The sync engine's counts since start. */
  syncCounts(): Readonly<SyncCounts> {
    return this.sync.counts;
  }

  /** Starts beating to the other monitors and judging theirs. */
  start(): void {
    this.judge.start();
    this.sync.start();
    void Promise.all(this.send(Kind.BEAT));
    // When the settle time ends, a monitor that heard no one ranked before it may start speaking.
    this.settle = this.deps.clock.setTimeout(() => this.deps.onSpeakerChange(), this.cluster.settleMs);
  }

  private send(kind: Kind): Promise<void>[] {
    if (kind === Kind.BEAT) {
      // Who speaks is looked at every interval too: a peer's state can change without an event
      // (a flapping peer's restarts, leaves and returns from them are kept quiet), and the
      // hand-over must not wait for one.
      this.deps.onSpeakerChange();
      if (!this.stopped)
        this.beat = this.deps.clock.setTimeout(
          () => void Promise.all(this.send(Kind.BEAT)),
          this.cluster.intervalMs,
        );
      if (this.muted) return [];
    }
    const sent: Promise<void>[] = [];
    for (const monitor of this.cluster.monitors)
      if (monitor.id !== this.self) sent.push(this.sendTo(monitor.id, monitor.address, kind));
    if (kind === Kind.BEAT) {
      this.sync.beat();
      this.beatUpstream();
    }
    return sent;
  }

  private sendTo(peer: string, address: HostPort, kind: Kind, payload?: Buffer): Promise<void> {
    const sequence = this.sequences.get(peer)! + 1;
    this.sequences.set(peer, sequence);
    const datagram = encode(
      { kind, nodeId: this.self, incarnation: this.incarnation, sequence, payload },
      { id: this.cluster.key, secret: this.deps.key },
    );
    // A peer that cannot be reached is judged by its own heartbeats, not by our sends.
    return this.deps.socket.send(datagram, address).catch(() => undefined);
  }

  /** The sync engine's datagrams: none while cut off or stopped, as for beats. */
  private sendSync(peer: string, payload: Buffer): void {
    if (this.muted || this.stopped) return;
    const address = this.cluster.monitors.find((m) => m.id === peer)!.address;
    void this.sendTo(peer, address, Kind.SYNC, payload);
  }

  /**
   * The site's heartbeat to an upstream hb monitor, sent by the leader alone (whatever `speak`
   * says: one sender per node id). A monitor that becomes the leader starts a new incarnation
   * from its wall clock, so the upstream monitor sees a hand-over as a restart of the site's
   * sender, and never a replay.
   */
  private beatUpstream(): void {
    const upstream = this.cluster.upstream;
    if (upstream === null) return;
    if (this.speaker() !== this.self) return void (this.upstream = null);
    this.upstream ??= { incarnation: this.deps.clock.wallMs(), sequence: 0 };
    const key = this.deps.upstreamKey;
    const datagram = encode(
      {
        kind: Kind.BEAT,
        nodeId: upstream.id,
        incarnation: this.upstream.incarnation,
        sequence: ++this.upstream.sequence,
      },
      key === undefined || upstream.key === null ? undefined : { id: upstream.key, secret: key },
    );
    this.deps.socket.send(datagram, upstream.monitor).catch(() => undefined);
  }

  /** A verified datagram of another monitor, at its arrival; why it is refused, or null. */
  observe(dg: Datagram, nowMs: number, from: RemoteInfo): DetectorReason | null {
    const verdict = this.detector.observe(dg, nowMs, from, true);
    if (verdict !== null) return verdict;
    this.judge.heard(nowMs);
    // Proof of life like a beat (above); and then what it carries.
    if (dg.kind === Kind.SYNC)
      this.sync.receive(nodeIdOf(dg), nowMs, dg.buf, dg.payloadOffset, dg.payloadLength);
    return null;
  }

  /** The first monitor in rank order that is up (or late) in this one's view; null: none yet. */
  speaker(): string | null {
    const reader = this.detector.reader();
    const now = this.deps.clock.monoMs();
    const settled = now - this.settleFromMs >= this.cluster.settleMs;
    for (const { id } of this.cluster.monitors) {
      // Even the first in rank waits, after its start, to hear the others or for the settle time;
      // after a long stall, it waits the settle time out.
      if (id === this.self) {
        if (now < this.yieldUntilMs) continue;
        return settled || this.heardAll(now) ? id : null;
      }
      const slot = reader.slotOf(id);
      let state = slot === undefined ? "new" : reader.state(slot, now);
      // Down once judged so: the voice moves with `peer.down`, never ahead of it.
      if (state === "down" && !reader.judgedDown(slot!)) state = "late";
      const returned = this.returnedAt.get(id);
      if (returned !== undefined && now - returned < this.cluster.settleMs) continue;
      if (state === "up" || state === "late") return id;
      // Not heard yet since this monitor started: it may be speaking, until the settle time ends.
      if (state === "new" && !settled) return null;
    }
    return null;
  }

  /** No peer deadline from `fromMs` on is judged before `nowMs + holdMs` (see Detector.hold). */
  hold(fromMs: number, nowMs: number, holdMs: number): void {
    this.detector.hold(fromMs, nowMs, holdMs);
  }

  private heardAll(nowMs: number): boolean {
    const reader = this.detector.reader();
    for (const peer of this.peerIds()) {
      const slot = reader.slotOf(peer);
      if (slot === undefined || reader.state(slot, nowMs) === "new") return false;
    }
    return true;
  }

  /** Whether this monitor runs the notify outputs now. */
  speaking(): boolean {
    return this.cluster.speak === "all" || this.speaker() === this.self;
  }

  /** True when who speaks changed since the last call (the caller acts on the change). */
  speakingChanged(): boolean {
    const now = this.speaking();
    const changed = now !== this.lastSpeaking;
    this.lastSpeaking = now;
    return changed;
  }

  /**
   * Whether no other monitor has been heard for the cluster's late threshold, though one was,
   * not long before: peers that went silent together with the nodes point at this monitor;
   * peers dead for long say nothing about it. Read from arrivals: a hold of judgement changes
   * nothing here.
   */
  wentSilent(): boolean {
    const now = this.deps.clock.monoMs();
    if (now - this.settleFromMs < this.cluster.settleMs) return false;
    const silentMs = now - (this.lastHeardMs() ?? Number.NEGATIVE_INFINITY);
    return silentMs >= this.cluster.lateMs && silentMs < this.cluster.lateMs + 2 * this.cluster.timeoutMs;
  }

  /** When another monitor was last heard (monotonic ms); null: none since this one started. */
  lastHeardMs(): number | null {
    const reader = this.detector.reader();
    let last: number | null = null;
    for (const peer of this.peerIds()) {
      const slot = reader.slotOf(peer);
      const seen = slot === undefined ? null : reader.lastSeen(slot);
      if (seen !== null && (last === null || seen > last)) last = seen;
    }
    return last;
  }

  private peerIds(): string[] {
    return this.cluster.monitors.map((m) => m.id).filter((id) => id !== this.self);
  }

  /** The peers that are down now, with what a `peer.down` said of them (to say it again). */
  downPeers(): EventFields["peer.down"][] {
    const now = this.deps.clock.monoMs();
    return downPeers(this.detector.reader(), this.peerIds(), this.deps.wall, this.startedMs, now);
  }

  /** What a notice about `peer` says of it (its last datagram), as Monitor.facts does of a node. */
  facts(peer: string): NodeFacts | null {
    return this.detector.reader().facts(peer, null, this.cluster);
  }

  view(): ClusterView {
    const speech = { self: this.self, speaker: this.speaker(), speaking: this.speaking() };
    const now = this.deps.clock.monoMs();
    const shares = (peer: string): boolean | null => this.sync.shares(peer, now, this.cluster.timeoutMs);
    return clusterView(this.detector.reader(), this.cluster, this.peerIds(), speech, now, shares);
  }

  /**
   * Stops beating, and tells the other monitors this one leaves (a clean stop, not a death);
   * resolves once the leaves are sent, so that the socket is not closed under them.
   */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    const { clock } = this.deps;
    if (this.beat !== undefined) clock.clearTimeout(this.beat);
    if (this.settle !== undefined) clock.clearTimeout(this.settle);
    this.judge.stop();
    this.sync.stop();
    this.muted = false;
    await Promise.all(this.send(Kind.LEAVE));
  }

  /** The other monitors' ids. */
  get ids(): string[] {
    return this.peerIds();
  }

  /** Replay marks of the other monitors, to save with the nodes'. */
  marks(): IterableIterator<[string, ReplayMark]> {
    return this.detector.marks();
  }

  restoreMarks(marks: Iterable<[string, ReplayMark]>): void {
    this.detector.restoreMarks(marks);
  }

  /** The cluster's key was read again (a reload): heartbeats are signed with it from now on. */
  rekey(key: KeyObject): void {
    this.deps.key = key;
  }
}
