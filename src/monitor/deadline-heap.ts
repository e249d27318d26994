// A binary min-heap of (deadline, item) pairs in two parallel arrays, so pushing allocates
// nothing once the arrays have grown. Entries may go stale; the detector checks them on pop.

export class DeadlineHeap<T> {
  private readonly keys: number[] = [];
  private readonly items: T[] = [];

  get size(): number {
    return this.keys.length;
  }

  clear(): void {
    this.keys.length = 0;
    this.items.length = 0;
  }

  peekKey(): number {
    return this.keys.length === 0 ? Number.POSITIVE_INFINITY : this.keys[0]!;
  }

  peekItem(): T | undefined {
    return this.items[0];
  }

  push(key: number, item: T): void {
    const keys = this.keys;
    const items = this.items;
    let i = keys.length;
    keys.push(key);
    items.push(item);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (keys[parent]! <= key) break;
      keys[i] = keys[parent]!;
      items[i] = items[parent]!;
      i = parent;
    }
    keys[i] = key;
    items[i] = item;
  }

  pop(): void {
    const keys = this.keys;
    const items = this.items;
    const lastKey = keys.pop()!;
    const lastItem = items.pop()!;
    const n = keys.length;
    if (n === 0) return;
    let i = 0;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= n) break;
      const right = left + 1;
      const child = right < n && keys[right]! < keys[left]! ? right : left;
      if (keys[child]! >= lastKey) break;
      keys[i] = keys[child]!;
      items[i] = items[child]!;
      i = child;
    }
    keys[i] = lastKey;
    items[i] = lastItem;
  }
}

/**
 * A binary min-heap of slots by deadline that knows where each slot is, so that a slot's key
 * moves (a φ node's next deadline after each heartbeat) or the slot leaves in O(log n), and the
 * heap holds each slot at most once: no stale entries, and no allocation once grown.
 */
export class SlotHeap {
  private keys = new Float64Array(64);
  private slots = new Int32Array(64);
  /** Per slot: its index in the heap, or -1. */
  private pos = new Int32Array(0);
  size = 0;

  has(slot: number): boolean {
    return slot < this.pos.length && this.pos[slot]! >= 0;
  }

  peekKey(): number {
    return this.size === 0 ? Number.POSITIVE_INFINITY : this.keys[0]!;
  }

  /** The slot with the earliest deadline, or -1. */
  peekSlot(): number {
    return this.size === 0 ? -1 : this.slots[0]!;
  }

  /** Puts `slot` in at `key`, or moves it there. */
  set(slot: number, key: number): void {
    if (slot >= this.pos.length) {
      const pos = new Int32Array(Math.max(1024, Math.ceil((slot + 1) * 1.5))).fill(-1);
      pos.set(this.pos);
      this.pos = pos;
    }
    let i = this.pos[slot]!;
    if (i < 0) {
      if (this.size === this.keys.length) {
        const keys = new Float64Array(this.size * 2);
        keys.set(this.keys);
        this.keys = keys;
        const slots = new Int32Array(this.size * 2);
        slots.set(this.slots);
        this.slots = slots;
      }
      i = this.size++;
      this.slots[i] = slot;
      this.pos[slot] = i;
      this.keys[i] = key;
      this.up(i);
      return;
    }
    const old = this.keys[i]!;
    this.keys[i] = key;
    if (key < old) this.up(i);
    else this.down(i);
  }

  delete(slot: number): void {
    if (!this.has(slot)) return;
    const i = this.pos[slot]!;
    this.pos[slot] = -1;
    const last = --this.size;
    if (i === last) return;
    const key = this.keys[last]!;
    const moved = this.slots[last]!;
    const old = this.keys[i]!;
    this.keys[i] = key;
    this.slots[i] = moved;
    this.pos[moved] = i;
    if (key < old) this.up(i);
    else this.down(i);
  }

  clear(): void {
    for (let i = 0; i < this.size; i++) this.pos[this.slots[i]!] = -1;
    this.size = 0;
  }

  /** Every slot in the heap, in heap order. */
  members(): Int32Array {
    return this.slots.slice(0, this.size);
  }

  private up(i: number): void {
    const { keys, slots, pos } = this;
    const key = keys[i]!;
    const slot = slots[i]!;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (keys[parent]! <= key) break;
      keys[i] = keys[parent]!;
      slots[i] = slots[parent]!;
      pos[slots[i]!] = i;
      i = parent;
    }
    keys[i] = key;
    slots[i] = slot;
    pos[slot] = i;
  }

  private down(i: number): void {
    const { keys, slots, pos } = this;
    const n = this.size;
    const key = keys[i]!;
    const slot = slots[i]!;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= n) break;
      const right = left + 1;
      const child = right < n && keys[right]! < keys[left]! ? right : left;
      if (keys[child]! >= key) break;
      keys[i] = keys[child]!;
      slots[i] = slots[child]!;
      pos[slots[i]!] = i;
      i = child;
    }
    keys[i] = key;
    slots[i] = slot;
    pos[slot] = i;
  }
}
