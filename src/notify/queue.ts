// The queue of one output: the notices waiting to be delivered, in arrival order, and those held
// behind a call of their node that has not ended (the lane says which nodes are busy). Past its
// bound the oldest waiting notice is dropped, counted, and reported in one `notify.dropped` at
// most once a minute, so that an output that cannot keep up costs bounded memory and one line.

import type { Clock } from "../clock.js";
import type { Emit } from "../events.js";
import { Throttle } from "../throttle.js";
import type { Notice } from "./notice.js";

/** `notify.dropped` at most this often per output. */
export const DROP_REPORT_MS = 60_000;

export interface Pending {
  readonly notice: Notice;
  /** Notices with the same key are delivered in order: the node, or "" for the monitor's own. */
  readonly key: string;
  readonly atMs: number;
}

/** A queue with O(1) push and shift (Array.shift copies the array: 10 000 drops took seconds). */
class Deque<T> {
  private items: (T | undefined)[] = [];
  private head = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  push(item: T): void {
    this.items.push(item);
  }

  peek(): T | undefined {
    return this.items[this.head];
  }

  shift(): T | undefined {
    if (this.head === this.items.length) return undefined;
    const item = this.items[this.head];
    this.items[this.head++] = undefined;
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }

  clear(): void {
    this.items = [];
    this.head = 0;
  }
}

export class NoticeQueue {
  /** Waiting, in arrival order. A notice whose node became busy meanwhile moves to `blocked` when met. */
  private readonly ready = new Deque<Pending>();
  /** Waiting behind a call of their node that has not ended, per node, in order. */
  private readonly blocked = new Map<string, Pending[]>();
  private blockedCount = 0;
  private droppedTotal = 0;
  private droppedUnreported = 0;
  private closed = false;
  private readonly report: Throttle;

  constructor(
    private readonly output: string,
    private readonly clock: Clock,
    private readonly emit: Emit,
  ) {
    this.report = new Throttle(clock, DROP_REPORT_MS, () => this.reportDrops());
  }

  /** Notices waiting, in the queue or behind their node. */
  get length(): number {
    return this.ready.length + this.blockedCount;
  }

  /** Notices waiting that no call of their node holds back (as far as the queue knows yet). */
  get readyLength(): number {
    return this.ready.length;
  }

  /** Every notice dropped so far, reported or not. */
  get dropped(): number {
    return this.droppedTotal;
  }

  /** Adds a notice at the end; `busy`: its node has a call that has not ended, so it waits behind it. */
  push(notice: Notice, busy: (key: string) => boolean): void {
    const pending = { notice, key: notice.node ?? "", atMs: this.clock.monoMs() };
    if (busy(pending.key)) this.block(pending);
    else this.ready.push(pending);
  }

  /** The oldest notice that may go now; those met on the way whose node is busy wait behind it. */
  head(busy: (key: string) => boolean): Pending | undefined {
    while (this.ready.length > 0 && busy(this.ready.peek()!.key)) this.block(this.ready.shift()!);
    return this.ready.peek();
  }

  /**
   * Up to `max` notices for one call, in order. A node busy with an earlier call keeps its notices
   * back; one that is not may have several in the call, since they stay in order within it.
   */
  take(max: number, busy: (key: string) => boolean): Pending[] {
    const batch: Pending[] = [];
    const keys = new Set<string>();
    while (batch.length < max && this.ready.length > 0) {
      const pending = this.ready.shift()!;
      if (busy(pending.key) && !keys.has(pending.key)) this.block(pending);
      else {
        batch.push(pending);
        keys.add(pending.key);
      }
    }
    return batch;
  }

  /** The node's last call has ended: what waited behind it goes back in the queue. */
  release(key: string): void {
    const waiting = this.blocked.get(key);
    if (waiting === undefined) return;
    this.blocked.delete(key);
    this.blockedCount -= waiting.length;
    for (const pending of waiting) this.ready.push(pending);
  }

  private block(pending: Pending): void {
    const list = this.blocked.get(pending.key);
    if (list === undefined) this.blocked.set(pending.key, [pending]);
    else list.push(pending);
    this.blockedCount++;
  }

  /** When the oldest waiting notice was offered; +Infinity when none waits. */
  oldestAtMs(): number {
    return this.oldest().atMs;
  }

  private oldest(): { atMs: number; blockedKey: string | undefined } {
    let atMs = this.ready.peek()?.atMs ?? Number.POSITIVE_INFINITY;
    let blockedKey: string | undefined;
    for (const [key, list] of this.blocked) {
      if (list[0]!.atMs < atMs) {
        atMs = list[0]!.atMs;
        blockedKey = key;
      }
      break; // lists are made in arrival order: the first holds the oldest
    }
    return { atMs, blockedKey };
  }

  /** Drops the oldest waiting notice, from the queue or from behind its node. */
  dropOldest(): void {
    const { blockedKey } = this.oldest();
    if (blockedKey !== undefined) {
      const list = this.blocked.get(blockedKey)!;
      list.shift();
      this.blockedCount--;
      if (list.length === 0) this.blocked.delete(blockedKey);
      return this.countDropped(1);
    }
    if (this.ready.shift() !== undefined) this.countDropped(1);
  }

  /** Counts `count` notices as dropped (from here or elsewhere in the lane) and reports them in time. */
  countDropped(count: number): void {
    this.droppedTotal += count;
    this.droppedUnreported += count;
    if (!this.closed) this.report.trigger();
  }

  /** Empties the queue and returns how many notices it held; from now on, drops are reported by flush(). */
  close(): number {
    this.closed = true;
    const waiting = this.length;
    this.ready.clear();
    this.blocked.clear();
    this.blockedCount = 0;
    return waiting;
  }

  /** Reports what has not been yet, now. */
  flush(): void {
    this.report.cancel();
    this.reportDrops();
  }

  private reportDrops(): void {
    if (this.droppedUnreported === 0) return;
    this.emit("notify.dropped", {
      output: this.output,
      notices: this.droppedUnreported,
      windowMs: DROP_REPORT_MS,
    });
    this.droppedUnreported = 0;
  }
}
