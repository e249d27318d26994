// Runs an action at most once per period, always after the last trigger (trailing edge), so
// bursts of changes cost one run and the last change is never lost.

import type { Clock, Timer } from "./clock.js";

export class Throttle {
  private timer: Timer | undefined;
  private last = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly clock: Clock,
    private readonly periodMs: number | (() => number),
    private readonly action: () => void,
  ) {}

  trigger(): void {
    if (this.timer !== undefined) return;
    const period = typeof this.periodMs === "number" ? this.periodMs : this.periodMs();
    const delay = Math.max(0, this.last + period - this.clock.monoMs());
    this.timer = this.clock.setTimeout(() => {
      this.timer = undefined;
      this.last = this.clock.monoMs();
      this.action();
    }, delay);
  }

  cancel(): void {
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
  }
}
