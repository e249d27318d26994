// What the monitor keeps per node, as a table of typed-array columns indexed by slot: last
// arrival, deadline, incarnation, sequence, counters, state codes and list links. No object per
// node (a million nodes cost typed arrays, not a million objects with boxed numbers), and the
// doubly-linked deadline lists are links between slots, so a heartbeat moves its node to the
// tail of a list in O(1) without allocating. Sender addresses are interned (fleets share a few).

import { IdIndex } from "./id-index.js";

export const NEVER = Number.NEGATIVE_INFINITY;
export const NONE = -1;

/** State codes: indexes into STATES (states.ts), the one list of states. */
export const S_NEW = 0;
export const S_UP = 1;
export const S_LATE = 2;
export const S_DOWN = 3;
export const S_LEFT = 4;
export const S_PAUSED = 5;

export const F_EXPECTED = 1;
export const F_PAUSED = 2;
export const F_LEFT = 4;
/** Heard with a verified tag: under `auth: optional` it may not fall back to unsigned datagrams. */
export const F_SIGNED = 8;
/** Changing state too often: all but its downs and returns from down are kept quiet until it settles. */
export const F_FLAPPING = 16;
/** The last datagram accepted was unnumbered (`hb send`): its sequence is a clock in ms. */
export const F_UNNUMBERED = 32;

/** A doubly-linked list of slots; the links live in the table. */
export class SlotList {
  head = NONE;
  tail = NONE;
  size = 0;
}

const INITIAL_CAPACITY = 1024;

type Column = Float64Array | Float32Array | Int32Array | Uint32Array | Uint16Array | Uint8Array;

/** `column` copied into a new one of the same kind and `length` (longer: the rest is 0). */
export function resized<T extends Column>(column: T, length: number): T {
  const next = new (column.constructor as new (length: number) => T)(length);
  next.set(column);
  return next;
}

/** A 16-bit column as a 32-bit one, once a value outgrows it. */
function widen(column: Uint16Array): Uint32Array {
  const wide = new Uint32Array(column.length);
  wide.set(column);
  return wide;
}

export class NodeTable {
  capacity = 0;
  /** Changes whenever a node is added or deleted (status keeps its sorted order until then). */
  generation = 0;
  readonly ids: (string | undefined)[] = [];
  readonly index = new IdIndex(this.ids);
  private readonly free: number[] = [];
  private readonly addrs: string[] = [];
  private readonly addrIndex = new Map<string, number>();

  lastSeen = new Float64Array(0);
  /** Expected and unheard: down at this instant; unlisted and down or left: forgotten at it. */
  until = new Float64Array(0);
  /** When the node was last reported down (its deadline then), for `downMs` when it returns. */
  downAt = new Float64Array(0);
  /** Flap damping: when the current window of changes began (while flapping: the last change). */
  flapStart = new Float64Array(0);
  flapCount = new Uint8Array(0);
  incarnation = new Float64Array(0);
  sequence = new Float64Array(0);
  prev = new Int32Array(0);
  next = new Int32Array(0);
  /** Doubles, exact to 2^53: one gap of 2^32 datagrams would wrap a 32-bit counter. */
  received = new Float64Array(0);
  lost = new Float64Array(0);
  /** 16 bits until some value needs more (see widen()): two bytes a node saved in every fleet. */
  restarts: Uint16Array | Uint32Array = new Uint16Array(0);
  group: Uint16Array | Uint32Array = new Uint16Array(0);
  fromAddr = new Int32Array(0);
  fromPort = new Uint16Array(0);
  reported = new Uint8Array(0);
  flags = new Uint8Array(0);
  /** The list a slot is in: 0 none, else the owner's code for it. */
  list = new Uint8Array(0);
  /**
   * Arrival statistics (arrivals.ts), 16 bytes a node: the inter-arrival mean and variance and
   * the p99 gap (recent, exponentially weighted), and the largest gap of this span of gaps and
   * of the one before, two 16-bit codes in one word.
   */
  gapMean = new Float32Array(0);
  gapVar = new Float32Array(0);
  gapP99 = new Float32Array(0);
  gapMax = new Uint32Array(0);

  constructor() {
    this.grow(INITIAL_CAPACITY);
  }

  get size(): number {
    return this.index.size;
  }

  /** Every slot that holds a node, in slot order. */
  occupied(): number[] {
    const slots: number[] = [];
    for (let slot = 0; slot < this.capacity; slot++) if (this.ids[slot] !== undefined) slots.push(slot);
    return slots;
  }

  private grow(capacity: number): void {
    this.lastSeen = resized(this.lastSeen, capacity);
    this.until = resized(this.until, capacity);
    this.downAt = resized(this.downAt, capacity);
    this.flapStart = resized(this.flapStart, capacity);
    this.flapCount = resized(this.flapCount, capacity);
    this.incarnation = resized(this.incarnation, capacity);
    this.sequence = resized(this.sequence, capacity);
    this.prev = resized(this.prev, capacity);
    this.next = resized(this.next, capacity);
    this.received = resized(this.received, capacity);
    this.lost = resized(this.lost, capacity);
    this.restarts = resized(this.restarts, capacity);
    this.group = resized(this.group, capacity);
    this.fromAddr = resized(this.fromAddr, capacity);
    this.fromPort = resized(this.fromPort, capacity);
    this.reported = resized(this.reported, capacity);
    this.flags = resized(this.flags, capacity);
    this.list = resized(this.list, capacity);
    this.gapMean = resized(this.gapMean, capacity);
    this.gapVar = resized(this.gapVar, capacity);
    this.gapP99 = resized(this.gapP99, capacity);
    this.gapMax = resized(this.gapMax, capacity);
    for (let slot = capacity - 1; slot >= this.capacity; slot--) this.free.push(slot);
    this.capacity = capacity;
  }

  /** A fresh slot for `id`, never heard, in no list. Columns may be reallocated: re-read them. */
  add(id: string, group: number, flags: number): number {
    return this.claim(this.reserve(group, flags), id);
  }

  /**
   * A fresh slot that belongs to no node yet: invisible (no id, not in the index) until claim()
   * gives it one, or release() returns it. A reload prepares the slots of its new nodes so.
   */
  reserve(group: number, flags: number): number {
    if (this.free.length === 0) this.grow(Math.ceil(this.capacity * 1.5));
    const slot = this.free.pop()!;
    this.lastSeen[slot] = NEVER;
    this.until[slot] = NEVER;
    this.downAt[slot] = NEVER;
    this.flapStart[slot] = NEVER;
    this.flapCount[slot] = 0;
    this.incarnation[slot] = -1;
    this.sequence[slot] = -1;
    this.prev[slot] = this.next[slot] = NONE;
    this.received[slot] = this.lost[slot] = this.restarts[slot] = 0;
    this.setGroup(slot, group);
    this.fromAddr[slot] = NONE;
    this.fromPort[slot] = 0;
    this.reported[slot] = S_NEW;
    this.flags[slot] = flags;
    this.list[slot] = 0;
    this.gapMean[slot] = this.gapVar[slot] = this.gapP99[slot] = 0;
    this.gapMax[slot] = 0;
    return slot;
  }

  setGroup(slot: number, group: number): void {
    if (group > 0xffff && this.group instanceof Uint16Array) this.group = widen(this.group);
    this.group[slot] = group;
  }

  /** One more restart of `slot` (a count that saturates at 2^32 − 1). */
  countRestart(slot: number): void {
    const next = this.restarts[slot]! + 1;
    if (next > 0xffff && this.restarts instanceof Uint16Array) this.restarts = widen(this.restarts);
    if (next <= 0xffffffff) this.restarts[slot] = next;
  }

  /** Gives a reserved slot its id (`hash`: the id's, from index.hashOfString, if known). */
  claim(slot: number, id: string, hash?: number): number {
    this.generation++;
    this.ids[slot] = id;
    this.index.insert(slot, hash);
    return slot;
  }

  release(slot: number): void {
    this.free.push(slot);
  }

  /** Forgets a slot; it must be in no list. */
  delete(slot: number): void {
    this.index.remove(slot);
    this.generation++;
    this.ids[slot] = undefined;
    this.free.push(slot);
  }

  setFrom(slot: number, address: string, port: number): void {
    let addr = this.addrIndex.get(address);
    if (addr === undefined) {
      addr = this.addrs.length;
      this.addrs.push(address);
      this.addrIndex.set(address, addr);
    }
    this.fromAddr[slot] = addr;
    this.fromPort[slot] = port;
  }

  /** "address:port" where the node was last heard at a transition, or null. */
  from(slot: number): string | null {
    const addr = this.fromAddr[slot]!;
    if (addr === NONE) return null;
    const address = this.addrs[addr]!;
    return address.includes(":")
      ? `[${address}]:${this.fromPort[slot]}`
      : `${address}:${this.fromPort[slot]}`;
  }

  /** Appends `slot` to `target` (code `code`), taking it out of `current` first if it is in one. */
  push(target: SlotList, code: number, slot: number, current: SlotList | null): void {
    if (current !== null) this.unlink(current, slot);
    this.prev[slot] = target.tail;
    this.next[slot] = NONE;
    if (target.tail === NONE) target.head = slot;
    else this.next[target.tail] = slot;
    target.tail = slot;
    target.size++;
    this.list[slot] = code;
  }

  unlink(list: SlotList, slot: number): void {
    const prev = this.prev[slot]!;
    const next = this.next[slot]!;
    if (prev === NONE) list.head = next;
    else this.next[prev] = next;
    if (next === NONE) list.tail = prev;
    else this.prev[next] = prev;
    this.prev[slot] = this.next[slot] = NONE;
    this.list[slot] = 0;
    list.size--;
  }
}
