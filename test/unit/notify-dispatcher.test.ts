// The dispatcher with a fake clock and an output whose calls the test ends by hand: ordering per
// node, batching, parallel calls, retries with backoff, the bounded queue and its report, reload
// and stop. Which events become notices at all (`wanted`) is tested here too.
import { describe, expect, it } from "vitest";
import type { NotifySpec } from "../../src/config/types.js";
import type { EventFields, EventName } from "../../src/events.js";
import { Dispatcher } from "../../src/notify/dispatcher.js";
import { BATCH_WAIT_MS, MAX_BATCH, MAX_PARALLEL } from "../../src/notify/lane.js";
import type { Notice } from "../../src/notify/notice.js";
import { wanted } from "../../src/notify/notices.js";
import { DELIVERED, failed, type Outcome, type Output } from "../../src/notify/output.js";
import { DROP_REPORT_MS } from "../../src/notify/queue.js";
import { FAILURE_REPORT_MS, RETRY_BASE_MS, RETRY_CAP_MS } from "../../src/notify/retry.js";
import { FakeClock } from "../support/fake-clock.js";

interface Call {
  notices: readonly Notice[];
  attempt: number;
  end(outcome?: Outcome): void;
}

class HeldOutput implements Output {
  readonly kind = "exec" as const;
  readonly calls: Call[] = [];
  closed = false;
  /** Calls not ended now, and the most there ever were at once. */
  open = 0;
  maxOpen = 0;
  constructor(readonly name: string) {}
  deliver(notices: readonly Notice[], attempt: number): Promise<Outcome> {
    this.maxOpen = Math.max(this.maxOpen, ++this.open);
    return new Promise((resolve) => {
      let ended = false;
      const end = (o: Outcome = DELIVERED): void => {
        if (!ended) this.open--;
        ended = true;
        resolve(o);
      };
      this.calls.push({ notices, attempt, end });
    });
  }
  close(): Promise<void> {
    this.closed = true;
    for (const call of this.calls) call.end(failed(false, "closed", ""));
    return Promise.resolve();
  }
}

const spec = (over: Partial<NotifySpec> = {}): NotifySpec =>
  ({
    kind: "exec",
    name: "pager",
    argv: ["/bin/true"],
    on: null,
    timeoutMs: 30_000,
    queue: 10_000,
    attempts: 8,
    line: 1,
    col: 1,
    ...over,
  }) as NotifySpec;

let seq = 0;
function notice(event: string, node: string | null, fields: Record<string, unknown> = {}): Notice {
  return {
    hb: 1,
    event,
    level: event === "node.down" ? "error" : "info",
    node,
    state: null,
    previous: null,
    since: null,
    lastSeen: null,
    labels: {},
    seq: ++seq,
    dedupKey: `${node}/${event}`,
    monitor: "m",
    time: 0,
    test: false,
    fields: { node, ...fields },
  };
}
const down = (node: string) => notice("node.down", node);
const up = (node: string) => notice("node.up", node, { previous: "down" });

/** Lets the promises of ended calls settle. */
const settle = () => new Promise((resolve) => setImmediate(resolve));

function setup(over: Partial<NotifySpec> = {}) {
  const clock = new FakeClock();
  const outputs: HeldOutput[] = [];
  const events: { event: string; fields: unknown }[] = [];
  const dispatcher = new Dispatcher({
    clock,
    emit: (event, fields) => events.push({ event, fields }),
    make: (s) => {
      const output = new HeldOutput(s.name);
      outputs.push(output);
      return output;
    },
    random: () => 0.5,
  });
  dispatcher.configure([spec(over)]);
  /** Runs what the dispatcher left for the next turns (deliveries start there), then `ms` of time. */
  const run = async (ms = 0): Promise<void> => {
    clock.advance(ms);
    for (let i = 0; i < 4; i++) {
      clock.runImmediates();
      await settle();
    }
  };
  return { clock, dispatcher, outputs, events, output: outputs[0]!, run };
}

const nodesOf = (call: Call) => call.notices.map((n) => `${n.event}:${n.node}`);

describe("the notify dispatcher", () => {
  it("only enqueues when an event is offered: nothing is delivered within the offer", () => {
    const { dispatcher, output } = setup();
    dispatcher.offer(down("a"));
    expect(output.calls).toHaveLength(0);
  });

  it("never delivers a node's up before its down, even when the down's delivery is slow", async () => {
    const { dispatcher, output, run } = setup();
    dispatcher.offer(down("a"));
    await run(BATCH_WAIT_MS);
    expect(output.calls.map(nodesOf)).toEqual([["node.down:a"]]);
    dispatcher.offer(up("a"));
    dispatcher.offer(down("b"));
    await run(10 * BATCH_WAIT_MS);
    // b goes meanwhile; a's up waits for its down.
    expect(output.calls.map(nodesOf)).toEqual([["node.down:a"], ["node.down:b"]]);
    output.calls[0]!.end();
    await run();
    expect(output.calls.map(nodesOf)).toEqual([["node.down:a"], ["node.down:b"], ["node.up:a"]]);
  });

  it("carries notices that come together in one call, and at most MAX_BATCH per call", async () => {
    const { dispatcher, output, run } = setup();
    for (let i = 0; i < 2500; i++) dispatcher.offer(down(`n${i}`));
    expect(output.calls).toHaveLength(0);
    await run();
    // A full batch goes on the next turn; the rest waits for company, then goes in parallel.
    expect(output.calls.map((c) => c.notices.length)).toEqual([MAX_BATCH, MAX_BATCH]);
    await run(BATCH_WAIT_MS);
    expect(output.calls.map((c) => c.notices.length)).toEqual([MAX_BATCH, MAX_BATCH, 500]);
    expect(output.calls.flatMap((c) => c.notices.map((n) => n.node))).toEqual(
      Array.from({ length: 2500 }, (_, i) => `n${i}`),
    );
  });

  it("runs at most MAX_PARALLEL calls at once; the next starts when one ends", async () => {
    const { dispatcher, output, run } = setup();
    for (let i = 0; i < MAX_PARALLEL + 2; i++) {
      dispatcher.offer(down(`n${i}`));
      await run(BATCH_WAIT_MS);
    }
    expect(output.calls).toHaveLength(MAX_PARALLEL);
    output.calls[1]!.end();
    await run();
    // The two waiting notices go together, in the slot that was freed.
    expect(output.calls).toHaveLength(MAX_PARALLEL + 1);
    expect(nodesOf(output.calls[MAX_PARALLEL]!)).toEqual([
      `node.down:n${MAX_PARALLEL}`,
      `node.down:n${MAX_PARALLEL + 1}`,
    ]);
  });

  it("retries a failure worth retrying with doubling delays, then reports it once when attempts run out", async () => {
    const { clock, dispatcher, output, events, run } = setup({ attempts: 3 });
    dispatcher.offer(down("a"));
    await run(BATCH_WAIT_MS);
    const start = clock.monoMs();
    const at: number[] = [];
    for (let attempt = 1; attempt <= 3; attempt++) {
      const call = output.calls[attempt - 1]!;
      expect(call.attempt).toBe(attempt);
      at.push(clock.monoMs() - start);
      call.end(failed(true, "exit_75", "try later"));
      await run();
      await run(RETRY_BASE_MS * 2 ** (attempt - 1));
    }
    // random() = 0.5: the jitter factor is 1, the delays are the plain steps.
    expect(at).toEqual([0, RETRY_BASE_MS, 3 * RETRY_BASE_MS]);
    expect(output.calls).toHaveLength(3);
    const failures = events.filter((e) => e.event === "notify.failed");
    expect(failures).toEqual([
      {
        event: "notify.failed",
        fields: {
          output: "pager",
          reason: "exit_75",
          detail: "try later",
          attempts: 3,
          notices: 1,
          nodes: ["a"],
        },
      },
    ]);
    expect(dispatcher.stats()[0]).toMatchObject({ delivered: 0, retried: 2, failed: 1, queued: 0 });
  });

  it("does not retry a failure that is final", async () => {
    const { dispatcher, output, events, run } = setup();
    dispatcher.offer(down("a"));
    await run(BATCH_WAIT_MS);
    output.calls[0]!.end(failed(false, "exit_1", "bad"));
    await run();
    await run(10 * 60_000);
    expect(output.calls).toHaveLength(1);
    expect(events.map((e) => e.event)).toEqual(["notify.failed"]);
  });

  it("keeps a node's later notices behind its delivery while that waits for a retry", async () => {
    const { dispatcher, output, run } = setup();
    dispatcher.offer(down("a"));
    await run(BATCH_WAIT_MS);
    output.calls[0]!.end(failed(true, "network", ""));
    await run();
    dispatcher.offer(up("a"));
    await run(BATCH_WAIT_MS);
    expect(output.calls).toHaveLength(1);
    await run(RETRY_BASE_MS);
    expect(output.calls.map(nodesOf)).toEqual([["node.down:a"], ["node.down:a"]]);
    output.calls[1]!.end();
    await run();
    expect(output.calls.map(nodesOf)[2]).toEqual(["node.up:a"]);
  });

  it("drops the oldest waiting notices past its queue, and says so once, then at most once a minute", async () => {
    const { dispatcher, output, events, run } = setup({ queue: 10 });
    dispatcher.offer(down("first"));
    await run(BATCH_WAIT_MS);
    output.calls.length = 0;
    // Four calls in flight hold every slot.
    for (let i = 0; i < MAX_PARALLEL - 1; i++) {
      dispatcher.offer(down(`busy${i}`));
      await run(BATCH_WAIT_MS);
    }
    for (let i = 0; i < 30; i++) dispatcher.offer(down(`n${i}`));
    await run(1);
    expect(events).toEqual([
      { event: "notify.dropped", fields: { output: "pager", notices: 20, windowMs: DROP_REPORT_MS } },
    ]);
    for (let i = 30; i < 35; i++) dispatcher.offer(down(`n${i}`));
    await run(DROP_REPORT_MS / 2);
    expect(events).toHaveLength(1);
    await run(DROP_REPORT_MS / 2);
    expect(events.map((e) => e.fields)).toEqual([
      { output: "pager", notices: 20, windowMs: DROP_REPORT_MS },
      { output: "pager", notices: 5, windowMs: DROP_REPORT_MS },
    ]);
    // What is kept is the newest, in order.
    for (const call of output.calls) call.end();
    await run();
    await run(BATCH_WAIT_MS);
    const kept = output.calls.slice(MAX_PARALLEL - 1).flatMap((c) => c.notices.map((n) => n.node));
    expect(kept).toEqual(Array.from({ length: 10 }, (_, i) => `n${25 + i}`));
    expect(dispatcher.stats()[0]!.dropped).toBe(25);
  });

  it("sends a full queue at once while a call can take it, rather than drop it", async () => {
    const { dispatcher, output, events, run } = setup({ queue: 10 });
    for (let i = 0; i < 25; i++) dispatcher.offer(down(`n${i}`));
    await run();
    // A call takes the queue as soon as it is past full: nothing is dropped.
    expect(output.calls.map((c) => c.notices.length)).toEqual([11, 11]);
    expect(events).toEqual([]);
    expect(dispatcher.stats()[0]).toMatchObject({ dropped: 0, queued: 25 });
  });

  it("keeps a changed output's queue on reload, and closes a removed one", async () => {
    const { dispatcher, outputs, run } = setup();
    dispatcher.offer(down("a"));
    await run(BATCH_WAIT_MS);
    dispatcher.offer(up("a"));
    dispatcher.configure([spec({ timeoutMs: 5000 })]);
    expect(outputs).toHaveLength(2);
    // The call in flight finishes on the old output; the waiting up goes through the new one.
    outputs[0]!.calls[0]!.end();
    await run();
    await run(BATCH_WAIT_MS);
    expect(outputs[1]!.calls.map(nodesOf)).toEqual([["node.up:a"]]);
    expect(outputs[0]!.closed).toBe(true);
    dispatcher.configure([spec({ timeoutMs: 5000 })]);
    expect(outputs).toHaveLength(2);
    dispatcher.configure([]);
    await run();
    expect(dispatcher.size).toBe(0);
  });

  it("at stop, lets calls in flight end within the grace, and counts what still waited as dropped", async () => {
    const { clock, dispatcher, output, events, run } = setup();
    dispatcher.offer(down("a"));
    await run(BATCH_WAIT_MS);
    dispatcher.offer(up("a"));
    const closing = dispatcher.close(1000);
    await run(1000);
    await closing;
    expect(output.closed).toBe(true);
    expect(events.map((e) => e.event)).toEqual(["notify.failed", "notify.dropped"]);
    expect(events[1]!.fields).toMatchObject({ notices: 1 });
    expect(clock.pendingTimers).toBe(0);
  });

  it("delivers every later notice of a node whose call carried two of its notices", async () => {
    const { dispatcher, output, run } = setup();
    dispatcher.offer(notice("node.restarted", "a"));
    dispatcher.offer(up("a"));
    await run(BATCH_WAIT_MS);
    output.calls[0]!.end();
    await run();
    dispatcher.offer(down("a"));
    await run(BATCH_WAIT_MS);
    expect(output.calls.map(nodesOf)).toEqual([["node.restarted:a", "node.up:a"], ["node.down:a"]]);
  });

  it("counts notices waiting for a retry against the queue, and retries within the parallel limit", async () => {
    const { dispatcher, output, run } = setup({ queue: 10 });
    for (let i = 0; i < 10; i++) dispatcher.offer(down(`n${i}`));
    await run(BATCH_WAIT_MS);
    for (let i = 1; i < MAX_PARALLEL; i++) {
      dispatcher.offer(down(`h${i}`));
      await run(BATCH_WAIT_MS);
    }
    expect(output.open).toBe(MAX_PARALLEL);
    output.calls[0]!.end(failed(true, "http_503", ""));
    await run();
    // Ten wait for their retry; five more make fifteen: the oldest, the retry's ten, are dropped.
    for (let i = 0; i < 5; i++) dispatcher.offer(down(`x${i}`));
    await run();
    expect(dispatcher.stats()[0]).toMatchObject({ dropped: 10 });
    // Every call that fails waits for a retry; retries never exceed the parallel limit.
    for (let round = 0; round < 5; round++) {
      for (const call of output.calls) call.end(failed(true, "http_503", ""));
      await run(RETRY_CAP_MS);
    }
    expect(output.maxOpen).toBeLessThanOrEqual(MAX_PARALLEL);
  });

  it("turns an output that throws or rejects into a failed delivery, not a crash", async () => {
    const { dispatcher, output, events, run } = setup();
    output.deliver = () => Promise.reject(new Error("boom"));
    dispatcher.offer(down("a"));
    await run(BATCH_WAIT_MS);
    await run(FAILURE_REPORT_MS);
    expect(events.map((e) => e.fields)).toEqual([
      { output: "pager", reason: "internal", detail: "boom", attempts: 1, notices: 1, nodes: ["a"] },
    ]);
  });
});

describe("which events become notices", () => {
  const is = <E extends EventName>(
    on: ReadonlySet<string> | null,
    event: E,
    fields: Partial<EventFields[E]>,
  ) => wanted(on, event, fields);

  it("by default: what needs attention, and recoveries", () => {
    expect(is(null, "node.down", { node: "a" })).toBe(true);
    expect(is(null, "node.late", { node: "a" })).toBe(true);
    expect(is(null, "node.up", { node: "a", previous: "down" })).toBe(true);
    expect(is(null, "node.up", { node: "a", previous: "late" })).toBe(true);
    expect(is(null, "node.flapping", { node: "a" })).toBe(true);
    expect(is(null, "monitor.stalled", {})).toBe(true);
    expect(is(null, "node.up", { node: "a", previous: "new" })).toBe(false);
    expect(is(null, "node.up", { node: "a", previous: "left" })).toBe(false);
    expect(is(null, "node.left", { node: "a" })).toBe(false);
    expect(is(null, "datagrams.rejected", {})).toBe(false);
  });

  it("never what the outputs themselves did: two failing outputs would tell each other forever", () => {
    expect(is(new Set(["notify.failed"]), "notify.failed", { output: "chat" })).toBe(false);
  });

  it("as listed under on:, but never a first contact", () => {
    const on = new Set(["node.up", "node.left"]);
    expect(is(on, "node.up", { node: "a", previous: "left" })).toBe(true);
    expect(is(on, "node.left", { node: "a" })).toBe(true);
    expect(is(on, "node.up", { node: "a", previous: "new" })).toBe(false);
    expect(is(on, "node.down", { node: "a" })).toBe(false);
  });
});
