// The sync engine: carries the cluster's replicas (replica.ts) between this monitor and its peers
// in sync datagrams (docs/PROTOCOL.md). With every peer beat, each peer is sent the digests of
// all replicas; to a peer whose digest of a replica differs, this monitor sends its records of
// it, a batch at a time, going on from where it stopped while the digests still differ; a local
// change is pushed to every peer on the next turn. Both sides merge with the codec's `wins`, so
// they converge. A peer's digest that this monitor's copy would have without its last few local
// changes is a peer that has not heard of them yet, not one that missed them: no copy is sent.
// Sending is paced (the monotonic clock, for pacing only): at most DATAGRAMS_PER_TICK to a peer
// every interval / TICKS_PER_INTERVAL, whatever the maps' sizes.

import type { Clock, Timer } from "../clock.js";
import { HbError } from "../errors.js";
import { MAX_SYNC_PAYLOAD_BYTES } from "../wire/protocol.js";
import {
  digestsPayload,
  parseSync,
  recordsFrame,
  recordsPayload,
  type SyncMessage,
} from "../wire/sync-payload.js";
import {
  digestText,
  kLink,
  kPrune,
  kTake,
  kText,
  xorDigest,
  type DigestWords,
  type Replica,
  type ReplicaLink,
  type Taken,
} from "./replica.js";

export const TICKS_PER_INTERVAL = 8;
export const DATAGRAMS_PER_TICK = 32;
/** At most this many record datagrams go to one peer in one peer interval. */
export const MAX_SYNC_DATAGRAMS_PER_INTERVAL = TICKS_PER_INTERVAL * DATAGRAMS_PER_TICK;
/** Local changes kept for a while (and this many at most) to tell a peer behind. */
const RECENT_CHANGES = 64;

/** Since start, over all peers and replicas. */
export interface SyncCounts {
  /** Sync datagrams sent (digests and records) and taken in from peers. */
  sent: number;
  received: number;
  /** Records from peers that changed this monitor's copy. */
  taken: number;
  /** Records from peers refused: not a record, or refused by the codec. */
  refused: number;
  /** Payloads from peers that are no sync message this monitor reads. */
  malformed: number;
  /** Errors thrown by an onChange (the record was taken all the same). */
  failed: number;
}

export interface SyncDeps {
  clock: Clock;
  intervalMs: number;
  /** The other monitors' ids. */
  peers: readonly string[];
  /** The payload bytes one sync datagram of this monitor carries. */
  capacity: number;
  /** Sends one sync datagram with `payload` to `peer` (signed, numbered; not while muted). */
  send(peer: string, payload: Buffer): void;
}

/** What the engine needs of a replica, whatever its values. */
interface Shared {
  readonly name: string;
  digest(): string;
  entries(): IterableIterator<[string, unknown]>;
  [kText](key: string): string | undefined;
  [kTake](key: string, raw: unknown, wallMs: number): Taken;
  [kPrune](wallMs: number): void;
}

/** A replica carried: its local changes not pushed yet, and how its last ones moved its digest. */
interface Carried {
  readonly replica: Shared;
  readonly pending: Set<string>;
  /** The local changes of the last behindMs (monotonic ms), oldest first. */
  readonly recent: { atMs: number; delta: DigestWords }[];
}

/** A walk through one replica for one peer: where it stands, and a key sent next. */
interface Pass {
  readonly entries: IterableIterator<[string, unknown]>;
  carry: string | undefined;
}

/** Records packed into one payload, up to the capacity. */
class Batch {
  /** The records' room: the capacity less the payload's frame. */
  private readonly room: number;
  private texts: string[] = [];
  private bytes = 0;

  constructor(
    private readonly replica: string,
    capacity: number,
  ) {
    const { head, tail } = recordsFrame(replica);
    this.room = capacity - Buffer.byteLength(head) - Buffer.byteLength(tail);
  }

  get empty(): boolean {
    return this.texts.length === 0;
  }

  /** False when `text` does not fit beside what is there (it fits alone: Replica.fits). */
  add(text: string): boolean {
    const bytes = Buffer.byteLength(text) + (this.empty ? 0 : 1);
    if (!this.empty && this.bytes + bytes > this.room) return false;
    this.texts.push(text);
    this.bytes += bytes;
    return true;
  }

  take(): Buffer {
    const payload = recordsPayload(this.replica, this.texts);
    this.texts = [];
    this.bytes = 0;
    return payload;
  }
}

export class Sync {
  readonly counts: SyncCounts = { sent: 0, received: 0, taken: 0, refused: 0, malformed: 0, failed: 0 };
  private readonly replicas = new Map<string, Carried>();
  /** By peer: when it last sent a sync datagram (monotonic ms). */
  private readonly heardMs = new Map<string, number>();
  /** By peer, then by replica: the walks under way. */
  private readonly passes = new Map<string, Map<string, Pass>>();
  private readonly tickMs: number;
  /**
   * How long a local change may be unknown to a peer that did not miss it: it is pushed within a
   * tick, and a peer sends its digest after what it pushed before it.
   */
  private readonly behindMs: number;
  private timer: Timer | undefined;
  private immediate = false;
  /** Counts ticks: an immediate made for an earlier one does nothing. */
  private ticks = 0;
  private lastTickMs = Number.NEGATIVE_INFINITY;
  private started = false;
  private stopped = false;

  constructor(private readonly deps: SyncDeps) {
    this.tickMs = deps.intervalMs / TICKS_PER_INTERVAL;
    this.behindMs = 2 * this.tickMs;
    for (const peer of deps.peers) this.passes.set(peer, new Map());
  }

  /** Shares `replica` with the peers; its name must be new, and all digests fit one datagram. */
  add<V>(replica: Replica<V>): void {
    const { name } = replica;
    if (this.replicas.has(name)) throw new HbError("HB_ERR_USAGE", `replica ${name} is shared already`);
    const names = [...this.replicas.keys(), name].map((n) => [n, "0".repeat(32)] as const);
    if (digestsPayload(names).length > MAX_SYNC_PAYLOAD_BYTES)
      throw new HbError("HB_ERR_USAGE", `too many replicas: their digests do not fit one sync datagram`);
    const carried: Carried = { replica, pending: new Set(), recent: [] };
    const link: ReplicaLink = { changed: (key, delta) => this.changed(carried, key, delta) };
    replica[kLink](link);
    this.replicas.set(name, carried);
  }

  start(): void {
    this.started = true;
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== undefined) this.deps.clock.clearTimeout(this.timer);
    this.timer = undefined;
  }

  /**
   * With every peer beat: the digests of every replica, to every peer, after the changes still
   * to push (a peer would take a digest before them for a copy it lacks); a replica whose changes
   * must wait for the next tick is left out this time.
   */
  beat(): void {
    if (this.replicas.size === 0 || this.stopped) return;
    const pending = [...this.replicas.values()].some((c) => c.pending.size > 0);
    if (pending && this.deps.clock.monoMs() >= this.lastTickMs + this.tickMs) this.tick();
    const digests: [string, string][] = [];
    for (const { replica, pending } of this.replicas.values())
      if (pending.size === 0) digests.push([replica.name, replica.digest()]);
    if (digests.length === 0) return;
    const payload = digestsPayload(digests);
    for (const peer of this.deps.peers) this.send(peer, payload);
  }

  /** A sync datagram's payload from `peer`, accepted (authenticated, not a replay) at `nowMs`. */
  receive(peer: string, nowMs: number, buf: Buffer, offset: number, length: number): void {
    this.counts.received++;
    this.heardMs.set(peer, nowMs);
    const message = parseSync(buf, offset, length);
    if (message === null) return void this.counts.malformed++;
    if (message.kind === "digests") this.compare(peer, message.digests);
    else this.take(message);
  }

  /**
   * Whether `peer` sent a sync datagram within `withinMs` before `nowMs` (it sends its digests
   * every interval); null when this monitor shares no replica, and so expects none.
   */
  shares(peer: string, nowMs: number, withinMs: number): boolean | null {
    if (this.replicas.size === 0) return null;
    const heard = this.heardMs.get(peer);
    return heard !== undefined && nowMs - heard <= withinMs;
  }

  private compare(peer: string, digests: ReadonlyMap<string, string>): void {
    const passes = this.passes.get(peer);
    if (passes === undefined) return;
    for (const [name, digest] of digests) {
      const carried = this.replicas.get(name);
      if (carried === undefined) continue;
      const { replica } = carried;
      if (digest === replica.digest()) {
        passes.delete(name);
        continue;
      }
      if (passes.has(name) || this.hadLately(carried, digest)) continue;
      // What has expired here is not sent: it would be refused, and the digests would not meet.
      replica[kPrune](this.deps.clock.wallMs());
      if (digest === replica.digest()) continue;
      passes.set(name, { entries: replica.entries(), carry: undefined });
      this.wake();
    }
  }

  /**
   * Whether `digest` is this monitor's copy without its last few local changes: the peer has all
   * but those, which are on their way (it has heard of the others, pushed in order before them).
   */
  private hadLately(carried: Carried, digest: string): boolean {
    const { recent } = carried;
    const sinceMs = this.deps.clock.monoMs() - this.behindMs;
    const words = Uint32Array.from(carried.replica.digest().match(/.{8}/g)!, (hex) => parseInt(hex, 16));
    for (let i = recent.length - 1; i >= 0 && recent[i]!.atMs >= sinceMs; i--) {
      xorDigest(words, recent[i]!.delta);
      if (digestText(words) === digest) return true;
    }
    return false;
  }

  private take(message: Extract<SyncMessage, { kind: "records" }>): void {
    const replica = this.replicas.get(message.replica)?.replica;
    // A replica of a later version's: this monitor does not carry it.
    if (replica === undefined) return;
    const wallMs = this.deps.clock.wallMs();
    const { counts } = this;
    for (const record of message.records) {
      if (!Array.isArray(record) || record.length !== 2 || typeof record[0] !== "string") {
        counts.refused++;
        continue;
      }
      try {
        const taken = replica[kTake](record[0], record[1], wallMs);
        if (taken === "taken") counts.taken++;
        else if (taken === "refused") counts.refused++;
      } catch {
        // The owner's onChange failed: a peer's record must never bring the monitor down.
        counts.failed++;
      }
    }
  }

  private changed(carried: Carried, key: string | null, delta: DigestWords): void {
    const { recent } = carried;
    const nowMs = this.deps.clock.monoMs();
    while (recent.length > 0 && (recent.length >= RECENT_CHANGES || recent[0]!.atMs < nowMs - this.behindMs))
      recent.shift();
    recent.push({ atMs: nowMs, delta });
    if (key === null || !this.started || this.stopped) return;
    carried.pending.add(key);
    this.wake();
  }

  /** The next tick: on the next turn, or once a tick's time has passed since the last one. */
  private wake(): void {
    if (!this.started || this.stopped || this.timer !== undefined || this.immediate) return;
    const { clock } = this.deps;
    const waitMs = this.lastTickMs + this.tickMs - clock.monoMs();
    if (waitMs > 0) this.timer = clock.setTimeout(() => this.tick(), waitMs);
    else {
      this.immediate = true;
      const tick = this.ticks;
      clock.setImmediate(() => {
        if (tick === this.ticks) this.tick();
      });
    }
  }

  private tick(): void {
    this.ticks++;
    if (this.timer !== undefined) this.deps.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.immediate = false;
    if (this.stopped) return;
    this.lastTickMs = this.deps.clock.monoMs();
    const pushed = this.push();
    let busy = [...this.replicas.values()].some((c) => c.pending.size > 0);
    for (const [peer, passes] of this.passes) {
      let left = DATAGRAMS_PER_TICK - pushed;
      for (const [name, pass] of passes) {
        if (left === 0) break;
        left -= this.walk(peer, name, pass, left);
      }
      busy ||= passes.size > 0;
    }
    if (busy) this.wake();
  }

  /** Local changes, to every peer; how many datagrams each peer was sent. */
  private push(): number {
    let sent = 0;
    for (const { replica, pending: keys } of this.replicas.values()) {
      if (keys.size === 0) continue;
      const batch = new Batch(replica.name, this.deps.capacity);
      for (const key of keys) {
        const text = replica[kText](key);
        if (text !== undefined && !batch.add(text)) {
          this.sendAll(batch.take());
          // The key stays pending, for the next tick.
          if (++sent === DATAGRAMS_PER_TICK) return sent;
          batch.add(text);
        }
        keys.delete(key);
      }
      if (!batch.empty) {
        this.sendAll(batch.take());
        sent++;
      }
      if (sent === DATAGRAMS_PER_TICK) break;
    }
    return sent;
  }

  /** Up to `left` datagrams of one replica's records to `peer`; how many were sent. */
  private walk(peer: string, name: string, pass: Pass, left: number): number {
    const replica = this.replicas.get(name)!.replica;
    const batch = new Batch(name, this.deps.capacity);
    let sent = 0;
    let key = pass.carry;
    pass.carry = undefined;
    for (;;) {
      if (key === undefined) {
        const next = pass.entries.next();
        if (next.done === true) break;
        key = next.value[0];
      }
      const text = replica[kText](key);
      if (text !== undefined && !batch.add(text)) {
        this.send(peer, batch.take());
        if (++sent === left) {
          pass.carry = key;
          return sent;
        }
        batch.add(text);
      }
      key = undefined;
    }
    if (!batch.empty) {
      this.send(peer, batch.take());
      sent++;
    }
    this.passes.get(peer)!.delete(name);
    return sent;
  }

  private sendAll(payload: Buffer): void {
    for (const peer of this.deps.peers) this.send(peer, payload);
  }

  private send(peer: string, payload: Buffer): void {
    this.counts.sent++;
    this.deps.send(peer, payload);
  }
}
