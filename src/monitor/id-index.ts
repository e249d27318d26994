// Node ids -> slots of the node table: an open-addressing hash table (linear probing, half
// empty at most) in one Int32Array. It is looked up by a string (config, status, forget) or,
// without making one, by the id's bytes in a datagram: ids are ASCII, so both hash the same.
// The hash is HalfSipHash-2-4 under a random key drawn when the monitor starts, as the Linux
// kernel keys its own tables: ids chosen by a sender cannot be made to share a probe sequence.
// Unlike a Map, it can be sized ahead (a reload makes room before it adds 100 000 nodes).

import { randomBytes } from "node:crypto";

const EMPTY = -1;
const MIN_ENTRIES = 1024;

/** HalfSipHash-2-4 with a 32-bit result, over the bytes `buf[off..off+len)`. */
export function halfSipHash(k0: number, k1: number, buf: Uint8Array, off: number, len: number): number {
  let v0 = k0 | 0;
  let v1 = k1 | 0;
  let v2 = 0x6c796765 ^ k0;
  let v3 = 0x74656462 ^ k1;
  // One SipRound, written out twice below; a function over four locals would cost a call each.
  const end = off + (len & ~3);
  let p = off;
  for (; p < end; p += 4) {
    const m = buf[p]! | (buf[p + 1]! << 8) | (buf[p + 2]! << 16) | (buf[p + 3]! << 24);
    v3 ^= m;
    for (let r = 0; r < 2; r++) {
      v0 = (v0 + v1) | 0;
      v1 = (v1 << 5) | (v1 >>> 27);
      v1 ^= v0;
      v0 = (v0 << 16) | (v0 >>> 16);
      v2 = (v2 + v3) | 0;
      v3 = (v3 << 8) | (v3 >>> 24);
      v3 ^= v2;
      v0 = (v0 + v3) | 0;
      v3 = (v3 << 7) | (v3 >>> 25);
      v3 ^= v0;
      v2 = (v2 + v1) | 0;
      v1 = (v1 << 13) | (v1 >>> 19);
      v1 ^= v2;
      v2 = (v2 << 16) | (v2 >>> 16);
    }
    v0 ^= m;
  }
  // The last block: the remaining bytes, and the length in the top byte.
  let b = len << 24;
  const rest = len & 3;
  if (rest >= 3) b |= buf[p + 2]! << 16;
  if (rest >= 2) b |= buf[p + 1]! << 8;
  if (rest >= 1) b |= buf[p]!;
  v3 ^= b;
  for (let r = 0; r < 6; r++) {
    // Two rounds for the last block, then (after v2 ^= 0xff) four to finish.
    if (r === 2) {
      v0 ^= b;
      v2 ^= 0xff;
    }
    v0 = (v0 + v1) | 0;
    v1 = (v1 << 5) | (v1 >>> 27);
    v1 ^= v0;
    v0 = (v0 << 16) | (v0 >>> 16);
    v2 = (v2 + v3) | 0;
    v3 = (v3 << 8) | (v3 >>> 24);
    v3 ^= v2;
    v0 = (v0 + v3) | 0;
    v3 = (v3 << 7) | (v3 >>> 25);
    v3 ^= v0;
    v2 = (v2 + v1) | 0;
    v1 = (v1 << 13) | (v1 >>> 19);
    v1 ^= v2;
    v2 = (v2 << 16) | (v2 >>> 16);
  }
  return v1 ^ v3;
}

export class IdIndex {
  private readonly k0: number;
  private readonly k1: number;
  private entries = new Int32Array(MIN_ENTRIES).fill(EMPTY);
  private mask = MIN_ENTRIES - 1;
  /** Per slot, the hash of its id: growing and deleting never hash a string again. */
  private hashOf = new Int32Array(0);
  private scratch = Buffer.alloc(256);
  private count = 0;

  constructor(
    /** The table's ids by slot (read for comparisons; the table owns it). */
    private readonly ids: readonly (string | undefined)[],
    key: Uint8Array = randomBytes(8),
  ) {
    const view = new DataView(key.buffer, key.byteOffset, 8);
    this.k0 = view.getInt32(0, true);
    this.k1 = view.getInt32(4, true);
  }

  get size(): number {
    return this.count;
  }

  /** The hash of a string id, as its bytes would hash in a datagram. */
  hashOfString(id: string): number {
    if (id.length > this.scratch.length) this.scratch = Buffer.alloc(id.length * 2);
    const len = this.scratch.write(id, 0, "latin1");
    return halfSipHash(this.k0, this.k1, this.scratch, 0, len);
  }

  get(id: string): number | undefined {
    return this.getHashed(id, this.hashOfString(id));
  }

  /** get(), for an id whose hash (hashOfString) the caller already has. */
  getHashed(id: string, h: number): number | undefined {
    const { entries, mask, hashOf, ids } = this;
    for (let i = h & mask; ; i = (i + 1) & mask) {
      const slot = entries[i]!;
      if (slot === EMPTY) return undefined;
      if (hashOf[slot] === h && ids[slot] === id) return slot;
    }
  }

  /** The slot of the id whose bytes are `buf[off..off+len)`, or -1: no string is made. */
  getBytes(buf: Uint8Array, off: number, len: number): number {
    const h = halfSipHash(this.k0, this.k1, buf, off, len);
    const { entries, mask, hashOf, ids } = this;
    for (let i = h & mask; ; i = (i + 1) & mask) {
      const slot = entries[i]!;
      if (slot === EMPTY) return EMPTY;
      if (hashOf[slot] === h && sameBytes(ids[slot]!, buf, off, len)) return slot;
    }
  }

  /** Makes room for `count` ids in all without growing again. */
  reserve(count: number): void {
    let size = this.entries.length;
    while (count * 2 > size) size *= 2;
    if (size !== this.entries.length) this.rehash(size);
  }

  /** Indexes `slot` under its id (`ids[slot]`, which no other slot has), whose hash is `h`. */
  insert(slot: number, h = this.hashOfString(this.ids[slot]!)): void {
    this.reserve(this.count + 1);
    if (slot >= this.hashOf.length) {
      const grown = new Int32Array(Math.max(slot + 1, this.hashOf.length * 2, MIN_ENTRIES));
      grown.set(this.hashOf);
      this.hashOf = grown;
    }
    this.hashOf[slot] = h;
    this.place(slot, h);
    this.count++;
  }

  /** Unindexes `slot` (still holding its id's hash). */
  remove(slot: number): void {
    const { entries, mask } = this;
    let hole = this.hashOf[slot]! & mask;
    while (entries[hole] !== slot) hole = (hole + 1) & mask;
    // Backward shift: each entry after the hole that may sit in it moves up, so lookups never
    // meet a gap before their entry, and no tombstones pile up.
    for (let j = (hole + 1) & mask; entries[j] !== EMPTY; j = (j + 1) & mask) {
      const other = entries[j]!;
      const home = this.hashOf[other]! & mask;
      if (((j - home) & mask) >= ((j - hole) & mask)) {
        entries[hole] = other;
        hole = j;
      }
    }
    entries[hole] = EMPTY;
    this.count--;
  }

  private place(slot: number, h: number): void {
    const { entries, mask } = this;
    let i = h & mask;
    while (entries[i] !== EMPTY) i = (i + 1) & mask;
    entries[i] = slot;
  }

  private rehash(size: number): void {
    const old = this.entries;
    this.entries = new Int32Array(size).fill(EMPTY);
    this.mask = size - 1;
    for (let i = 0; i < old.length; i++) if (old[i] !== EMPTY) this.place(old[i]!, this.hashOf[old[i]!]!);
  }
}

function sameBytes(id: string, buf: Uint8Array, off: number, len: number): boolean {
  if (id.length !== len) return false;
  for (let i = 0; i < len; i++) if (id.charCodeAt(i) !== buf[off + i]) return false;
  return true;
}
