// The alertmanager output against a local HTTP server that keeps every POST, with a FakeClock
// driving resends: large sends go in slices, alerts pass to the output that replaces it on
// reload, and an alert that cannot be built is a failed delivery, never a rejection.
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import type { AlertmanagerOutputSpec } from "../../src/config/types.js";
import {
  AlertmanagerOutput,
  FIRING_RESENDS,
  RESOLVED_RESEND_MS,
  type AlertmanagerDeps,
} from "../../src/notify/alertmanager.js";
import { MAX_ALERTS_PER_POST } from "../../src/notify/alertmanager-api.js";
import type { Notice } from "../../src/notify/notice.js";
import { DELIVERED, type Outcome, type Output } from "../../src/notify/output.js";
import type { Timer } from "../../src/clock.js";
import { FakeClock } from "../support/fake-clock.js";
import { alertmanagerSpec } from "../support/notify-specs.js";

const WAIT_MS = 10_000;
const iso = (ms: number): string => new Date(ms).toISOString();

interface PostedAlert {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  startsAt: string;
  endsAt: string;
  generatorURL?: string;
}

interface AlertServer {
  url: string;
  /** The alerts of each POST /api/v2/alerts, in order of arrival. */
  posts: PostedAlert[][];
  close(): Promise<void>;
}

const servers: AlertServer[] = [];
async function alertServer(): Promise<AlertServer> {
  const posts: PostedAlert[][] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      if (req.method === "POST" && req.url === "/api/v2/alerts")
        posts.push(JSON.parse(Buffer.concat(chunks).toString("utf8")) as PostedAlert[]);
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  const running: AlertServer = {
    url: `http://127.0.0.1:${port}`,
    posts,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  servers.push(running);
  return running;
}

/** A FakeClock that knows the delays of its live timers: a resend's stands out from a request's timeout. */
class WatchedClock extends FakeClock {
  private readonly delays = new Map<Timer, number>();

  override setTimeout(callback: () => void, delayMs: number): Timer {
    const timer: Timer = super.setTimeout(() => {
      this.delays.delete(timer);
      callback();
    }, delayMs);
    this.delays.set(timer, delayMs);
    return timer;
  }
  override clearTimeout(timer: Timer): void {
    this.delays.delete(timer);
    super.clearTimeout(timer);
  }
  armed(delayMs: number): boolean {
    return [...this.delays.values()].includes(delayMs);
  }
}

const outputs: { out: AlertmanagerOutput; clock: WatchedClock }[] = [];
function output(
  clock: WatchedClock,
  urls: string[],
  overrides: Partial<AlertmanagerOutputSpec> = {},
  deps: Partial<AlertmanagerDeps> = {},
): AlertmanagerOutput {
  const spec = alertmanagerSpec(urls, overrides);
  const out = new AlertmanagerOutput(spec, { clock, statusUrl: "http://127.0.0.1:26723", ...deps });
  outputs.push({ out, clock });
  return out;
}

afterEach(async () => {
  await Promise.all(outputs.splice(0).map(({ out, clock }) => pumped(clock, out.close())));
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

const tick = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 5));

/** Waits for `done` in real time, running the clock's immediates (the turns between slices) meanwhile. */
async function until(clock: WatchedClock | null, done: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${WAIT_MS} ms`);
    clock?.runImmediates();
    await tick();
  }
}

/** Waits until a send has ended and the next resend is armed. */
const rearmed = (clock: WatchedClock, resendMs: number): Promise<void> =>
  until(clock, () => clock.armed(resendMs), "the next resend to be armed");

async function pumped<T>(clock: WatchedClock, promise: Promise<T>): Promise<T> {
  let settled = false;
  void promise.finally(() => (settled = true));
  await until(clock, () => settled, "the promise to settle");
  return promise;
}

let seq = 0;
function down(clock: WatchedClock, node: string, over: Partial<Notice> = {}): Notice {
  const now = clock.wallMs();
  return {
    hb: 1,
    event: "node.down",
    level: "error",
    node,
    state: "down",
    previous: "late",
    since: now - 1000,
    lastSeen: now - 6000,
    labels: {},
    seq: ++seq,
    dedupKey: `${node}/down/1.${seq}`,
    monitor: "mon-a",
    time: now,
    test: false,
    fields: { node, lastSeen: now - 6000, silentMs: 6000, timeoutMs: 5000, at: now - 1000 },
    ...over,
  };
}

function up(clock: WatchedClock, node: string): Notice {
  const now = clock.wallMs();
  return {
    ...down(clock, node),
    event: "node.up",
    level: "info",
    state: "up",
    previous: "down",
    since: now,
    fields: { node, from: "127.0.0.1:40000", previous: "down", downMs: 1000 },
  };
}

const downs = (clock: WatchedClock, count: number): Notice[] =>
  Array.from({ length: count }, (_, i) => down(clock, `n${i}`));
const sizes = (posts: PostedAlert[][]): number[] => posts.map((p) => p.length);
const byNode = (alerts: PostedAlert[]): Map<string, PostedAlert> =>
  new Map(alerts.map((a) => [a.labels.node!, a]));

describe("the alertmanager output, in slices", () => {
  it("delivers 2500 alerts in three POSTs of at most 1000, and resends them so every resend period", async () => {
    const clock = new WatchedClock();
    const am = await alertServer();
    const out = output(clock, [am.url], { resendMs: 60_000 });
    expect(await pumped(clock, out.deliver(downs(clock, 2500), 1))).toEqual(DELIVERED);
    expect(sizes(am.posts)).toEqual([MAX_ALERTS_PER_POST, MAX_ALERTS_PER_POST, 500]);
    for (const resends of [1, 2]) {
      clock.advance(60_000);
      await until(clock, () => am.posts.length === 3 * (resends + 1), `resend ${resends}`);
      await rearmed(clock, 60_000);
      const resent = am.posts.slice(-3);
      expect(sizes(resent)).toEqual([1000, 1000, 500]);
      expect(byNode(resent.flat()).size).toBe(2500);
    }
    expect(out.resendFailures).toBe(0);
  });

  it("takes a turn of the event loop (the clock's setImmediate) before each slice after the first", async () => {
    const clock = new WatchedClock();
    const am = await alertServer();
    const out = output(clock, [am.url]);
    const delivery = out.deliver(downs(clock, 1500), 1);
    await until(null, () => am.posts.length === 1, "the first slice");
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(am.posts).toHaveLength(1);
    await expect(pumped(clock, delivery)).resolves.toEqual(DELIVERED);
    expect(sizes(am.posts)).toEqual([1000, 500]);
  });
});

describe("the alertmanager output, when an alert cannot be built", () => {
  it("fails a delivery for good as internal when a notice's since is NaN, and still sends the rest of its batch", async () => {
    const clock = new WatchedClock();
    const am = await alertServer();
    const out = output(clock, [am.url]);
    const outcome = await pumped(
      clock,
      out.deliver([down(clock, "bad", { since: NaN }), down(clock, "good")], 1),
    );
    expect(outcome).toMatchObject({ ok: false, retry: false, reason: "internal" });
    expect(!outcome.ok && outcome.detail).toContain("bad");
    expect(am.posts.flat().map((a) => a.labels.node)).toEqual(["good"]);
  });

  it("fails a delivery as internal, without a POST, when endsAt is past the last date, and counts each such resend as failed", async () => {
    const clock = new WatchedClock();
    const am = await alertServer();
    const resendMs = 3e15;
    const out = output(clock, [am.url], { resendMs });
    const outcome: Outcome = await pumped(clock, out.deliver([down(clock, "n1")], 1));
    expect(outcome).toMatchObject({ ok: false, retry: false, reason: "internal" });
    expect(am.posts).toHaveLength(0);
    clock.advance(resendMs);
    await until(clock, () => out.resendFailures === 1, "a failed resend");
    clock.advance(resendMs);
    await until(clock, () => out.resendFailures === 2, "another failed resend");
    expect(am.posts).toHaveLength(0);
  });
});

describe("the alertmanager output, handed over on reload", () => {
  it("moves firing and resolved alerts to the new output, which sends them at once to its own URLs, keeping their times", async () => {
    const clock = new WatchedClock();
    const [a, b] = [await alertServer(), await alertServer()];
    const old = output(clock, [a.url], { resendMs: 10_000 });
    const raisedAt = clock.wallMs();
    await pumped(clock, old.deliver([down(clock, "n1"), down(clock, "n2")], 1));
    clock.advance(2000);
    const resolvedAt = clock.wallMs();
    await pumped(clock, old.deliver([up(clock, "n2")], 1));

    const next = output(clock, [b.url], { resendMs: 30_000 });
    old.handOver(next);
    expect([old.activeAlerts, next.activeAlerts]).toEqual([0, 1]);
    clock.advance(1);
    await until(clock, () => b.posts.length === 1, "the new output's first send");
    const sent = byNode(b.posts[0]!);
    expect(sent.get("n1")).toMatchObject({
      startsAt: iso(raisedAt - 1000),
      endsAt: iso(clock.wallMs() + FIRING_RESENDS * 30_000),
    });
    expect(sent.get("n2")).toMatchObject({ startsAt: iso(raisedAt - 1000), endsAt: iso(resolvedAt) });
  });

  it("never resends from the old output after the hand-over; the new one resends at its own period", async () => {
    const clock = new WatchedClock();
    const [a, b] = [await alertServer(), await alertServer()];
    const old = output(clock, [a.url], { resendMs: 10_000 });
    await pumped(clock, old.deliver([down(clock, "n1")], 1));
    await rearmed(clock, 10_000);
    clock.advance(10_000);
    await until(clock, () => a.posts.length === 2, "a resend by the old output");

    const next = output(clock, [b.url], { resendMs: 30_000 });
    old.handOver(next);
    clock.advance(1);
    await until(clock, () => b.posts.length === 1, "the new output's first send");
    for (let resends = 1; resends <= 3; resends++) {
      await rearmed(clock, 30_000);
      clock.advance(29_999);
      await tick();
      expect(b.posts).toHaveLength(resends);
      clock.advance(1);
      await until(clock, () => b.posts.length === resends + 1, `resend ${resends} by the new output`);
    }
    expect(a.posts).toHaveLength(2);
  });

  it("stops the old output's resend between slices when it hands over in the middle of one", async () => {
    const clock = new WatchedClock();
    const [a, b] = [await alertServer(), await alertServer()];
    const old = output(clock, [a.url], { resendMs: 10_000 });
    await pumped(clock, old.deliver(downs(clock, 2500), 1));
    clock.advance(10_000);
    await until(null, () => a.posts.length === 4, "the resend's first slice");

    const next = output(clock, [b.url]);
    old.handOver(next);
    clock.advance(1);
    await until(clock, () => b.posts.length === 3, "the new output's send");
    expect(sizes(b.posts)).toEqual([1000, 1000, 500]);
    for (let i = 0; i < 20; i++) {
      clock.runImmediates();
      await tick();
    }
    expect(a.posts).toHaveLength(4);
    expect(old.resendFailures).toBe(0);
  });

  it("keeps a resolved alert's drop time: it is sent for RESOLVED_RESEND_MS after it ended, and then no more", async () => {
    const clock = new WatchedClock();
    const [a, b] = [await alertServer(), await alertServer()];
    const old = output(clock, [a.url], { resendMs: 60_000 });
    await pumped(clock, old.deliver([down(clock, "n1"), down(clock, "n2")], 1));
    await pumped(clock, old.deliver([up(clock, "n2")], 1));
    const next = output(clock, [b.url], { resendMs: RESOLVED_RESEND_MS / 2 });
    old.handOver(next);
    const sentNodes = (post: PostedAlert[]) => post.map((x) => x.labels.node).sort();
    clock.advance(1);
    await until(clock, () => b.posts.length === 1, "the new output's first send");
    await rearmed(clock, RESOLVED_RESEND_MS / 2);
    clock.advance(RESOLVED_RESEND_MS / 2);
    await until(clock, () => b.posts.length === 2, "its first resend");
    await rearmed(clock, RESOLVED_RESEND_MS / 2);
    clock.advance(RESOLVED_RESEND_MS / 2);
    await until(clock, () => b.posts.length === 3, "its second resend");
    expect(b.posts.map(sentNodes)).toEqual([["n1", "n2"], ["n1", "n2"], ["n1"]]);
  });

  it("resolves on the new output what the old one raised, and still sends no resolution for what neither raised", async () => {
    const clock = new WatchedClock();
    const [a, b] = [await alertServer(), await alertServer()];
    const old = output(clock, [a.url]);
    await pumped(clock, old.deliver([down(clock, "n1")], 1));
    const next = output(clock, [b.url]);
    old.handOver(next);
    await pumped(clock, old.close());
    const resolvedAt = clock.wallMs();
    expect(await pumped(clock, next.deliver([up(clock, "n1"), up(clock, "never-down")], 1))).toEqual(
      DELIVERED,
    );
    expect(next.activeAlerts).toBe(0);
    expect(b.posts).toEqual([[expect.objectContaining({ endsAt: iso(resolvedAt) })]]);
    expect(b.posts[0]![0]!.labels.node).toBe("n1");
  });

  it("asks the new output's stillFiring about the alerts handed over to it", async () => {
    const clock = new WatchedClock();
    const [a, b] = [await alertServer(), await alertServer()];
    const old = output(clock, [a.url], {}, { stillFiring: () => true });
    await pumped(clock, old.deliver([down(clock, "n1"), down(clock, "gone")], 1));
    const next = output(clock, [b.url], {}, { stillFiring: (_key, node) => node !== "gone" });
    old.handOver(next);
    const resolvedAt = clock.wallMs() + 1;
    clock.advance(1);
    await until(clock, () => b.posts.length === 1, "the new output's first send");
    expect(byNode(b.posts[0]!).get("gone")!.endsAt).toBe(iso(resolvedAt));
    expect(next.activeAlerts).toBe(1);
  });

  it("passes a delivery made to the old output after the hand-over on to the new one", async () => {
    const clock = new WatchedClock();
    const [a, b] = [await alertServer(), await alertServer()];
    const old = output(clock, [a.url]);
    await pumped(clock, old.deliver([down(clock, "n1")], 1));
    const next = output(clock, [b.url]);
    old.handOver(next);
    expect(await pumped(clock, old.deliver([up(clock, "n1")], 1))).toEqual(DELIVERED);
    expect(next.activeAlerts).toBe(0);
    expect(a.posts).toHaveLength(1);
    expect(b.posts.flat().map((x) => x.labels.node)).toEqual(["n1"]);
  });

  it("does nothing when handed to an output of another kind: it keeps its alerts and its resends", async () => {
    const clock = new WatchedClock();
    const a = await alertServer();
    const old = output(clock, [a.url], { resendMs: 10_000 });
    await pumped(clock, old.deliver([down(clock, "n1")], 1));
    const webhook: Output = {
      name: "hook",
      kind: "webhook",
      deliver: () => Promise.resolve(DELIVERED),
      close: () => Promise.resolve(),
    };
    old.handOver(webhook);
    expect(old.activeAlerts).toBe(1);
    clock.advance(10_000);
    await until(clock, () => a.posts.length === 2, "a resend");
  });
});
