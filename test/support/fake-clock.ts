// A Clock driven by the test: timers fire exactly at their instant (in order), immediates run
// after the timers of that instant, and the wall clock can be jumped independently. With
// `{ pollPhase: true }` it turns as Node's event loop does instead, and I/O can be scheduled
// (io()): a turn runs the timers due by its instant, then the I/O ready by then, then the
// immediates queued before it (what those queue runs in the next turn, at the same instant).
import type { Clock, Timer } from "../../src/clock.js";
import { READS_PER_TURN } from "../../src/wire/udp.js";

interface Pending extends Timer {
  at: number;
  seq: number;
  callback: () => void;
  cancelled: boolean;
}

interface Io {
  at: number;
  callback: () => void;
}

export class FakeClock implements Clock {
  private mono: number;
  private wallOffset = 1_800_000_000_000;
  private seq = 0;
  private timers: Pending[] = [];
  private immediates: (() => void)[] = [];
  private readonly pollPhase: boolean;
  /** I/O scheduled with io(), by when it is ready (in the order it was scheduled at a tie). */
  private ios: Io[] = [];
  /** How many timer callbacks have run (to show that an idle monitor does not wake up). */
  fired = 0;

  constructor(startMs = 1000, options: { pollPhase?: boolean } = {}) {
    this.mono = startMs;
    this.pollPhase = options.pollPhase ?? false;
  }

  monoMs(): number {
    return this.mono;
  }
  wallMs(): number {
    return this.wallOffset + this.mono;
  }
  /** An NTP step: the wall clock jumps, the monotonic clock does not. */
  jumpWall(deltaMs: number): void {
    this.wallOffset += deltaMs;
  }
  setTimeout(callback: () => void, delayMs: number): Timer {
    const timer: Pending = {
      at: this.mono + Math.max(1, delayMs),
      seq: this.seq++,
      callback,
      cancelled: false,
    };
    this.timers.push(timer);
    return timer;
  }
  clearTimeout(timer: Timer): void {
    (timer as Pending).cancelled = true;
  }
  setImmediate(callback: () => void): void {
    this.immediates.push(callback);
  }
  get pendingTimers(): number {
    return this.timers.filter((t) => !t.cancelled).length;
  }

  /**
   * I/O ready at `atMs` (a datagram arriving): `callback` runs in the poll phase of the first
   * turn at or after it, after the timers due then and before the immediates they queued. A turn
   * runs at most READS_PER_TURN of them, as node:dgram reads a socket (a monitor has one).
   */
  io(atMs: number, callback: () => void): void {
    if (!this.pollPhase) throw new Error("FakeClock: io() needs { pollPhase: true }");
    let i = this.ios.length;
    while (i > 0 && this.ios[i - 1]!.at > atMs) i--;
    this.ios.splice(i, 0, { at: atMs, callback });
  }

  runImmediates(): void {
    while (this.immediates.length > 0) this.immediates.shift()!();
  }

  /** Moves time forward to `targetMs`, firing every timer due on the way at its own instant. */
  advanceTo(targetMs: number): void {
    if (this.pollPhase) return this.turnTo(targetMs);
    for (;;) {
      const next = this.nextTimer(targetMs);
      if (next === undefined) break;
      this.fire(next);
      this.runImmediates();
    }
    this.mono = Math.max(this.mono, targetMs);
    this.runImmediates();
  }

  advance(deltaMs: number): void {
    this.advanceTo(this.mono + deltaMs);
  }

  /** The process was frozen: time passes and nothing runs (timers fire late, on the next advance). */
  freeze(deltaMs: number): void {
    this.mono += deltaMs;
  }

  /** The earliest timer due by `byMs`, if any. */
  private nextTimer(byMs: number): Pending | undefined {
    this.timers = this.timers.filter((t) => !t.cancelled);
    let next: Pending | undefined;
    for (const t of this.timers)
      if (t.at <= byMs && (next === undefined || t.at < next.at || (t.at === next.at && t.seq < next.seq)))
        next = t;
    return next;
  }

  private fire(timer: Pending): void {
    this.timers.splice(this.timers.indexOf(timer), 1);
    this.mono = Math.max(this.mono, timer.at);
    this.fired++;
    timer.callback();
  }

  /** Turns the loop at each instant up to `targetMs` at which something is due. */
  private turnTo(targetMs: number): void {
    for (;;) {
      if (this.immediates.length === 0) {
        const next = Math.min(
          this.nextTimer(targetMs)?.at ?? Number.POSITIVE_INFINITY,
          this.ios[0]?.at ?? Number.POSITIVE_INFINITY,
        );
        if (next > targetMs) break;
        this.mono = Math.max(this.mono, next);
      }
      this.turn();
    }
    this.mono = Math.max(this.mono, targetMs);
  }

  private turn(): void {
    for (let next = this.nextTimer(this.mono); next !== undefined; next = this.nextTimer(this.mono))
      this.fire(next);
    for (
      let read = 0;
      read < READS_PER_TURN && this.ios[0] !== undefined && this.ios[0].at <= this.mono;
      read++
    )
      this.ios.shift()!.callback();
    const queued = this.immediates;
    this.immediates = [];
    for (const callback of queued) callback();
  }
}
