// A map that the monitors of a cluster keep alike: each holds a copy, changes it locally, and
// takes the others' changes through the sync engine (sync.ts), merging with the codec's `wins`,
// so that any two copies that have seen the same records hold the same. It keeps an
// order-independent digest of itself up to date at every change, so that two copies are compared
// by one string. Without a cluster it is simply a map: no change ever comes from a peer. What
// only the engine uses is keyed by symbols, off the owner's interface.

import { createHash } from "node:crypto";
import { HbError } from "../errors.js";
import { MAX_SYNC_PAYLOAD_BYTES, isId } from "../wire/protocol.js";
import { recordFits, recordText } from "../wire/sync-payload.js";

export interface ReplicaCodec<V> {
  /**
   * Whether `a` should replace `b` when both are known for one key (must be a total,
   * deterministic order, the same on every monitor).
   */
  wins(a: V, b: V): boolean;
  /** JSON-able; the same value gives the same JSON on every monitor. */
  encode(v: V): unknown;
  /** null: refused (counted). */
  decode(raw: unknown): V | null;
  /** Optional: records past this are dropped everywhere and not taken back from a peer. */
  keep?(v: V, wallMs: number): boolean;
}

/** A replica's name: what the monitors know it by (an id of up to 32 characters). */
export const MAX_REPLICA_NAME_BYTES = 32;

/** What became of a record that came from a peer. */
export type Taken = "taken" | "kept" | "refused" | "expired";

/** A digest, or how one moved: 128 bits as four words. */
export type DigestWords = Uint32Array;

/** How the sync engine follows a replica's local changes (not those taken from a peer). */
export interface ReplicaLink {
  /** After a set (`key`, to push to the peers) or a record pruned (null): how the digest moved. */
  changed(key: string | null, delta: DigestWords): void;
}

/** The sync engine's side of a replica, kept off its owner's interface. */
export const kLink = Symbol("link");
export const kTake = Symbol("take");
export const kText = Symbol("text");
export const kPrune = Symbol("prune");

/** A record's share of the digest: the first 128 bits of SHA-256 of its text, as four words. */
function hashOf(text: string): DigestWords {
  const hash = createHash("sha256").update(text).digest();
  return Uint32Array.of(
    hash.readUInt32BE(0),
    hash.readUInt32BE(4),
    hash.readUInt32BE(8),
    hash.readUInt32BE(12),
  );
}

/** `into` ^= `words`. */
export function xorDigest(into: DigestWords, words: DigestWords): void {
  for (let i = 0; i < 4; i++) into[i] = into[i]! ^ words[i]!;
}

/** 32 hex digits. */
export function digestText(words: DigestWords): string {
  let hex = "";
  for (const word of words) hex += word.toString(16).padStart(8, "0");
  return hex;
}

export class Replica<V> {
  /** Told of every change taken from a peer (after merging): key, new value, old value. */
  onChange: ((key: string, value: V, old: V | undefined) => void) | undefined = undefined;
  private readonly values = new Map<string, V>();
  /** The XOR of every record's hash: adding and removing a record are the same O(1) step. */
  private readonly sum = new Uint32Array(4);
  private link: ReplicaLink | undefined;

  constructor(
    readonly name: string,
    private readonly codec: ReplicaCodec<V>,
  ) {
    if (!isId(name, MAX_REPLICA_NAME_BYTES))
      throw new HbError("HB_ERR_USAGE", `a replica's name must be 1-32 of [A-Za-z0-9._-]: "${name}"`);
  }

  get(key: string): V | undefined {
    return this.values.get(key);
  }

  entries(): IterableIterator<[string, V]> {
    return this.values.entries();
  }

  get size(): number {
    return this.values.size;
  }

  /** Whether a record can be shared: it must fit one sync datagram, whatever the monitors' ids. */
  fits(key: string, value: V): boolean {
    return recordFits(this.name, recordText(key, this.codec.encode(value)));
  }

  /**
   * A local change: stored (if it wins over what is there) and sent to the peers soon. A record
   * that does not fit one sync datagram is refused with HB_ERR_USAGE, and nothing changes.
   */
  set(key: string, value: V): void {
    const text = recordText(key, this.codec.encode(value));
    if (!recordFits(this.name, text))
      throw new HbError(
        "HB_ERR_USAGE",
        `${this.name} ${key}: ${Buffer.byteLength(text)} bytes, too large to share with the other ` +
          `monitors (a sync datagram carries ${MAX_SYNC_PAYLOAD_BYTES})`,
      );
    const old = this.values.get(key);
    if (old !== undefined && !this.codec.wins(value, old)) return;
    const delta = this.store(key, value, text, old);
    if (delta !== null) this.link?.changed(key, delta);
  }

  /** Drops records that `keep` refuses now (called by the owner, e.g. hourly). */
  prune(wallMs: number): void {
    this[kPrune](wallMs);
  }

  /** A digest of the whole map (order-independent, maintained incrementally: O(1) per change). */
  digest(): string {
    return digestText(this.sum);
  }

  /** How the digest moved; null when `value` is what is stored already (same text). */
  private store(key: string, value: V, text: string, old: V | undefined): DigestWords | null {
    const delta = hashOf(text);
    if (old !== undefined) {
      xorDigest(delta, hashOf(recordText(key, this.codec.encode(old))));
      if (delta.every((word) => word === 0)) return null;
    }
    xorDigest(this.sum, delta);
    this.values.set(key, value);
    return delta;
  }

  /** The sync engine is told of every local change (see ReplicaLink). */
  [kLink](link: ReplicaLink): void {
    if (this.link !== undefined) throw new HbError("HB_ERR_USAGE", `replica ${this.name} is shared already`);
    this.link = link;
  }

  /** A record from a peer, merged as a local change would be, but told to onChange. */
  [kTake](key: string, raw: unknown, wallMs: number): Taken {
    const { codec } = this;
    let value: V | null;
    let text: string;
    try {
      value = codec.decode(raw);
      if (value === null) return "refused";
      if (codec.keep !== undefined && !codec.keep(value, wallMs)) return "expired";
      text = recordText(key, codec.encode(value));
    } catch {
      return "refused";
    }
    if (!recordFits(this.name, text)) return "refused";
    const old = this.values.get(key);
    if (old !== undefined && !codec.wins(value, old)) return "kept";
    if (this.store(key, value, text, old) === null) return "kept";
    this.onChange?.(key, value, old);
    return "taken";
  }

  /** The text a record travels as; undefined when the key is not (or no longer) here. */
  [kText](key: string): string | undefined {
    const value = this.values.get(key);
    return value === undefined ? undefined : recordText(key, this.codec.encode(value));
  }

  /** prune(), for the sync engine too: it drops what has expired before it sends a copy. */
  [kPrune](wallMs: number): void {
    const { codec } = this;
    if (codec.keep === undefined) return;
    for (const [key, value] of this.values) {
      if (codec.keep(value, wallMs)) continue;
      const delta = hashOf(recordText(key, codec.encode(value)));
      xorDigest(this.sum, delta);
      this.values.delete(key);
      this.link?.changed(null, delta);
    }
  }
}
