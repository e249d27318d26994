// The clock a replay runs the monitor on: time moves only when the replay says so. Timers fire
// exactly at their instant, in the order they were set, each followed by the immediates it
// queued (as the test suite's FakeClock does); a stall moves time on without running anything,
// so that the monitor meets the late timer it would have met after a real freeze.

import type { Clock, Timer } from "../clock.js";

interface Pending extends Timer {
  readonly at: number;
  readonly seq: number;
  readonly callback: () => void;
  cancelled: boolean;
}

function before(a: Pending, b: Pending): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq);
}

export class VirtualClock implements Clock {
  private mono: number;
  private readonly wallOffsetMs: number;
  private seq = 0;
  /** A binary min-heap by (at, seq); cancelled timers stay until they reach the top. */
  private readonly heap: Pending[] = [];
  private immediates: (() => void)[] = [];

  constructor(startMs: number, wallAtStartMs = 0) {
    this.mono = startMs;
    this.wallOffsetMs = wallAtStartMs - startMs;
  }

  monoMs(): number {
    return this.mono;
  }

  wallMs(): number {
    return this.wallOffsetMs + this.mono;
  }

  setTimeout(callback: () => void, delayMs: number): Timer {
    // As Node does: a delay below 1 ms is 1 ms.
    const timer: Pending = {
      at: this.mono + Math.max(1, delayMs),
      seq: this.seq++,
      callback,
      cancelled: false,
    };
    this.push(timer);
    return timer;
  }

  clearTimeout(timer: Timer): void {
    (timer as Pending).cancelled = true;
  }

  setImmediate(callback: () => void): void {
    this.immediates.push(callback);
  }

  /** Moves time forward to `targetMs`, firing every timer due on the way at its own instant. */
  advanceTo(targetMs: number): void {
    const heap = this.heap;
    for (;;) {
      let next = heap[0];
      while (next !== undefined && next.cancelled) {
        this.pop();
        next = heap[0];
      }
      if (next === undefined || next.at > targetMs) break;
      this.pop();
      if (next.at > this.mono) this.mono = next.at;
      next.callback();
      this.runImmediates();
    }
    if (targetMs > this.mono) this.mono = targetMs;
    this.runImmediates();
  }

  /** The monitor could not run until `toMs`: time jumps there and nothing fires on the way. */
  freezeTo(toMs: number): void {
    if (toMs > this.mono) this.mono = toMs;
  }

  private runImmediates(): void {
    while (this.immediates.length > 0) {
      const queued = this.immediates;
      this.immediates = [];
      for (const callback of queued) callback();
    }
  }

  private push(timer: Pending): void {
    const heap = this.heap;
    let i = heap.length;
    heap.push(timer);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(timer, heap[parent]!)) break;
      heap[i] = heap[parent]!;
      i = parent;
    }
    heap[i] = timer;
  }

  private pop(): void {
    const heap = this.heap;
    const last = heap.pop()!;
    const n = heap.length;
    if (n === 0) return;
    let i = 0;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= n) break;
      const right = left + 1;
      const child = right < n && before(heap[right]!, heap[left]!) ? right : left;
      if (!before(heap[child]!, last)) break;
      heap[i] = heap[child]!;
      i = child;
    }
    heap[i] = last;
  }
}
