import { createHmac, createSecretKey, timingSafeEqual } from "node:crypto";
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { systemClock } from "../../src/clock.js";
import type { WebhookOutputSpec } from "../../src/config/types.js";
import type { Notice } from "../../src/notify/notice.js";
import { signatureHeader, SIGNATURE_TOLERANCE_SEC, verifySignature } from "../../src/notify/signature.js";
import { FIRING_ENDS_AT, WebhookOutput, type AlertmanagerPayload } from "../../src/notify/webhook.js";

const SECRET = Buffer.from("a shared secret of 32 bytes.....");
const KEY = createSecretKey(SECRET);
const T0 = Date.parse("2025-03-01T12:00:00.000Z");
const iso = (ms: number): string => new Date(ms).toISOString();

function notice(over: Partial<Notice> = {}): Notice {
  return {
    hb: 1,
    event: "node.down",
    level: "error",
    node: "web1",
    state: "down",
    previous: "late",
    since: T0,
    lastSeen: T0 - 30_000,
    labels: { rack: "r1", role: "web" },
    seq: 1,
    dedupKey: "web1/down/1.42",
    monitor: "mon-a",
    time: T0 + 5,
    test: false,
    fields: { node: "web1", lastSeen: T0 - 30_000, silentMs: 30_000, timeoutMs: 30_000, at: T0 },
    ...over,
  };
}

function upNotice(over: Partial<Notice> = {}): Notice {
  return notice({
    event: "node.up",
    level: "info",
    state: "up",
    previous: "down",
    since: T0 + 60_000,
    time: T0 + 60_000,
    seq: 2,
    dedupKey: "web1/up/1.43",
    fields: { node: "web1", from: "10.0.0.1:41000", previous: "down", downMs: 60_000 },
    ...over,
  });
}

interface Received {
  url: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
  /** The receiver's own check of X-Hb-Signature; null when the request carried none. */
  signed: boolean | null;
}

/** A receiver's check, written from the documented algorithm alone. */
function receiverChecks(headers: IncomingHttpHeaders, body: Buffer): boolean | null {
  const header = headers["x-hb-signature"];
  if (header === undefined) return null;
  const [, t, v1] = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(String(header)) ?? [];
  if (t === undefined || v1 === undefined) return false;
  if (Math.abs(Date.now() / 1000 - Number(t)) > 300) return false;
  const expected = createHmac("sha256", SECRET).update(`${t}.`).update(body).digest();
  return timingSafeEqual(expected, Buffer.from(v1, "hex"));
}

type Respond = (req: IncomingMessage, res: ServerResponse) => void;

interface Receiver {
  url: string;
  port: number;
  requests: Received[];
  /** Resolves when the next request (its whole body) has arrived. */
  arrived(): Promise<Received>;
}

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

async function receiver(respond: Respond = (_req, res) => res.end()): Promise<Receiver> {
  const requests: Received[] = [];
  const waiting: ((r: Received) => void)[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks);
      const received = {
        url: req.url ?? "",
        headers: req.headers,
        body,
        signed: receiverChecks(req.headers, body),
      };
      requests.push(received);
      waiting.shift()?.(received);
      respond(req, res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  cleanup.push(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hook`,
    port,
    requests,
    arrived: () => new Promise((resolve) => waiting.push(resolve)),
  };
}

function output(
  over: Partial<WebhookOutputSpec> & { url: string },
  key: typeof KEY | null = null,
): WebhookOutput {
  const spec: WebhookOutputSpec = {
    kind: "webhook",
    name: "ops",
    on: null,
    timeoutMs: 10_000,
    queue: 100,
    attempts: 3,
    line: 1,
    col: 1,
    format: "hb",
    signWith: key === null ? null : "k1",
    ...over,
  };
  const out = new WebhookOutput(spec, {
    clock: systemClock,
    key,
    userAgent: "hb/0.1.0",
    externalUrl: "http://mon-a:26723/",
  });
  cleanup.push(() => out.close());
  return out;
}

const answering =
  (status: number, body = "", headers: Record<string, string> = {}): Respond =>
  (_req, res) => {
    res.writeHead(status, headers);
    res.end(body);
  };

const never: Respond = () => {};

function json(r: Received | undefined): unknown {
  return JSON.parse(r?.body.toString("utf8") ?? "null");
}

describe("the webhook output, format hb", () => {
  it("posts one notice as one JSON object with its attempt, as JSON, with user agent and attempt headers", async () => {
    const rx = await receiver();
    const n = notice();
    expect(await output({ url: rx.url }).deliver([n], 2)).toEqual({ ok: true });
    expect(rx.requests).toHaveLength(1);
    const [r] = rx.requests;
    expect(r?.url).toBe("/hook");
    expect(r?.headers["content-type"]).toBe("application/json");
    expect(r?.headers["user-agent"]).toBe("hb/0.1.0");
    expect(r?.headers["x-hb-attempt"]).toBe("2");
    expect(json(r)).toEqual({ ...n, attempt: 2 });
  });

  it("posts a batch as one JSON array, in order, each notice with the attempt", async () => {
    const rx = await receiver();
    const batch = [notice(), upNotice(), notice({ node: "web2", seq: 3, dedupKey: "web2/down/7.1" })];
    expect(await output({ url: rx.url }).deliver(batch, 1)).toEqual({ ok: true });
    expect(rx.requests).toHaveLength(1);
    expect(json(rx.requests[0])).toEqual(batch.map((n) => ({ ...n, attempt: 1 })));
  });

  it("signs each request so that a receiver can check it over the time and the raw body", async () => {
    const rx = await receiver();
    const out = output({ url: rx.url, signWith: "k1" }, KEY);
    expect(await out.deliver([notice()], 1)).toEqual({ ok: true });
    expect(await out.deliver([notice(), upNotice()], 2)).toEqual({ ok: true });
    expect(rx.requests.map((r) => r.signed)).toEqual([true, true]);
    expect(rx.requests.map((r) => r.headers["x-hb-key-id"])).toEqual(["k1", "k1"]);
  });

  it("sends no signature headers when it has no key", async () => {
    const rx = await receiver();
    expect(await output({ url: rx.url }).deliver([notice()], 1)).toEqual({ ok: true });
    expect(rx.requests[0]?.signed).toBeNull();
    expect(rx.requests[0]?.headers).not.toHaveProperty("x-hb-key-id");
  });
});

describe("the webhook output's outcomes", () => {
  it.each([503, 500, 429])("reports HTTP %i as a failure worth retrying", async (status) => {
    const rx = await receiver(answering(status, "try later"));
    expect(await output({ url: rx.url }).deliver([notice()], 1)).toEqual({
      ok: false,
      retry: true,
      reason: `http_${status}`,
      detail: expect.stringContaining("try later") as string,
    });
  });

  it.each([404, 400])("reports HTTP %i as a final failure, with the body in the detail", async (status) => {
    const rx = await receiver(answering(status, '{"error":"no such hook"}'));
    expect(await output({ url: rx.url }).deliver([notice()], 1)).toEqual({
      ok: false,
      retry: false,
      reason: `http_${status}`,
      detail: `HTTP ${status}: {"error":"no such hook"}`,
    });
  });

  it("keeps only the start of a large error body in the detail", async () => {
    const rx = await receiver(answering(500, "x".repeat(1_000_000)));
    const outcome = await output({ url: rx.url }).deliver([notice()], 1);
    expect(outcome).toMatchObject({ ok: false, retry: true, reason: "http_500" });
    const detail = outcome.ok ? "" : outcome.detail;
    expect(detail.startsWith("HTTP 500: xxx")).toBe(true);
    expect(detail.length).toBeLessThanOrEqual(600);
  });

  it("reports a receiver that never answers as a timeout worth retrying", async () => {
    const rx = await receiver(never);
    expect(await output({ url: rx.url, timeoutMs: 300 }).deliver([notice()], 1)).toMatchObject({
      ok: false,
      retry: true,
      reason: "timeout",
    });
    expect(rx.requests).toHaveLength(1);
  });

  it("reports a refused connection as a network failure worth retrying", async () => {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as AddressInfo;
    await new Promise((resolve) => server.close(resolve));
    expect(await output({ url: `http://127.0.0.1:${port}/hook` }).deliver([notice()], 1)).toEqual({
      ok: false,
      retry: true,
      reason: "network",
      detail: expect.stringContaining("ECONNREFUSED") as string,
    });
  });

  it("does not follow a redirect, and reports it as final", async () => {
    const rx = await receiver((req, res) => {
      if (req.url === "/hook") res.writeHead(302, { location: "/elsewhere" }).end();
      else res.end();
    });
    expect(await output({ url: rx.url }).deliver([notice()], 1)).toEqual({
      ok: false,
      retry: false,
      reason: "http_302",
      detail: expect.stringContaining("/elsewhere") as string,
    });
    expect(rx.requests.map((r) => r.url)).toEqual(["/hook"]);
  });

  it("close() ends a request in flight as closed, delivers nothing after, and may be called again", async () => {
    const rx = await receiver(never);
    const out = output({ url: rx.url });
    const pending = out.deliver([notice()], 1);
    await rx.arrived();
    await out.close();
    expect(await pending).toMatchObject({ ok: false, retry: false, reason: "closed" });
    expect(await out.deliver([notice()], 2)).toMatchObject({ ok: false, retry: false, reason: "closed" });
    await out.close();
    expect(rx.requests).toHaveLength(1);
  });
});

describe("the webhook output, format alertmanager", () => {
  async function send(notices: Notice[]): Promise<AlertmanagerPayload> {
    const rx = await receiver();
    expect(await output({ url: rx.url, name: "am", format: "alertmanager" }).deliver(notices, 1)).toEqual({
      ok: true,
    });
    expect(rx.requests).toHaveLength(1);
    return json(rx.requests[0]) as AlertmanagerPayload;
  }

  it("sends a node.down as a firing alert in Alertmanager's version 4 payload", async () => {
    const payload = await send([notice()]);
    const labels = { rack: "r1", role: "web", alertname: "HbNodeDown", node: "web1", severity: "critical" };
    expect(payload).toMatchObject({
      version: "4",
      truncatedAlerts: 0,
      status: "firing",
      receiver: "am",
      groupLabels: {},
      commonLabels: labels,
      externalURL: "http://mon-a:26723/",
    });
    expect(typeof payload.groupKey).toBe("string");
    expect(payload.alerts).toHaveLength(1);
    const [alert] = payload.alerts;
    expect(alert).toMatchObject({ status: "firing", labels, startsAt: iso(T0), endsAt: FIRING_ENDS_AT });
    expect(alert?.annotations.summary).toContain("web1");
    expect(payload.commonAnnotations).toEqual(alert?.annotations);
    expect(alert?.fingerprint).toMatch(/^[0-9a-f]{16}$/);
    expect(typeof alert?.generatorURL).toBe("string");
  });

  it("gives the same labels the same fingerprint, whatever their order, and other labels another", async () => {
    const [a] = (await send([notice()])).alerts;
    const [b] = (await send([notice({ labels: { role: "web", rack: "r1" }, time: T0 + 999 })])).alerts;
    const [c] = (await send([notice({ node: "web2" })])).alerts;
    expect(b?.fingerprint).toBe(a?.fingerprint);
    expect(c?.fingerprint).not.toBe(a?.fingerprint);
  });

  it("lists several nodes' alerts, with only the labels they share as common labels", async () => {
    const payload = await send([notice(), notice({ node: "web2", labels: { rack: "r2", role: "web" } })]);
    expect(payload.alerts.map((a) => a.labels.node)).toEqual(["web1", "web2"]);
    expect(payload.commonLabels).toEqual({ alertname: "HbNodeDown", severity: "critical", role: "web" });
  });

  it("sends a node.up as the resolved alert, with the same fingerprint and its end time", async () => {
    const [down] = (await send([notice()])).alerts;
    const payload = await send([upNotice()]);
    expect(payload.status).toBe("resolved");
    expect(payload.alerts).toHaveLength(1);
    expect(payload.alerts[0]).toMatchObject({
      status: "resolved",
      endsAt: iso(T0 + 60_000),
      fingerprint: down?.fingerprint,
    });
  });

  it("sends no request for a notice that raises or ends no alert", async () => {
    const rx = await receiver();
    const out = output({ url: rx.url, format: "alertmanager" });
    const late = notice({ event: "node.late", level: "warn", state: "late", previous: "up" });
    expect(await out.deliver([late], 1)).toEqual({ ok: true });
    expect(await out.deliver([notice()], 1)).toEqual({ ok: true });
    expect(rx.requests).toHaveLength(1);
    expect((json(rx.requests[0]) as AlertmanagerPayload).alerts[0]?.labels.alertname).toBe("HbNodeDown");
  });
});

describe("verifySignature", () => {
  const body = Buffer.from('{"hb":1,"event":"node.down"}');
  const nowSec = Math.floor(T0 / 1000);
  const header = signatureHeader(KEY, nowSec, body);

  it("accepts a signature of the same body with the same key within the tolerance", () => {
    expect(verifySignature(KEY, header, body, nowSec)).toBe(true);
    expect(verifySignature(KEY, header, body.toString("utf8"), nowSec + SIGNATURE_TOLERANCE_SEC)).toBe(true);
    expect(verifySignature(KEY, header, body, nowSec - SIGNATURE_TOLERANCE_SEC)).toBe(true);
  });

  it("refuses a tampered body and another key", () => {
    expect(verifySignature(KEY, header, Buffer.from('{"hb":1,"event":"node.up"}'), nowSec)).toBe(false);
    expect(
      verifySignature(createSecretKey(Buffer.from("another secret of 32 bytes......")), header, body, nowSec),
    ).toBe(false);
  });

  it("refuses a stale timestamp, and one too far ahead", () => {
    expect(verifySignature(KEY, header, body, nowSec + SIGNATURE_TOLERANCE_SEC + 1)).toBe(false);
    expect(verifySignature(KEY, header, body, nowSec - SIGNATURE_TOLERANCE_SEC - 1)).toBe(false);
    expect(verifySignature(KEY, header, body, nowSec + 61, 60)).toBe(false);
  });

  it("refuses malformed headers", () => {
    const v1 = header.slice(header.indexOf("v1="));
    for (const bad of [
      "",
      "garbage",
      `t=${nowSec}`,
      v1,
      `${v1},t=${nowSec}`,
      `t=${nowSec},${v1.toUpperCase()}`,
      `t=${nowSec},${v1.slice(0, -2)}`,
      `t=${nowSec},${v1}00`,
      `t=${nowSec}.0,${v1}`,
      `t=-${nowSec},${v1}`,
      `t=0${nowSec},${v1}`,
    ]) {
      expect(verifySignature(KEY, bad, body, nowSec), bad).toBe(false);
    }
  });

  it("signs the documented bytes: HMAC-SHA-256 of the time, a dot and the body, in lowercase hex", () => {
    const expected = createHmac("sha256", SECRET).update(`${nowSec}.`).update(body).digest("hex");
    expect(header).toBe(`t=${nowSec},v1=${expected}`);
  });
});
