// The webhook output: one POST per batch of notices to one URL, as hb's own JSON or as
// Alertmanager's webhook payload (version "4"), signed when the output has a key (signature.ts).
// It turns what came back into an Outcome (2xx delivered; a network error, a timeout, 429 or 5xx
// worth retrying; any other answer final) and hides the HTTP client: its agent, the deadline, and
// response bodies read with bounded memory.

import { createHash, type KeyObject } from "node:crypto";
import { Agent as HttpAgent, request as httpRequest } from "node:http";
import type { ClientRequest, IncomingMessage, OutgoingHttpHeaders, RequestOptions } from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";
import type { Clock, Timer } from "../clock.js";
import type { WebhookOutputSpec } from "../config/types.js";
import { alertChange, type AlertChange } from "./alerts.js";
import type { Notice } from "./notice.js";
import { DELIVERED, failed, type Outcome, type Output } from "./output.js";
import { KEY_ID_HEADER, SIGNATURE_HEADER, signatureHeader } from "./signature.js";

/** Most bytes of a response body kept for an Outcome's detail; the rest is read and dropped. */
export const MAX_RESPONSE_DETAIL_BYTES = 512;
export const ATTEMPT_HEADER = "x-hb-attempt";
/** Alertmanager's endsAt of an alert that has not ended: Go's zero time. */
export const FIRING_ENDS_AT = "0001-01-01T00:00:00Z";

export interface WebhookDeps {
  clock: Clock;
  /** The secret of `spec.signWith`; null exactly when the output does not sign. */
  key: KeyObject | null;
  userAgent: string;
  /** Alertmanager's externalURL in the payload: where a human finds more (the monitor's status). */
  externalUrl?: string;
}

export interface WebhookAlert {
  status: "firing" | "resolved";
  labels: Record<string, string>;
  annotations: Record<string, string>;
  startsAt: string;
  endsAt: string;
  generatorURL: string;
  fingerprint: string;
}

/** Alertmanager's webhook payload, as its webhook receivers parse it. */
export interface AlertmanagerPayload {
  version: "4";
  groupKey: string;
  truncatedAlerts: 0;
  status: "firing" | "resolved";
  receiver: string;
  groupLabels: Record<string, string>;
  commonLabels: Record<string, string>;
  commonAnnotations: Record<string, string>;
  externalURL: string;
  alerts: WebhookAlert[];
}

/**
 * 16 lowercase hex digits: the first 8 bytes of SHA-256 over the labels sorted by name, each as
 * name, 0xff, value, 0xff (0xff never occurs in UTF-8, so no two label sets encode alike). Stable
 * for the same labels, whatever their order; it is not Alertmanager's own fingerprint (FNV-1a).
 */
export function alertFingerprint(labels: Readonly<Record<string, string>>): string {
  const separator = Buffer.from([0xff]);
  const hash = createHash("sha256");
  const names = Object.keys(labels).sort();
  for (const [name, value] of names.map((n) => [n, labels[n] ?? ""] as const)) {
    hash.update(name).update(separator).update(value).update(separator);
  }
  return hash.digest("hex").slice(0, 16);
}

/** The entries that every map has, with the same value. */
function common(maps: readonly Readonly<Record<string, string>>[]): Record<string, string> {
  const [first, ...rest] = maps;
  if (first === undefined) return {};
  return Object.fromEntries(
    Object.entries(first).filter(([name, value]) =>
      rest.every((m) => Object.hasOwn(m, name) && m[name] === value),
    ),
  );
}

function webhookAlert(change: AlertChange, notice: Notice): WebhookAlert {
  const { labels, annotations, startsAt } = change.alert;
  return {
    status: change.firing ? "firing" : "resolved",
    labels: { ...labels },
    annotations: { ...annotations },
    startsAt,
    endsAt: change.firing ? FIRING_ENDS_AT : (change.alert.endsAt ?? new Date(notice.time).toISOString()),
    generatorURL: change.alert.generatorURL ?? "",
    fingerprint: alertFingerprint(labels),
  };
}

/** The payload for `notices`, or null when none of them raises or ends an alert. */
function alertmanagerPayload(
  notices: readonly Notice[],
  receiver: string,
  externalUrl: string,
): AlertmanagerPayload | null {
  // One entry per alert, its latest change: Alertmanager never lists an alert twice in a
  // payload, and receivers that key on the fingerprint would see the earlier state last.
  const byKey = new Map<string, WebhookAlert>();
  for (const notice of notices) {
    const change = alertChange(notice);
    if (change === null) continue;
    byKey.delete(change.key);
    byKey.set(change.key, webhookAlert(change, notice));
  }
  const alerts = [...byKey.values()];
  if (alerts.length === 0) return null;
  return {
    version: "4",
    // Alertmanager's is "<route>:<group labels>"; the output stands in for the route, and hb
    // groups by nothing.
    groupKey: `${receiver}:{}`,
    truncatedAlerts: 0,
    status: alerts.some((a) => a.status === "firing") ? "firing" : "resolved",
    receiver,
    groupLabels: {},
    commonLabels: common(alerts.map((a) => a.labels)),
    commonAnnotations: common(alerts.map((a) => a.annotations)),
    externalURL: externalUrl,
    alerts,
  };
}

/** One request under way: `settle` fixes its Outcome (only the first call counts), `abort` also ends it. */
interface InFlight {
  settle(outcome: Outcome): void;
  abort(outcome: Outcome): void;
}

function describeError(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const code = (err as NodeJS.ErrnoException).code;
  // Trying each address of a name fails with an AggregateError whose own message is empty.
  const message =
    err.message !== ""
      ? err.message
      : err instanceof AggregateError
        ? err.errors.map(describeError).join("; ")
        : "";
  return code !== undefined && !message.includes(code) ? `${code} ${message}`.trimEnd() : message;
}

function answered(status: number, body: Buffer, location: string | undefined): Outcome {
  const text = body.toString("utf8").replace(/\s+/g, " ").trim();
  const redirect = status >= 300 && status < 400 ? ` (redirect to ${location ?? "?"}, not followed)` : "";
  return failed(
    status === 429 || status >= 500,
    `http_${status}`,
    `HTTP ${status}${redirect}${text ? `: ${text}` : ""}`,
  );
}

// node:http rather than fetch: the output owns an agent that close() can destroy (fetch's
// connection pool is global in Node 20), it never follows a redirect, and its errors carry the
// system's codes (ECONNREFUSED, ENOTFOUND) for the Outcome's detail.
export class WebhookOutput implements Output {
  readonly kind = "webhook";
  readonly name: string;
  private readonly url: URL;
  private readonly agent: HttpAgent;
  private readonly inFlight = new Set<InFlight>();
  private closed = false;

  constructor(
    private readonly spec: WebhookOutputSpec,
    private readonly deps: WebhookDeps,
  ) {
    this.name = spec.name;
    this.url = new URL(spec.url);
    if (this.url.protocol !== "http:" && this.url.protocol !== "https:") {
      throw new TypeError(
        `webhook ${spec.name}: ${this.url.protocol} URLs are not supported (http: or https:)`,
      );
    }
    if ((deps.key === null) !== (spec.signWith === null)) {
      throw new TypeError(`webhook ${spec.name}: a key is needed exactly when signWith is set`);
    }
    // Keep-alive: a monitor that pages during an outage sends many requests to the same place.
    this.agent =
      this.url.protocol === "https:"
        ? new HttpsAgent({ keepAlive: true })
        : new HttpAgent({ keepAlive: true });
  }

  async deliver(notices: readonly Notice[], attempt: number): Promise<Outcome> {
    if (this.closed) return failed(false, "closed", "the output is closed");
    let body: Buffer;
    try {
      const payload = this.payload(notices, attempt);
      if (payload === null) return DELIVERED;
      body = Buffer.from(JSON.stringify(payload), "utf8");
    } catch (err) {
      return failed(false, "encode", describeError(err));
    }
    const headers: OutgoingHttpHeaders = {
      "content-type": "application/json",
      "content-length": body.length,
      "user-agent": this.deps.userAgent,
      [ATTEMPT_HEADER]: String(attempt),
    };
    if (this.deps.key !== null && this.spec.signWith !== null) {
      // The wall clock, unlike everywhere else: the receiver compares T with its own wall clock.
      const nowSec = Math.floor(this.deps.clock.wallMs() / 1000);
      headers[SIGNATURE_HEADER] = signatureHeader(this.deps.key, nowSec, body);
      headers[KEY_ID_HEADER] = this.spec.signWith;
    }
    return this.post(body, headers);
  }

  close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      for (const request of [...this.inFlight]) {
        request.abort(failed(false, "closed", "the output was closed while the request was in flight"));
      }
      this.agent.destroy();
    }
    return Promise.resolve();
  }

  /**
   * hb: one notice as an object, several as an array; each carries `attempt`, so that a receiver
   * handles both shapes alike.
   */
  private payload(notices: readonly Notice[], attempt: number): unknown {
    if (this.spec.format === "alertmanager") {
      return alertmanagerPayload(notices, this.spec.name, this.deps.externalUrl ?? "");
    }
    const stamped = notices.map((notice) => ({ ...notice, attempt }));
    return stamped.length === 1 ? stamped[0] : stamped;
  }

  private request(options: RequestOptions): ClientRequest {
    return this.url.protocol === "https:" ? httpsRequest(this.url, options) : httpRequest(this.url, options);
  }

  private post(body: Buffer, headers: OutgoingHttpHeaders): Promise<Outcome> {
    return new Promise((resolve) => {
      let settled = false;
      let req: ClientRequest | null = null;
      let timer: Timer | null = null;
      // The answer once its status is known; until then, the deadline means no answer.
      let partial: (() => Outcome) | null = null;
      const request: InFlight = {
        settle: (outcome) => {
          if (settled) return;
          settled = true;
          resolve(outcome);
        },
        abort: (outcome) => {
          request.settle(outcome);
          done();
          req?.destroy();
        },
      };
      const done = (): void => {
        if (timer !== null) this.deps.clock.clearTimeout(timer);
        timer = null;
        this.inFlight.delete(request);
      };
      this.inFlight.add(request);
      const timeoutMs = this.spec.timeoutMs;
      timer = this.deps.clock.setTimeout(() => {
        timer = null;
        request.abort(partial?.() ?? failed(true, "timeout", `no answer within ${timeoutMs} ms`));
      }, timeoutMs);
      try {
        req = this.request({ method: "POST", headers, agent: this.agent });
      } catch (err) {
        // A header that is not valid HTTP, say: sending again will not help.
        request.abort(failed(false, "request", describeError(err)));
        return;
      }
      req.on("error", (err) => request.abort(failed(true, "network", describeError(err))));
      // Every request ends here, answered or not; the Outcome is fixed here only if nothing
      // else fixed it: the answer so far, or a connection dropped before any answer.
      req.on("close", () => {
        request.settle(partial?.() ?? failed(true, "network", "the connection closed without an answer"));
        done();
      });
      req.on("response", (res: IncomingMessage) => {
        const status = res.statusCode ?? 0;
        if (status >= 200 && status < 300) {
          // Delivered once the receiver says so; the body is drained only so the connection can
          // be used again, and the deadline still bounds that.
          request.settle(DELIVERED);
          res.resume();
          return;
        }
        const kept: Buffer[] = [];
        let keptBytes = 0;
        const answer = (): Outcome => answered(status, Buffer.concat(kept), res.headers.location);
        partial = answer;
        res.on("data", (chunk: Buffer) => {
          if (keptBytes >= MAX_RESPONSE_DETAIL_BYTES) return;
          // A copy: a slice would hold the whole chunk in memory.
          const part = Buffer.from(chunk.subarray(0, MAX_RESPONSE_DETAIL_BYTES - keptBytes));
          kept.push(part);
          keptBytes += part.length;
        });
        // A body cut short still leaves the status to report; "close" follows either way.
        res.on("error", () => {});
        res.on("close", () => request.settle(answer()));
      });
      req.end(body);
    });
  }
}
