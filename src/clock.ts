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

/** Epoch milliseconds of a monotonic instant, using the current offset between the clocks. */
export function toWallMs(clock: Clock, monoMs: number): number {
  return Math.round(clock.wallMs() - (clock.monoMs() - monoMs));
}
