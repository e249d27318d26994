// Every read of time and every timer goes through a Clock, so that tests can drive time.
// Decisions use monoMs() (monotonic: an NTP step moves nothing); wallMs() is for humans only,
// in events and status output.

import { performance } from "node:perf_hooks";

export interface Timer {
  unref?(): void;
}

export interface Clock {
  /** Monotonic milliseconds, fractional; only differences are meaningful. */
  monoMs(): number;
  /** Epoch milliseconds; may jump. Display only. */
  wallMs(): number;
  setTimeout(callback: () => void, delayMs: number): Timer;
  clearTimeout(timer: Timer): void;
  /** Runs `callback` after pending I/O (e.g. queued datagrams) has been handled. */
  setImmediate(callback: () => void): void;
}

export const systemClock: Clock = {
  monoMs: () => performance.now(),
  wallMs: () => Date.now(),
  setTimeout: (callback, delayMs) => setTimeout(callback, delayMs),
  clearTimeout: (timer) => clearTimeout(timer as NodeJS.Timeout),
  setImmediate: (callback) => void setImmediate(callback),
};

/** A wall clock that moves by less than this against the monotonic one has not stepped. */
export const WALL_STEP_MS = 5;

/**
 * Epoch milliseconds of monotonic instants, with one offset between the clocks that is re-taken
 * only when the wall clock steps by more than WALL_STEP_MS: the same instant reads the same
 * every time, though the two clocks tick apart (integer Date.now(), fractional monotonic time).
 */
export class WallTime {
  private offsetMs: number;

  constructor(private readonly clock: Clock) {
    this.offsetMs = clock.wallMs() - clock.monoMs();
  }

  of(monoMs: number): number {
    const offsetMs = this.clock.wallMs() - this.clock.monoMs();
    if (Math.abs(offsetMs - this.offsetMs) > WALL_STEP_MS) this.offsetMs = offsetMs;
    return Math.round(monoMs + this.offsetMs);
  }
}
