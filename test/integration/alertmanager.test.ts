// The alertmanager output against a real Alertmanager (and a peered pair of them): alerts are read
// back through GET /api/v2/alerts and the notifications of a webhook receiver.
import { createServer as createHttpServer } from "node:http";
import { createServer, type AddressInfo, type Server, type Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { systemClock } from "../../src/clock.js";
import type { AlertmanagerOutputSpec } from "../../src/config/types.js";
import { AlertmanagerOutput, FIRING_RESENDS, type AlertmanagerDeps } from "../../src/notify/alertmanager.js";
import type { Notice } from "../../src/notify/notice.js";
import { alertmanagerSpec } from "../support/notify-specs.js";
import type { RunningAlertmanager, Receiver, WebhookNotification } from "../support/alertmanager.js";
import {
  alertmanagerBinary,
  freePort,
  getAlerts,
  sleep,
  startAlertmanager,
  startReceiver,
} from "../support/alertmanager.js";

const BINARY = alertmanagerBinary();
const STATUS_URL = "http://127.0.0.1:26723";
const POLL_MS = 50;
/** Longer than group_wait plus group_interval: a notification that was coming has come. */
const SETTLE_MS = 2500;

const spec = alertmanagerSpec;

const outputs: AlertmanagerOutput[] = [];
function output(
  urls: string[],
  overrides: Partial<AlertmanagerOutputSpec> = {},
  deps: Partial<AlertmanagerDeps> = {},
): AlertmanagerOutput {
  const out = new AlertmanagerOutput(spec(urls, overrides), {
    clock: systemClock,
    statusUrl: STATUS_URL,
    ...deps,
  });
  outputs.push(out);
  return out;
}

let seq = 0;
function notice(
  event: "node.down" | "node.up",
  node: string,
  extra: { monitor?: string; labels?: Record<string, string> } = {},
): Notice {
  const now = Date.now();
  const down = event === "node.down";
  return {
    hb: 1,
    event,
    level: down ? "error" : "info",
    node,
    state: down ? "down" : "up",
    previous: down ? "late" : "down",
    since: down ? now - 1000 : now,
    lastSeen: now - 6000,
    labels: extra.labels ?? { rack: "r1" },
    seq: ++seq,
    dedupKey: `${node}/${down ? "down" : "up"}/1.42`,
    monitor: extra.monitor ?? "hb-a",
    time: now,
    test: false,
    fields: down
      ? { node, lastSeen: now - 6000, silentMs: 6000, timeoutMs: 5000, at: now - 1000 }
      : { node, from: "127.0.0.1:40000", previous: "down", downMs: 1000 },
  };
}

async function eventually<T>(
  read: () => Promise<T>,
  done: (value: T) => boolean,
  what: string,
  timeoutMs = 10_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (Date.now() > deadline)
      throw new Error(`${what}: not within ${timeoutMs} ms; last: ${JSON.stringify(value)}`);
    await sleep(POLL_MS);
  }
}

interface Counter {
  readonly url: string;
  /** Each POST passed on: when it arrived (epoch ms) and its alerts. */
  readonly posts: { atMs: number; alerts: { labels: Record<string, string>; endsAt: string }[] }[];
  close(): Promise<void>;
}

/** An HTTP relay to `target` that keeps every POST it passes on: who sent what, and when. */
async function counter(target: string): Promise<Counter> {
  const posts: Counter["posts"] = [];
  const server = createHttpServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      const body = Buffer.concat(chunks).toString("utf8");
      if (req.method === "POST")
        posts.push({ atMs: Date.now(), alerts: JSON.parse(body) as Counter["posts"][0]["alerts"] });
      void fetch(`${target}${req.url ?? "/"}`, {
        method: req.method ?? "GET",
        headers: { "content-type": "application/json" },
        ...(req.method === "POST" ? { body } : {}),
      })
        .then(async (answer) => res.writeHead(answer.status).end(await answer.text()))
        .catch(() => res.writeHead(502).end());
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    posts,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

const ofNode = (node: string) => `filter=${encodeURIComponent(`node="${node}"`)}`;
const about = (node: string, status: "firing" | "resolved") => (n: WebhookNotification) =>
  n.status === status && n.alerts.some((a) => a.labels.node === node);

describe.skipIf(BINARY === null && process.env.CI !== "true")("the alertmanager output", () => {
  let am: RunningAlertmanager;
  let receiver: Receiver;

  beforeAll(async () => {
    if (BINARY === null) return;
    receiver = await startReceiver();
    am = await startAlertmanager({ receiverUrl: receiver.url });
  });

  afterAll(async () => {
    await Promise.all(outputs.map((o) => o.close()));
    await am?.stop();
    await receiver?.close();
  });

  it("finds an Alertmanager installed (Debian: prometheus-alertmanager)", () => {
    expect(BINARY).not.toBeNull();
  });

  it("raises HbNodeDown for a node.down, with the node's labels, annotations and a generatorURL", async () => {
    const out = output([am.url]);
    await expect(out.deliver([notice("node.down", "n1")], 1)).resolves.toEqual({ ok: true });
    const [alert] = await eventually(
      () => getAlerts(am.url, ofNode("n1")),
      (a) => a.length === 1,
      "alert n1",
    );
    expect(alert!.labels).toEqual({ alertname: "HbNodeDown", node: "n1", severity: "critical", rack: "r1" });
    expect(alert!.annotations).toMatchObject({
      summary: "node n1 is down",
      dedup_key: "n1/down/1.42",
      description: "no heartbeat for 6.0 s (timeout 5.0 s)",
    });
    expect(alert!.generatorURL).toBe(`${STATUS_URL}/status?node=n1`);
    expect(alert!.status.state).toBe("active");
    expect(out.activeAlerts).toBe(1);
    const [firing] = await receiver.waitFor(about("n1", "firing"));
    expect(firing!.alerts[0]!.labels).toMatchObject({ alertname: "HbNodeDown", node: "n1" });
  });

  it("keeps a firing alert active across resends, moving its endsAt forward", async () => {
    const out = output([am.url], { resendMs: 300 });
    await out.deliver([notice("node.down", "n2")], 1);
    const endsAt: string[] = [];
    await eventually(
      async () => {
        const [alert] = await getAlerts(am.url, ofNode("n2"));
        expect(alert?.status.state).toBe("active");
        if (alert!.endsAt !== endsAt.at(-1)) endsAt.push(alert!.endsAt);
        return endsAt.length;
      },
      (seen) => seen >= 4,
      "three resends of n2",
    );
    const times = endsAt.map((t) => Date.parse(t));
    expect(times).toEqual([...times].sort((a, b) => a - b));
    expect(out.resendFailures).toBe(0);
  });

  it("resolves the alert on node.up: it leaves the active alerts and the receiver hears it resolved", async () => {
    const out = output([am.url]);
    await out.deliver([notice("node.down", "n3")], 1);
    await receiver.waitFor(about("n3", "firing"));
    await expect(out.deliver([notice("node.up", "n3")], 1)).resolves.toEqual({ ok: true });
    expect(out.activeAlerts).toBe(0);
    await eventually(
      () => getAlerts(am.url, `active=true&${ofNode("n3")}`),
      (a) => a.length === 0,
      "n3 resolved",
    );
    const [resolved] = await receiver.waitFor(about("n3", "resolved"));
    expect(resolved!.alerts[0]!.status).toBe("resolved");
  });

  it("sends no resolution for an alert it never raised", async () => {
    const out = output(["http://127.0.0.1:1"]);
    await expect(out.deliver([notice("node.up", "never-down")], 1)).resolves.toEqual({ ok: true });
    expect(out.activeAlerts).toBe(0);
  });

  it("makes one alert and one firing notification of two monitors reporting the same node down", async () => {
    const a = output([am.url]);
    const b = output([am.url]);
    await Promise.all([
      a.deliver([notice("node.down", "n4", { monitor: "hb-a" })], 1),
      b.deliver([notice("node.down", "n4", { monitor: "hb-b" })], 1),
    ]);
    const alerts = await eventually(
      () => getAlerts(am.url, ofNode("n4")),
      (x) => x.length > 0,
      "alert n4",
    );
    expect(alerts).toHaveLength(1);
    await receiver.waitFor(about("n4", "firing"));
    await sleep(SETTLE_MS);
    expect(receiver.notifications.filter(about("n4", "firing"))).toHaveLength(1);
    expect(await getAlerts(am.url, ofNode("n4"))).toHaveLength(1);
  });

  it("resolves a firing alert at the next resend once stillFiring says its node is gone", async () => {
    let listed = true;
    const out = output([am.url], { resendMs: 300 }, { stillFiring: (_key, node) => node !== "n5" || listed });
    await out.deliver([notice("node.down", "n5")], 1);
    await receiver.waitFor(about("n5", "firing"));
    listed = false;
    await eventually(
      () => getAlerts(am.url, ofNode("n5")),
      (a) => a.length === 0,
      "n5 resolved",
    );
    expect(out.activeAlerts).toBe(0);
    await receiver.waitFor(about("n5", "resolved"));
  });

  it("keeps alerts firing across a reload that replaces the output: the old one stops resending, the new one resends at its own period", async () => {
    const [viaOld, viaNew] = [await counter(am.url), await counter(am.url)];
    try {
      const old = output([viaOld.url], { resendMs: 300 });
      await old.deliver([notice("node.down", "h1")], 1);
      await receiver.waitFor(about("h1", "firing"));
      await eventually(
        () => Promise.resolve(viaOld.posts.length),
        (n) => n >= 2,
        "a resend by the old output",
      );
      const next = output([viaNew.url], { resendMs: 500 });
      old.handOver(next);
      await old.close();
      const oldPosts = viaOld.posts.length;
      // Eight of the old output's periods, twice the life of the endsAt it last sent: only the new
      // output's resends keep the alert active.
      const until = Date.now() + 8 * 300;
      while (Date.now() < until) {
        expect(await getAlerts(am.url, `active=true&${ofNode("h1")}`)).toHaveLength(1);
        await sleep(100);
      }
      expect(viaOld.posts).toHaveLength(oldPosts);
      expect(viaNew.posts.length).toBeGreaterThanOrEqual(3);
      for (const { atMs, alerts } of viaNew.posts) {
        const [alert] = alerts;
        expect(alert!.labels.node).toBe("h1");
        // Set FIRING_RESENDS of the new output's periods ahead, not of the old one's.
        const aheadMs = Date.parse(alert!.endsAt) - atMs;
        expect(aheadMs).toBeGreaterThan(FIRING_RESENDS * 300);
        expect(aheadMs).toBeLessThanOrEqual(FIRING_RESENDS * 500);
      }
      expect(receiver.notifications.filter(about("h1", "resolved"))).toHaveLength(0);
      // The new output resolves what the old one raised.
      await expect(next.deliver([notice("node.up", "h1")], 1)).resolves.toEqual({ ok: true });
      await receiver.waitFor(about("h1", "resolved"));
    } finally {
      await Promise.all([viaOld.close(), viaNew.close()]);
    }
  });

  it("takes a 4xx (a wrong path, a refused alert) as final: not worth retrying", async () => {
    const wrongPath = await output([`${am.url}/nowhere`]).deliver([notice("node.down", "n6")], 1);
    expect(wrongPath).toMatchObject({ ok: false, retry: false, reason: "http_404" });
    const badLabel = await output([am.url]).deliver(
      [notice("node.down", "n7", { labels: { "not-a-label-name": "x" } })],
      1,
    );
    expect(badLabel).toMatchObject({ ok: false, retry: false, reason: "http_400" });
    expect(!badLabel.ok && badLabel.detail).toMatch(/invalid label set/);
  });

  it("takes an unreachable Alertmanager as worth retrying, while the reachable one gets the alert", async () => {
    const closedPort = await freePort();
    const out = output([am.url, `http://127.0.0.1:${closedPort}`]);
    const outcome = await out.deliver([notice("node.down", "n8")], 1);
    expect(outcome).toMatchObject({ ok: false, retry: true, reason: "refused" });
    expect(!outcome.ok && outcome.detail).toContain(`127.0.0.1:${closedPort}/api/v2/alerts`);
    expect(await getAlerts(am.url, ofNode("n8"))).toHaveLength(1);
  });

  describe("against a server that never answers", () => {
    let silent: Server;
    let silentUrl: string;
    const sockets = new Set<Socket>();
    let connections = 0;

    beforeAll(async () => {
      silent = createServer((socket) => {
        connections++;
        sockets.add(socket);
      });
      await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
      const address = silent.address();
      silentUrl = `http://127.0.0.1:${typeof address === "object" && address !== null ? address.port : 0}`;
    });

    afterAll(async () => {
      sockets.forEach((s) => s.destroy());
      await new Promise<void>((resolve) => silent.close(() => resolve()));
    });

    it("gives up on a request at timeoutMs, as worth retrying", async () => {
      const outcome = await output([silentUrl], { timeoutMs: 200 }).deliver([notice("node.down", "n9")], 1);
      expect(outcome).toMatchObject({ ok: false, retry: true, reason: "timeout" });
    });

    it("aborts a request in flight on close(), which may be called twice", async () => {
      const out = output([silentUrl], { timeoutMs: 20_000 });
      const before = connections;
      const delivery = out.deliver([notice("node.down", "n10")], 1);
      await eventually(
        () => Promise.resolve(connections),
        (n) => n > before,
        "the request to arrive",
      );
      await out.close();
      await out.close();
      await expect(delivery).resolves.toMatchObject({ ok: false, reason: "closed" });
      await expect(out.deliver([notice("node.down", "n10")], 2)).resolves.toMatchObject({ ok: false });
    });
  });

  describe("with two peered Alertmanagers", () => {
    let pairReceiver: Receiver;
    let first: RunningAlertmanager;
    let second: RunningAlertmanager;

    beforeAll(async () => {
      if (BINARY === null) return;
      pairReceiver = await startReceiver();
      first = await startAlertmanager({ receiverUrl: pairReceiver.url, clusterPort: 0 });
      second = await startAlertmanager({ receiverUrl: pairReceiver.url, peers: [first.clusterAddress!] });
    });

    afterAll(async () => {
      await Promise.all([first?.stop(), second?.stop()]);
      await pairReceiver?.close();
    });

    it("forms one cluster: each lists both members, and a silence made at one holds at the other", async () => {
      type Status = { cluster: { status: string; peers: unknown[] } };
      for (const am of [first, second])
        await eventually(
          async () => (await (await fetch(`${am.url}/api/v2/status`)).json()) as Status,
          (s) => s.cluster.status === "ready" && s.cluster.peers.length === 2,
          `cluster status at ${am.url}`,
        );
      const now = Date.now();
      const created = await fetch(`${first.url}/api/v2/silences`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({
          matchers: [{ name: "node", value: "silenced", isRegex: false, isEqual: true }],
          startsAt: new Date(now).toISOString(),
          endsAt: new Date(now + 3_600_000).toISOString(),
          createdBy: "test",
          comment: "gossip check",
        }),
      });
      const { silenceID } = (await created.json()) as { silenceID: string };
      await eventually(
        async () => (await fetch(`${second.url}/api/v2/silence/${silenceID}`)).status,
        (status) => status === 200,
        "the silence at the second",
      );
    });

    it("gets the alert to both when pushed to both, and the receiver hears it once", async () => {
      const out = output([first.url, second.url]);
      await expect(out.deliver([notice("node.down", "p1")], 1)).resolves.toEqual({ ok: true });
      const [atFirst] = await eventually(
        () => getAlerts(first.url, ofNode("p1")),
        (a) => a.length === 1,
        "at first",
      );
      const [atSecond] = await eventually(
        () => getAlerts(second.url, ofNode("p1")),
        (a) => a.length === 1,
        "at second",
      );
      expect(atSecond!.fingerprint).toBe(atFirst!.fingerprint);
      await pairReceiver.waitFor(about("p1", "firing"));
      // The second in line waits its peer timeout (1 s) and then finds the first's notification in the gossiped log.
      await sleep(SETTLE_MS);
      expect(pairReceiver.notifications.filter(about("p1", "firing"))).toHaveLength(1);
    });

    it("does not share alerts between peers: an alert pushed to one only is at that one only", async () => {
      const out = output([first.url]);
      await out.deliver([notice("node.down", "p2")], 1);
      await eventually(
        () => getAlerts(first.url, ofNode("p2")),
        (a) => a.length === 1,
        "at first",
      );
      await sleep(1000);
      expect(await getAlerts(second.url, ofNode("p2"))).toEqual([]);
    });
  });
});
