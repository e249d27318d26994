// Refused datagrams, counted by reason: totals since start (for /status and /metrics) and a
// summary of those refused since the last one, written at most once per interval however many
// arrive, so that a flood of bad datagrams costs counters, never journal lines.

import type { Clock } from "../clock.js";
import type { Emit } from "../events.js";
import { Throttle } from "../throttle.js";
import { REJECT_REASONS, type RejectReason } from "./admit.js";

function zeroCounts(): Record<RejectReason, number> {
  return Object.fromEntries(REJECT_REASONS.map((r) => [r, 0])) as Record<RejectReason, number>;
}

export class Rejections {
  /** Since start, by reason. */
  readonly total = zeroCounts();
  private pending = zeroCounts();
  private pendingTotal = 0;
  private readonly summary: Throttle;

  constructor(
    clock: Clock,
    private readonly emit: Emit,
    /** The summary's period: the fleet's default interval, read when a summary is due. */
    private readonly windowMs: () => number,
  ) {
    this.summary = new Throttle(clock, windowMs, () => this.report());
  }

  count(reason: RejectReason): void {
    this.total[reason]++;
    this.pending[reason]++;
    this.pendingTotal++;
    this.summary.trigger();
  }

  private report(): void {
    const counts: Record<string, number> = {};
    for (const reason of REJECT_REASONS) if (this.pending[reason] > 0) counts[reason] = this.pending[reason];
    this.emit("datagrams.rejected", { counts, total: this.pendingTotal, windowMs: this.windowMs() });
    this.pending = zeroCounts();
    this.pendingTotal = 0;
  }

  /** At stop: the summary of what is pending goes out now. */
  flush(): void {
    this.summary.cancel();
    if (this.pendingTotal > 0) this.report();
  }
}
