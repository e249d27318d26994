// Retries of one output's failed calls and the report of those that failed for good. A retry waits
// an exponential step with jitter; while it waits it holds no slot (other nodes' notices go on) but
// its notices count against the queue, and once due it takes the next free slot, ahead of new
// notices. Failures for good are summed into one `notify.failed` at most every FAILURE_REPORT_MS.

import type { Clock, Timer } from "../clock.js";
import type { Emit } from "../events.js";
import { Throttle } from "../throttle.js";
import type { Outcome } from "./output.js";
import type { Pending } from "./queue.js";

/** The first retry waits about this long; each next one twice as long, up to RETRY_CAP_MS. */
export const RETRY_BASE_MS = 1000;
export const RETRY_CAP_MS = 5 * 60_000;
/** `notify.failed` at most this often per output; failures in between are summed into it. */
export const FAILURE_REPORT_MS = 10_000;
/** Node ids listed in one `notify.failed`. */
const MAX_FAILED_NODES = 20;

/** A call's notices, and its attempt number. */
export interface Call {
  readonly batch: Pending[];
  readonly attempt: number;
}

/** How long attempt `attempt + 1` waits after attempt `attempt` failed; `random` in [0, 1). */
export function retryDelayMs(attempt: number, random: number): number {
  // Full-range jitter around the exponential step keeps many monitors from retrying in step.
  const stepMs = Math.min(RETRY_CAP_MS, RETRY_BASE_MS * 2 ** (attempt - 1));
  return stepMs * (0.5 + random);
}

export class Retries {
  /** Calls waiting for their retry's delay. */
  private readonly waiting = new Map<Timer, Call>();
  /** Calls whose delay has passed, waiting for a slot. */
  private readonly due: Call[] = [];
  private count = 0;

  /** `onDue`: a retry's delay has passed (a slot may take it now). */
  constructor(
    private readonly clock: Clock,
    private readonly random: () => number,
    private readonly onDue: () => void,
  ) {}

  /** Notices in calls waiting for a retry: they count against the queue. */
  get notices(): number {
    return this.count;
  }

  /** Schedules the next attempt of a call that failed and may be tried again. */
  schedule({ batch, attempt }: Call): void {
    const next = { batch, attempt: attempt + 1 };
    const timer = this.clock.setTimeout(
      () => {
        this.waiting.delete(timer);
        this.due.push(next);
        this.onDue();
      },
      retryDelayMs(attempt, this.random()),
    );
    this.waiting.set(timer, next);
    this.count += batch.length;
  }

  /** A call whose delay has passed, for the slot that is free; it no longer counts as waiting. */
  next(): Call | undefined {
    const call = this.due.shift();
    if (call !== undefined) this.count -= call.batch.length;
    return call;
  }

  /** The call waiting whose first notice is the oldest (the first such in order); undefined when none. */
  oldest(): Call | undefined {
    let oldestMs = Number.POSITIVE_INFINITY;
    let oldest: Call | undefined;
    for (const call of [...this.due, ...this.waiting.values()])
      if (call.batch[0]!.atMs < oldestMs) {
        oldestMs = call.batch[0]!.atMs;
        oldest = call;
      }
    return oldest;
  }

  /** Gives up a waiting call (it is dropped). */
  remove(call: Call): void {
    const due = this.due.indexOf(call);
    if (due >= 0) this.due.splice(due, 1);
    for (const [timer, waiting] of this.waiting)
      if (waiting === call) {
        this.clock.clearTimeout(timer);
        this.waiting.delete(timer);
      }
    this.count -= call.batch.length;
  }

  /** Gives up every waiting call; returns how many notices they held. */
  clear(): number {
    for (const timer of this.waiting.keys()) this.clock.clearTimeout(timer);
    this.waiting.clear();
    this.due.length = 0;
    const notices = this.count;
    this.count = 0;
    return notices;
  }
}

/** The calls of one output that failed for good, told to the journal in one line at most so often. */
export class FailureReport {
  private failures: {
    notices: number;
    nodes: Set<string>;
    last: Outcome & { ok: false };
    attempts: number;
  } | null = null;
  private closed = false;
  private readonly report: Throttle;

  constructor(
    private readonly output: string,
    clock: Clock,
    private readonly emit: Emit,
  ) {
    this.report = new Throttle(clock, FAILURE_REPORT_MS, () => this.reportFailures());
  }

  add(batch: readonly Pending[], attempts: number, outcome: Outcome & { ok: false }): void {
    const f = (this.failures ??= { notices: 0, nodes: new Set(), last: outcome, attempts });
    f.notices += batch.length;
    f.last = outcome;
    f.attempts = attempts;
    for (const { notice } of batch)
      if (notice.node !== null && f.nodes.size < MAX_FAILED_NODES) f.nodes.add(notice.node);
    if (!this.closed) this.report.trigger();
  }

  /** No report is scheduled from now on: what fails later is said by flush(). */
  close(): void {
    this.closed = true;
  }

  /** Reports what has not been yet, now. */
  flush(): void {
    this.report.cancel();
    this.reportFailures();
  }

  private reportFailures(): void {
    const f = this.failures;
    if (f === null) return;
    this.failures = null;
    this.emit("notify.failed", {
      output: this.output,
      reason: f.last.reason,
      detail: f.last.detail,
      attempts: f.attempts,
      notices: f.notices,
      nodes: [...f.nodes],
    });
  }
}
