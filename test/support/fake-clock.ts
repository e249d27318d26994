// A Clock driven by the test: timers fire exactly at their instant (in order), immediates run
// after the timers of that instant, and the wall clock can be jumped independently.
import type { Clock, Timer } from "../../src/clock.js";

interface Pending extends Timer {
  at: number;
  seq: number;
  callback: () => void;
  cancelled: boolean;
}

export class FakeClock implements Clock {
  private mono: number;
  private wallOffset = 1_800_000_000_000;
  private seq = 0;
  private timers: Pending[] = [];
  private immediates: (() => void)[] = [];
  /** How many timer callbacks have run (to show that an idle monitor does not wake up). */
  fired = 0;

  constructor(startMs = 1000) {
    this.mono = startMs;
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

  runImmediates(): void {
    while (this.immediates.length > 0) this.immediates.shift()!();
  }

  /** Moves time forward to `targetMs`, firing every timer due on the way at its own instant. */
  advanceTo(targetMs: number): void {
    for (;;) {
      this.timers = this.timers.filter((t) => !t.cancelled);
      let next: Pending | undefined;
      for (const t of this.timers)
        if (
          t.at <= targetMs &&
          (next === undefined || t.at < next.at || (t.at === next.at && t.seq < next.seq))
        )
          next = t;
      if (next === undefined) break;
      this.timers.splice(this.timers.indexOf(next), 1);
      this.mono = Math.max(this.mono, next.at);
      this.fired++;
      next.callback();
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
}
