// The clock a replay runs the monitor on: time moves only when the replay says so, a turn of
// Node's event loop at a time. A turn runs the timers due by its instant (in the order they were
// set), then its poll phase (the I/O ready by then: a replay's rows), then the immediates queued
// before it; what those queue runs in the next turn, at the same instant. So a timer that starts
// a judgement (a `setImmediate`) meets the datagrams that arrived by its instant, as it does
// live. A stall moves time on without running anything: the monitor then meets the late timer it
// would have met after a real freeze, and reads what queued up after it.

import type { Clock, Timer } from "../clock.js";

/** The I/O a turn's poll phase reads: what is ready by the turn's instant. */
export interface PollSource {
  /** When the next of it is ready (Infinity: never). */
  nextMs(): number;
  /**
   * Reads everything that is ready by `nowMs`. node:dgram reads at most READS_PER_TURN a turn,
   * and the judge turns the loop until a turn reads fewer; on a clock that stands still from
   * turn to turn, that takes in the same datagrams before judging, at the same instant.
   */
  read(nowMs: number): void;
}

const NO_IO: PollSource = { nextMs: () => Number.POSITIVE_INFINITY, read: () => {} };

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
  /** The queue the check phase runs from, swapped with `immediates`: no array per turn. */
  private checking: (() => void)[] = [];
  private source: PollSource = NO_IO;

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

  /** Every turn's poll phase reads `source` (one source: a replayed monitor has one socket). */
  setPollSource(source: PollSource): void {
    this.source = source;
  }

  /** Moves time forward to `targetMs`, a turn at each instant at which something is due. */
  advanceTo(targetMs: number): void {
    for (;;) {
      if (this.immediates.length === 0) {
        const next = Math.min(this.nextTimerMs(), this.source.nextMs());
        if (next > targetMs) break;
        if (next > this.mono) this.mono = next;
      }
      this.turn();
    }
    if (targetMs > this.mono) this.mono = targetMs;
  }

  /** The monitor could not run until `toMs`: time jumps there and nothing runs on the way. */
  freezeTo(toMs: number): void {
    if (toMs > this.mono) this.mono = toMs;
  }

  private turn(): void {
    const heap = this.heap;
    // A timer set by one of these is due a millisecond later at the earliest: not in this turn.
    for (let next = heap[0]; next !== undefined && next.at <= this.mono; next = heap[0]) {
      this.pop();
      if (!next.cancelled) next.callback();
    }
    this.source.read(this.mono);
    const queued = this.immediates;
    if (queued.length === 0) return;
    this.immediates = this.checking;
    for (let i = 0; i < queued.length; i++) queued[i]!();
    queued.length = 0;
    this.checking = queued;
  }

  private nextTimerMs(): number {
    const heap = this.heap;
    while (heap[0]?.cancelled === true) this.pop();
    return heap[0]?.at ?? Number.POSITIVE_INFINITY;
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
