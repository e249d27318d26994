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
import { failed, type Outcome, type Output, type OutputKind } from "./output.js";

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
/** After an output is closed, how long its calls in flight may take to end. */
const CLOSED_GRACE_MS = 1000;
/** Node ids listed in one `notify.failed`. */
const MAX_FAILED_NODES = 20;

/** The events an alertmanager output needs: those that raise or end its alerts. */
const ALERT_EVENTS: ReadonlySet<string> = new Set([
  "node.down",
  "node.up",
  "node.left",
  "node.forgotten",
  "node.flapping",
  "peer.down",
  "peer.up",
  "peer.left",
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

/** A call's notices, and its attempt number. */
interface Call {
  readonly batch: Pending[];
  readonly attempt: number;
}

/** A spec as compared on reload: where it is written in the file changes nothing. */
function specKey(spec: NotifySpec): string {
  return JSON.stringify(spec, (field, value: unknown) => {
    if (field === "line" || field === "col") return undefined;
    return value instanceof Set ? [...(value as Set<string>)].sort() : value;
  });
}

/** A queue with O(1) push and shift (Array.shift copies the array: 10 000 drops took seconds). */
class Deque<T> {
  private items: (T | undefined)[] = [];
  private head = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  push(item: T): void {
    this.items.push(item);
  }

  peek(): T | undefined {
    return this.items[this.head];
  }

  shift(): T | undefined {
    if (this.head === this.items.length) return undefined;
    const item = this.items[this.head];
    this.items[this.head++] = undefined;
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }

  clear(): void {
    this.items = [];
    this.head = 0;
  }
}

const errorText = (err: unknown): string => (err instanceof Error ? err.message : String(err));

class Lane {
  /** Waiting, in arrival order. A notice whose node became busy meanwhile moves to `blocked` when met. */
  private readonly ready = new Deque<Pending>();
  /** Waiting behind a call of their node that has not ended, per node, in order. */
  private readonly blocked = new Map<string, Pending[]>();
  private blockedCount = 0;
  /** Per node: its notices in calls that have not ended (in flight, or waiting for a retry). */
  private readonly busy = new Map<string, number>();
  private running = 0;
  private inCalls = 0;
  /** Calls taken from the queue whose delivery starts on the next turn (never inside an offer). */
  private readonly starting = new Set<Call>();
  /** Calls waiting for their retry's delay, and those whose delay has passed, waiting for a slot. */
  private readonly retrying = new Map<Timer, Call>();
  private readonly retryReady: Call[] = [];
  private retryNotices = 0;
  private wait: Timer | undefined;
  private pumpSoon = false;
  private readonly calls = new Set<Promise<void>>();
  /** Calls not ended per output: an output replaced on reload is closed once it has none. */
  private readonly callsOf = new Map<Output, number>();
  private readonly retired = new Set<Output>();
  private closed = false;
  private counts = { delivered: 0, retried: 0, failed: 0, dropped: 0 };
  private droppedUnreported = 0;
  private lastDropReport = Number.NEGATIVE_INFINITY;
  private dropReport: Timer | undefined;
  private failures: {
    notices: number;
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
    if (this.spec.kind === "alertmanager") return ALERT_EVENTS.has(event) && fields.previous !== "new";
    return wanted(this.spec.on, event, fields);
  }

  /** Notices waiting: in the queue, behind their node, or for a retry. What `queue` bounds. */
  private get waiting(): number {
    return this.ready.length + this.blockedCount + this.retryNotices;
  }

  offer(notice: Notice): void {
    if (this.closed) return;
    const pending = { notice, key: notice.node ?? "", atMs: this.deps.clock.monoMs() };
    if (this.busy.has(pending.key)) this.block(pending);
    else this.ready.push(pending);
    if (this.waiting > this.spec.queue) {
      // A full queue goes out at once if a call can take it: only what cannot is dropped.
      this.pump();
      let excess = this.waiting - this.spec.queue;
      while (excess-- > 0) this.dropOldest();
    }
    this.schedule();
  }

  private block(pending: Pending): void {
    const list = this.blocked.get(pending.key);
    if (list === undefined) this.blocked.set(pending.key, [pending]);
    else list.push(pending);
    this.blockedCount++;
  }

  /**
   * Drops the oldest waiting notice: from the queue or from behind a node, or, when a call
   * waiting for its retry is older still, that whole call.
   */
  private dropOldest(): void {
    let oldestMs = Number.POSITIVE_INFINITY;
    const head = this.ready.peek();
    if (head !== undefined) oldestMs = head.atMs;
    let blockedKey: string | undefined;
    for (const [key, list] of this.blocked) {
      if (list[0]!.atMs < oldestMs) {
        oldestMs = list[0]!.atMs;
        blockedKey = key;
      }
      break; // lists are made in arrival order: the first holds the oldest
    }
    let retry: Call | undefined;
    for (const call of [...this.retryReady, ...this.retrying.values()])
      if (call.batch[0]!.atMs < oldestMs) {
        oldestMs = call.batch[0]!.atMs;
        retry = call;
      }
    if (retry !== undefined) return this.dropRetry(retry);
    if (blockedKey !== undefined) {
      const list = this.blocked.get(blockedKey)!;
      list.shift();
      this.blockedCount--;
      if (list.length === 0) this.blocked.delete(blockedKey);
      return this.dropped(1);
    }
    if (this.ready.shift() !== undefined) this.dropped(1);
  }

  private dropRetry(call: Call): void {
    const ready = this.retryReady.indexOf(call);
    if (ready >= 0) this.retryReady.splice(ready, 1);
    for (const [timer, waiting] of this.retrying)
      if (waiting === call) {
        this.deps.clock.clearTimeout(timer);
        this.retrying.delete(timer);
      }
    this.retryNotices -= call.batch.length;
    this.dropped(call.batch.length);
    this.end(call.batch);
  }

  private dropped(count: number): void {
    this.counts.dropped += count;
    this.droppedUnreported += count;
    if (this.dropReport !== undefined || this.closed) return;
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
      const retry = this.retryReady.shift();
      if (retry !== undefined) {
        this.retryNotices -= retry.batch.length;
        this.start(retry);
        continue;
      }
      while (this.ready.length > 0 && this.busy.has(this.ready.peek()!.key)) this.block(this.ready.shift()!);
      const oldest = this.ready.peek();
      if (oldest === undefined) return;
      const waitedMs = this.deps.clock.monoMs() - oldest.atMs;
      const full = this.ready.length >= MAX_BATCH || this.waiting >= this.spec.queue;
      if (!full && waitedMs < BATCH_WAIT_MS) {
        this.wait ??= this.deps.clock.setTimeout(() => {
          this.wait = undefined;
          this.pump();
        }, BATCH_WAIT_MS - waitedMs);
        return;
      }
      const batch: Pending[] = [];
      const keys = new Set<string>();
      while (batch.length < MAX_BATCH && this.ready.length > 0) {
        const pending = this.ready.shift()!;
        if (this.busy.has(pending.key) && !keys.has(pending.key)) this.block(pending);
        else {
          batch.push(pending);
          keys.add(pending.key);
        }
      }
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
      // Full-range jitter around the exponential step keeps many monitors from retrying in step.
      const stepMs = Math.min(RETRY_CAP_MS, RETRY_BASE_MS * 2 ** (attempt - 1));
      const delayMs = stepMs * (0.5 + (this.deps.random ?? Math.random)());
      const next = { batch, attempt: attempt + 1 };
      const timer = this.deps.clock.setTimeout(() => {
        this.retrying.delete(timer);
        this.retryReady.push(next);
        this.pump();
      }, delayMs);
      this.retrying.set(timer, next);
      this.retryNotices += batch.length;
      // The slot is free while it waits: other nodes' notices go on.
      return this.pump();
    }
    this.counts.failed += batch.length;
    this.fail(batch, attempt, outcome);
    this.end(batch);
  }

  /** A call has ended (delivered, failed for good, or dropped): its nodes' waiting notices may go. */
  private end(batch: Pending[]): void {
    this.inCalls -= batch.length;
    for (const { key } of batch) {
      const left = this.busy.get(key)! - 1;
      if (left > 0) {
        this.busy.set(key, left);
        continue;
      }
      this.busy.delete(key);
      const waiting = this.blocked.get(key);
      if (waiting === undefined) continue;
      this.blocked.delete(key);
      this.blockedCount -= waiting.length;
      for (const pending of waiting) this.ready.push(pending);
    }
    this.pump();
  }

  private fail(batch: Pending[], attempts: number, outcome: Outcome & { ok: false }): void {
    const f = (this.failures ??= { notices: 0, nodes: new Set(), last: outcome, attempts });
    f.notices += batch.length;
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

  /**
   * A changed spec: the old output hands over what must outlive it (alerts still firing), calls
   * in flight finish on it, and it is closed once they have; the next calls use the new one.
   */
  replace(spec: NotifySpec, output: Output): void {
    const old = this.output;
    old.handOver?.(output);
    this.spec = spec;
    this.output = output;
    if (this.callsOf.has(old)) this.retired.add(old);
    else void old.close();
    let excess = this.waiting - spec.queue;
    while (excess-- > 0) this.dropOldest();
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
      queued: this.ready.length + this.blockedCount + this.inCalls,
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
    for (const timer of this.retrying.keys()) clock.clearTimeout(timer);
    let waiting = this.ready.length + this.blockedCount + this.retryNotices;
    for (const call of this.starting) waiting += call.batch.length;
    this.starting.clear();
    this.retrying.clear();
    this.retryReady.length = 0;
    this.ready.clear();
    this.blocked.clear();
    await this.callsEnded(graceMs);
    // Closing an output ends its calls in flight (as failed, "closed"): they settle before the
    // report. An output that fails to is not waited for beyond a second: the monitor is stopping.
    await Promise.all([this.output.close(), ...[...this.retired].map((old) => old.close())]);
    await this.callsEnded(CLOSED_GRACE_MS);
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
  private testing = false;

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
   * changed one keeps its queue and uses the new spec for the next calls; a removed one is
   * closed. `identity` adds to what "unchanged" compares (a signing key's contents). An output
   * that cannot be made is left out and reported; the others are taken.
   */
  configure(specs: readonly NotifySpec[], identity: (spec: NotifySpec) => string = () => ""): void {
    const next = new Map<string, Lane>();
    const keys = new Map<string, string>();
    for (const spec of specs) {
      const key = specKey(spec) + identity(spec);
      const lane = this.lanes.get(spec.name);
      if (lane !== undefined && this.keys.get(spec.name) === key) {
        next.set(spec.name, lane);
        keys.set(spec.name, key);
        continue;
      }
      let output: Output;
      try {
        output = this.deps.make(spec);
      } catch (err) {
        this.deps.emit("notify.failed", {
          output: spec.name,
          reason: "internal",
          detail: `cannot be set up: ${errorText(err)}`,
          attempts: 0,
          notices: 0,
          nodes: [],
        });
        if (lane !== undefined) {
          next.set(spec.name, lane);
          keys.set(spec.name, this.keys.get(spec.name)!);
        }
        continue;
      }
      if (lane === undefined) next.set(spec.name, new Lane(spec, output, this.deps));
      else {
        lane.replace(spec, output);
        next.set(spec.name, lane);
      }
      keys.set(spec.name, key);
    }
    for (const [name, lane] of this.lanes) if (!next.has(name)) void lane.close(STOP_GRACE_MS);
    this.lanes = next;
    this.keys = keys;
  }

  /**
   * `hb notify test`: one call through the named output, at once, one attempt; null: no such
   * output. One at a time: a status endpoint cannot be used to start hooks without end.
   */
  async test(name: string, notice: Notice): Promise<Outcome | null> {
    const lane = this.lanes.get(name);
    if (lane === undefined) return null;
    if (this.testing) return failed(false, "busy", "another notify test is running");
    this.testing = true;
    const started = this.deps.clock.monoMs();
    try {
      return await Promise.resolve()
        .then(() => lane.output.deliver([notice], 1))
        .catch((err: unknown) => failed(false, "internal", errorText(err)));
    } finally {
      this.testing = false;
      this.deps.observe?.(name, (this.deps.clock.monoMs() - started) / 1000);
    }
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
