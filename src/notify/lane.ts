// One output's lane: notices taken from its queue in batches (notices that come together, as when
// a rack goes down, go out in one call), up to MAX_PARALLEL calls at once for different nodes, and
// a node's notices never out of order: while one of them is in flight or waiting for a retry, its
// later ones wait. It hides the calls themselves: their slots, the output they run on (one
// replaced on reload is closed once its calls have ended) and the stop.

import type { Clock, Timer } from "../clock.js";
import type { NotifySpec } from "../config/types.js";
import type { Emit } from "../events.js";
import type { Notice } from "./notice.js";
import { wanted } from "./notices.js";
import { errorText, failed, type Outcome, type Output, type OutputKind } from "./output.js";
import { NoticeQueue, type Pending } from "./queue.js";
import { FailureReport, Retries, type Call } from "./retry.js";

/** A lone notice waits this long for others to go in the same call. */
export const BATCH_WAIT_MS = 250;
/** Most notices in one call (one hook run, one request). */
export const MAX_BATCH = 1000;
/** Most calls in flight at once per output. */
export const MAX_PARALLEL = 4;
/** After an output is closed, how long its calls in flight may take to end. */
const CLOSED_GRACE_MS = 1000;

export interface LaneStats {
  readonly output: string;
  readonly kind: OutputKind;
  /** Notices waiting, and in calls in flight or waiting for a retry. */
  readonly queued: number;
  readonly inFlight: number;
  readonly delivered: number;
  readonly retried: number;
  readonly failed: number;
  readonly dropped: number;
}

export interface LaneDeps {
  clock: Clock;
  /** Where notify.failed and notify.dropped are written. */
  emit: Emit;
  /** [0, 1): the jitter of retries. */
  random?: () => number;
  /** Told of each call's duration (metrics). */
  observe?: (output: string, seconds: number) => void;
}

export class Lane {
  private readonly queue: NoticeQueue;
  private readonly retries: Retries;
  private readonly failures: FailureReport;
  /** Per node: its notices in calls that have not ended (in flight, or waiting for a retry). */
  private readonly busy = new Map<string, number>();
  private readonly isBusy = (key: string): boolean => this.busy.has(key);
  /** Slots taken: calls starting or in flight. */
  private running = 0;
  private inCalls = 0;
  /** Calls taken from the queue whose delivery starts on the next turn (never inside an offer). */
  private readonly starting = new Set<Call>();
  private wait: Timer | undefined;
  private pumpSoon = false;
  private readonly calls = new Set<Promise<void>>();
  /** Calls not ended per output: an output replaced on reload is closed once it has none. */
  private readonly callsOf = new Map<Output, number>();
  private readonly retired = new Set<Output>();
  private closed = false;
  private counts = { delivered: 0, retried: 0, failed: 0 };

  constructor(
    public spec: NotifySpec,
    public output: Output,
    private readonly deps: LaneDeps,
  ) {
    this.queue = new NoticeQueue(spec.name, deps.clock, deps.emit);
    this.retries = new Retries(
      deps.clock,
      () => (deps.random ?? Math.random)(),
      () => this.pump(),
    );
    this.failures = new FailureReport(spec.name, deps.clock, deps.emit);
  }

  accepts(event: string, fields: Readonly<Record<string, unknown>>): boolean {
    // A down the last speaker paged already goes again only where it is deduplicated (an alert's
    // fingerprint): a hook or a chat would say it twice.
    if (fields.alreadyPaged === true && !this.deduplicates()) return false;
    return this.output.accepts?.(event, fields) ?? wanted(this.spec.on, event, fields);
  }

  private deduplicates(): boolean {
    const spec = this.spec;
    return spec.kind === "alertmanager" || (spec.kind === "webhook" && spec.format === "alertmanager");
  }

  /** Notices waiting: in the queue, behind their node, or for a retry. What `queue` bounds. */
  private get waiting(): number {
    return this.queue.length + this.retries.notices;
  }

  offer(notice: Notice): void {
    if (this.closed) return;
    this.queue.push(notice, this.isBusy);
    if (this.waiting > this.spec.queue) {
      // A full queue goes out at once if a call can take it: only what cannot is dropped.
      this.pump();
      this.trim();
    }
    this.schedule();
  }

  /**
   * Drops the oldest waiting notices past the bound: from the queue or from behind a node, or,
   * when a call waiting for its retry is older still, that whole call.
   */
  private trim(): void {
    let excess = this.waiting - this.spec.queue;
    while (excess-- > 0) {
      const retry = this.retries.oldest();
      if (retry === undefined || retry.batch[0]!.atMs >= this.queue.oldestAtMs()) this.queue.dropOldest();
      else {
        this.retries.remove(retry);
        this.queue.countDropped(retry.batch.length);
        this.end(retry.batch);
      }
    }
  }

  /** Pumps on the next turn: an offer, made while detection emits, never starts a delivery itself. */
  private schedule(): void {
    if (this.pumpSoon) return;
    this.pumpSoon = true;
    this.deps.clock.setImmediate(() => {
      this.pumpSoon = false;
      this.pump();
    });
  }

  /** Starts every call it may: retries first, then batches of notices whose node has none in flight. */
  private pump(): void {
    while (!this.closed && this.running < MAX_PARALLEL) {
      const retry = this.retries.next();
      if (retry !== undefined) {
        this.start(retry);
        continue;
      }
      const oldest = this.queue.head(this.isBusy);
      if (oldest === undefined) return;
      const waitedMs = this.deps.clock.monoMs() - oldest.atMs;
      const full = this.queue.readyLength >= MAX_BATCH || this.waiting >= this.spec.queue;
      if (!full && waitedMs < BATCH_WAIT_MS) {
        this.wait ??= this.deps.clock.setTimeout(() => {
          this.wait = undefined;
          this.pump();
        }, BATCH_WAIT_MS - waitedMs);
        return;
      }
      const batch = this.queue.take(MAX_BATCH, this.isBusy);
      // Counted per notice, as end() uncounts them.
      for (const { key } of batch) this.busy.set(key, (this.busy.get(key) ?? 0) + 1);
      this.inCalls += batch.length;
      this.start({ batch, attempt: 1 });
    }
  }

  /** Takes a slot now; the delivery itself starts on the next turn. */
  private start(call: Call): void {
    this.running++;
    this.starting.add(call);
    this.deps.clock.setImmediate(() => {
      if (this.starting.delete(call)) this.call(call);
    });
  }

  private call({ batch, attempt }: Call): void {
    const output = this.output;
    this.callsOf.set(output, (this.callsOf.get(output) ?? 0) + 1);
    const started = this.deps.clock.monoMs();
    const notices = batch.map((p) => p.notice);
    // An output must never reject or throw; if one does, it is a failed delivery, not a crash.
    const done = Promise.resolve()
      .then(() => output.deliver(notices, attempt))
      .catch((err: unknown) => failed(false, "internal", errorText(err)))
      .then((outcome) => {
        this.calls.delete(done);
        const left = this.callsOf.get(output)! - 1;
        if (left > 0) this.callsOf.set(output, left);
        else {
          this.callsOf.delete(output);
          if (this.retired.delete(output)) void output.close();
        }
        this.deps.observe?.(this.spec.name, (this.deps.clock.monoMs() - started) / 1000);
        this.settle({ batch, attempt }, outcome);
      });
    this.calls.add(done);
  }

  private settle(call: Call, outcome: Outcome): void {
    this.running--;
    const { batch, attempt } = call;
    if (outcome.ok) {
      this.counts.delivered += batch.length;
      return this.end(batch);
    }
    if (outcome.retry && attempt < this.spec.attempts && !this.closed) {
      this.counts.retried += batch.length;
      this.retries.schedule(call);
      // The slot is free while it waits: other nodes' notices go on.
      return this.pump();
    }
    this.counts.failed += batch.length;
    this.failures.add(batch, attempt, outcome);
    this.end(batch);
  }

  /** A call has ended (delivered, failed for good, or dropped): its nodes' waiting notices may go. */
  private end(batch: readonly Pending[]): void {
    this.inCalls -= batch.length;
    for (const { key } of batch) {
      const left = this.busy.get(key)! - 1;
      if (left > 0) this.busy.set(key, left);
      else {
        this.busy.delete(key);
        this.queue.release(key);
      }
    }
    this.pump();
  }

  /**
   * A changed spec: the old output hands over what must outlive it (Output.handOver), calls in
   * flight finish on it, and it is closed once they have; the next calls use the new one.
   */
  replace(spec: NotifySpec, output: Output): void {
    const old = this.output;
    old.handOver?.(output);
    this.spec = spec;
    this.output = output;
    if (this.callsOf.has(old)) this.retired.add(old);
    else void old.close();
    this.trim();
    this.schedule();
  }

  /** Resolves when every call in flight has ended, or after `ms`. */
  private async callsEnded(ms: number): Promise<void> {
    if (this.calls.size === 0 || ms <= 0) return;
    const clock = this.deps.clock;
    let timer: Timer | undefined;
    await Promise.race([
      Promise.all(this.calls),
      new Promise<void>((resolve) => (timer = clock.setTimeout(resolve, ms))),
    ]);
    if (timer !== undefined) clock.clearTimeout(timer);
  }

  stats(): LaneStats {
    return {
      output: this.spec.name,
      kind: this.spec.kind,
      queued: this.queue.length + this.inCalls,
      inFlight: this.running,
      ...this.counts,
      dropped: this.queue.dropped,
    };
  }

  /** Stops taking notices, gives calls in flight up to `graceMs`, then cuts them off. */
  async close(graceMs: number): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.wait !== undefined) this.deps.clock.clearTimeout(this.wait);
    let waiting = this.queue.close() + this.retries.clear();
    for (const call of this.starting) waiting += call.batch.length;
    this.starting.clear();
    this.failures.close();
    await this.callsEnded(graceMs);
    // Closing an output ends its calls in flight (as failed, "closed"): they settle before the
    // report. An output that fails to is not waited for beyond a second: the monitor is stopping.
    await Promise.all([this.output.close(), ...[...this.retired].map((old) => old.close())]);
    await this.callsEnded(CLOSED_GRACE_MS);
    if (waiting > 0) this.queue.countDropped(waiting);
    this.failures.flush();
    this.queue.flush();
  }
}
