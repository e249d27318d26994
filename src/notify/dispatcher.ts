// The dispatcher: detection only enqueues a notice; delivery runs later, on its own, and can
// never hold up a deadline. Each output has a lane: a bounded queue (past it, the oldest notices
// are dropped, counted and reported at most once a minute), batches (notices that come together,
// as when a rack goes down, go out in one call), up to MAX_PARALLEL calls at once for different
// nodes, and retries with exponential backoff and jitter. A node's notices are never delivered
// out of order: while one of them is in flight or waiting for a retry, its later ones wait.

import type { Clock, Timer } from "../clock.js";
import type { NotifySpec } from "../config/types.js";
import type { Emit } from "../events.js";
import type { Notice } from "./notice.js";
import { wanted } from "./notices.js";
import type { Outcome, Output, OutputKind } from "./output.js";

/** A lone notice waits this long for others to go in the same call. */
export const BATCH_WAIT_MS = 250;
/** Most notices in one call (one hook run, one request). */
export const MAX_BATCH = 1000;
/** Most calls in flight at once per output. */
export const MAX_PARALLEL = 4;
/** The first retry waits about this long; each next one twice as long, up to RETRY_CAP_MS. */
export const RETRY_BASE_MS = 1000;
export const RETRY_CAP_MS = 5 * 60_000;
/** `notify.dropped` at most this often per output. */
export const DROP_REPORT_MS = 60_000;
/** `notify.failed` at most this often per output; failures in between are summed into it. */
export const FAILURE_REPORT_MS = 10_000;
/** At stop, deliveries in flight get this long to finish before they are cut off. */
export const STOP_GRACE_MS = 5000;
/** Node ids listed in one `notify.failed`. */
const MAX_FAILED_NODES = 20;

/** The events an alertmanager output needs: those that raise or end its alerts. */
const ALERT_EVENTS: ReadonlySet<string> = new Set([
  "node.down",
  "node.up",
  "node.left",
  "node.forgotten",
  "node.flapping",
  "monitor.stalled",
  "monitor.overloaded",
]);

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

export interface DispatcherDeps {
  clock: Clock;
  /** Where notify.failed and notify.dropped are written. */
  emit: Emit;
  /** Makes the output for a spec (a new one when the spec changes on reload). */
  make(spec: NotifySpec): Output;
  /** [0, 1): the jitter of retries. */
  random?: () => number;
  /** Told of each call's duration (metrics). */
  observe?: (output: string, seconds: number) => void;
}

interface Pending {
  readonly notice: Notice;
  /** Notices with the same key are delivered in order: the node, or "" for the monitor's own. */
  readonly key: string;
  readonly atMs: number;
}

/** A spec as compared on reload: where it is written in the file changes nothing. */
function specKey(spec: NotifySpec): string {
  return JSON.stringify(spec, (field, value: unknown) => {
    if (field === "line" || field === "col") return undefined;
    return value instanceof Set ? [...(value as Set<string>)].sort() : value;
  });
}

class Lane {
  private queue: Pending[] = [];
  /** Keys of the notices in calls that have not ended (in flight, or waiting for a retry). */
  private readonly busy = new Map<string, number>();
  private running = 0;
  private inCalls = 0;
  private wait: Timer | undefined;
  /** Calls waiting for their retry, with their notices. */
  private readonly retries = new Map<Timer, Pending[]>();
  private readonly calls = new Set<Promise<void>>();
  private retired: Output[] = [];
  private closed = false;
  private counts = { delivered: 0, retried: 0, failed: 0, dropped: 0 };
  private droppedUnreported = 0;
  private lastDropReport = Number.NEGATIVE_INFINITY;
  private dropReport: Timer | undefined;
  private failures: {
    notices: number;
    calls: number;
    nodes: Set<string>;
    last: Outcome & { ok: false };
    attempts: number;
  } | null = null;
  private lastFailureReport = Number.NEGATIVE_INFINITY;
  private failureReport: Timer | undefined;

  constructor(
    public spec: NotifySpec,
    public output: Output,
    private readonly deps: DispatcherDeps,
  ) {}

  accepts(event: string, fields: Readonly<Record<string, unknown>>): boolean {
    // An output is never told of its own failures: a failing output would feed itself.
    if (event.startsWith("notify.") && fields.output === this.spec.name) return false;
    if (this.spec.kind === "alertmanager")
      return ALERT_EVENTS.has(event) && !(event === "node.up" && fields.previous === "new");
    return wanted(this.spec.on, event, fields);
  }

  offer(notice: Notice): void {
    if (this.closed) return;
    const clock = this.deps.clock;
    this.queue.push({ notice, key: notice.node ?? "", atMs: clock.monoMs() });
    // A full queue goes out at once if a call can take it: only what cannot is dropped.
    this.pump();
    if (this.queue.length > this.spec.queue) this.drop(this.queue.length - this.spec.queue);
  }

  /** Drops the `count` oldest waiting notices. */
  private drop(count: number): void {
    this.queue.splice(0, count);
    this.counts.dropped += count;
    this.droppedUnreported += count;
    if (this.dropReport !== undefined) return;
    const delay = Math.max(0, this.lastDropReport + DROP_REPORT_MS - this.deps.clock.monoMs());
    this.dropReport = this.deps.clock.setTimeout(() => this.reportDrops(), delay);
  }

  private reportDrops(): void {
    this.dropReport = undefined;
    if (this.droppedUnreported === 0) return;
    this.lastDropReport = this.deps.clock.monoMs();
    this.deps.emit("notify.dropped", {
      output: this.spec.name,
      notices: this.droppedUnreported,
      windowMs: DROP_REPORT_MS,
    });
    this.droppedUnreported = 0;
  }

  /** Starts every call it may: up to MAX_PARALLEL, of notices whose node has none in flight. */
  private pump(): void {
    while (!this.closed && this.running < MAX_PARALLEL) {
      const batch: Pending[] = [];
      const taken = new Set<string>();
      for (const pending of this.queue) {
        if (this.busy.has(pending.key)) continue;
        batch.push(pending);
        taken.add(pending.key);
        if (batch.length === MAX_BATCH) break;
      }
      if (batch.length === 0) return;
      const waitedMs = this.deps.clock.monoMs() - batch[0]!.atMs;
      const full = batch.length === MAX_BATCH || this.queue.length >= this.spec.queue;
      if (!full && waitedMs < BATCH_WAIT_MS) {
        this.wait ??= this.deps.clock.setTimeout(() => {
          this.wait = undefined;
          this.pump();
        }, BATCH_WAIT_MS - waitedMs);
        return;
      }
      const inBatch = new Set(batch);
      this.queue = this.queue.filter((pending) => !inBatch.has(pending));
      for (const key of taken) this.busy.set(key, (this.busy.get(key) ?? 0) + 1);
      this.inCalls += batch.length;
      this.running++;
      this.call(batch, 1);
    }
  }

  private call(batch: Pending[], attempt: number): void {
    const output = this.output;
    const started = this.deps.clock.monoMs();
    const done = output
      .deliver(
        batch.map((p) => p.notice),
        attempt,
      )
      .then((outcome) => {
        this.calls.delete(done);
        this.deps.observe?.(this.spec.name, (this.deps.clock.monoMs() - started) / 1000);
        this.settle(batch, attempt, outcome);
      });
    this.calls.add(done);
  }

  private settle(batch: Pending[], attempt: number, outcome: Outcome): void {
    this.running--;
    if (outcome.ok) {
      this.counts.delivered += batch.length;
      return this.end(batch);
    }
    if (outcome.retry && attempt < this.spec.attempts && !this.closed) {
      this.counts.retried += batch.length;
      // Full-range jitter around the exponential step keeps many monitors from retrying in step.
      const stepMs = Math.min(RETRY_CAP_MS, RETRY_BASE_MS * 2 ** (attempt - 1));
      const delayMs = stepMs * (0.5 + (this.deps.random ?? Math.random)());
      const timer = this.deps.clock.setTimeout(() => {
        this.retries.delete(timer);
        this.running++;
        this.call(batch, attempt + 1);
      }, delayMs);
      this.retries.set(timer, batch);
      // The slot is free while it waits: other nodes' notices go on.
      return this.pump();
    }
    this.counts.failed += batch.length;
    this.fail(batch, attempt, outcome);
    this.end(batch);
  }

  private end(batch: Pending[]): void {
    this.inCalls -= batch.length;
    for (const { key } of batch) {
      const left = this.busy.get(key)! - 1;
      if (left === 0) this.busy.delete(key);
      else this.busy.set(key, left);
    }
    this.retireIdle();
    this.pump();
  }

  private fail(batch: Pending[], attempts: number, outcome: Outcome & { ok: false }): void {
    const f = (this.failures ??= { notices: 0, calls: 0, nodes: new Set(), last: outcome, attempts });
    f.notices += batch.length;
    f.calls++;
    f.last = outcome;
    f.attempts = attempts;
    for (const { notice } of batch)
      if (notice.node !== null && f.nodes.size < MAX_FAILED_NODES) f.nodes.add(notice.node);
    if (this.failureReport !== undefined || this.closed) return;
    const delay = Math.max(0, this.lastFailureReport + FAILURE_REPORT_MS - this.deps.clock.monoMs());
    this.failureReport = this.deps.clock.setTimeout(() => this.reportFailures(), delay);
  }

  private reportFailures(): void {
    this.failureReport = undefined;
    const f = this.failures;
    if (f === null) return;
    this.failures = null;
    this.lastFailureReport = this.deps.clock.monoMs();
    this.deps.emit("notify.failed", {
      output: this.spec.name,
      reason: f.last.reason,
      detail: f.last.detail,
      attempts: f.attempts,
      notices: f.notices,
      nodes: [...f.nodes],
    });
  }

  /** A changed spec: calls in flight finish on the old output, the next ones use the new. */
  replace(spec: NotifySpec, output: Output): void {
    this.retired.push(this.output);
    this.spec = spec;
    this.output = output;
    if (this.queue.length > spec.queue) this.drop(this.queue.length - spec.queue);
    this.retireIdle();
  }

  private retireIdle(): void {
    if (this.retired.length === 0 || this.calls.size > 0) return;
    for (const old of this.retired.splice(0)) void old.close();
  }

  stats(): LaneStats {
    return {
      output: this.spec.name,
      kind: this.spec.kind,
      queued: this.queue.length + this.inCalls,
      inFlight: this.running,
      ...this.counts,
    };
  }

  /** Stops taking notices, gives calls in flight up to `graceMs`, then cuts them off. */
  async close(graceMs: number): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const clock = this.deps.clock;
    if (this.wait !== undefined) clock.clearTimeout(this.wait);
    let waiting = this.queue.length;
    for (const [timer, batch] of this.retries) {
      clock.clearTimeout(timer);
      waiting += batch.length;
    }
    this.retries.clear();
    this.queue = [];
    if (this.calls.size > 0 && graceMs > 0) {
      let grace: Timer | undefined;
      await Promise.race([
        Promise.all(this.calls),
        new Promise<void>((resolve) => (grace = clock.setTimeout(resolve, graceMs))),
      ]);
      if (grace !== undefined) clock.clearTimeout(grace);
    }
    // Closing an output ends its calls in flight (as failed, "closed"): they settle before the report.
    await Promise.all([this.output.close(), ...this.retired.map((old) => old.close())]);
    await Promise.all(this.calls);
    if (this.dropReport !== undefined) clock.clearTimeout(this.dropReport);
    if (this.failureReport !== undefined) clock.clearTimeout(this.failureReport);
    if (waiting > 0) {
      this.counts.dropped += waiting;
      this.droppedUnreported += waiting;
    }
    this.reportFailures();
    this.reportDrops();
  }
}

export class Dispatcher {
  private lanes = new Map<string, Lane>();
  private keys = new Map<string, string>();

  constructor(private readonly deps: DispatcherDeps) {}

  /** True when some output may carry `event` (so that the notice is worth making). */
  wants(event: string, fields: Readonly<Record<string, unknown>>): boolean {
    for (const lane of this.lanes.values()) if (lane.accepts(event, fields)) return true;
    return false;
  }

  /** Enqueues `notice` for every output that carries its event. Never blocks, never throws. */
  offer(notice: Notice): void {
    for (const lane of this.lanes.values()) if (lane.accepts(notice.event, notice.fields)) lane.offer(notice);
  }

  /**
   * Takes the outputs of a (re)loaded config: an unchanged one keeps its queue and calls; a
   * changed one keeps its queue and uses the new spec for the next calls; a removed one is closed.
   */
  configure(specs: readonly NotifySpec[]): void {
    const next = new Map<string, Lane>();
    const keys = new Map<string, string>();
    for (const spec of specs) {
      const key = specKey(spec);
      keys.set(spec.name, key);
      const lane = this.lanes.get(spec.name);
      if (lane === undefined) next.set(spec.name, new Lane(spec, this.deps.make(spec), this.deps));
      else {
        if (this.keys.get(spec.name) !== key) lane.replace(spec, this.deps.make(spec));
        next.set(spec.name, lane);
      }
    }
    for (const [name, lane] of this.lanes) if (!next.has(name)) void lane.close(STOP_GRACE_MS);
    this.lanes = next;
    this.keys = keys;
  }

  /** `hb notify test`: one call through the named output, at once, one attempt; null: no such output. */
  async test(name: string, notice: Notice): Promise<Outcome | null> {
    const lane = this.lanes.get(name);
    if (lane === undefined) return null;
    const started = this.deps.clock.monoMs();
    const outcome = await lane.output.deliver([notice], 1);
    this.deps.observe?.(name, (this.deps.clock.monoMs() - started) / 1000);
    return outcome;
  }

  stats(): LaneStats[] {
    return [...this.lanes.values()].map((lane) => lane.stats());
  }

  get size(): number {
    return this.lanes.size;
  }

  /** At stop: what is in flight gets `graceMs` to finish; what waits is dropped and reported. */
  async close(graceMs = STOP_GRACE_MS): Promise<void> {
    await Promise.all([...this.lanes.values()].map((lane) => lane.close(graceMs)));
  }
}
