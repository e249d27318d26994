// The alertmanager output: the alerts this monitor has raised, pushed to every Alertmanager of the
// site (POST /api/v2/alerts) and sent again every `resendMs` while they matter, as Prometheus'
// notifier does. Alertmanager resolves a firing alert at its endsAt unless it is sent again: it is
// set a few resends ahead, so that the alerts of a monitor that died resolve themselves. Which notice raises
// or ends which alert is alerts.ts's; this file holds the alerts, the resend timer and the HTTP.

import type { Clock, Timer } from "../clock.js";
import type { AlertmanagerOutputSpec } from "../config/types.js";
import { VERSION } from "../version.js";
import { alertChange, type AlertChange } from "./alerts.js";
import type { Notice } from "./notice.js";
import { DELIVERED, failed, type Outcome, type Output } from "./output.js";

/** How long a resolved alert is still sent: as Prometheus, so that an Alertmanager that missed it hears it. */
export const RESOLVED_RESEND_MS = 15 * 60_000;
/** A firing alert's endsAt is this many resend periods ahead: a few lost resends do not resolve it. */
export const FIRING_RESENDS = 4;
/** Most of a refusing Alertmanager's answer kept in a failure's detail. */
const MAX_BODY_EXCERPT_CHARS = 300;

export interface AlertmanagerDeps {
  readonly clock: Clock;
  /** The monitor's status URL (http://host:port): generatorURL's base unless the spec gives one. */
  readonly statusUrl: string | null;
  /**
   * Asked before each resend about every firing alert that does not end on its own: false
   * resolves it (its node was removed by a reload, say), since no notice will.
   */
  readonly stillFiring?: (key: string, node: string | null) => boolean;
}

/** An alert as POST /api/v2/alerts takes it. */
interface PostableAlert {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  startsAt: string;
  endsAt: string;
  generatorURL?: string;
}

interface Held {
  readonly node: string | null;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  readonly generatorURL: string | null;
  readonly startsAtMs: number;
  /** Epoch ms it ended; null while firing. */
  endedAtMs: number | null;
  /** Epoch ms a monitor's own alert ends by itself; null for one that fires until resolved. */
  readonly expiresAtMs: number | null;
  /** Monotonic ms from which it is no longer sent: its expiry, or RESOLVED_RESEND_MS after it ended. */
  dropAtMonoMs: number;
}

type Failure = Extract<Outcome, { ok: false }>;

export class AlertmanagerOutput implements Output {
  readonly kind = "alertmanager" as const;
  readonly name: string;
  private readonly held = new Map<string, Held>();
  private readonly inFlight = new Set<AbortController>();
  private readonly pending = new Set<Promise<Outcome>>();
  private readonly generatorBase: string | null;
  private timer: Timer | null = null;
  private resending = false;
  private closed = false;
  private failedResends = 0;

  constructor(
    private readonly spec: AlertmanagerOutputSpec,
    private readonly deps: AlertmanagerDeps,
  ) {
    this.name = spec.name;
    this.generatorBase = (spec.generatorUrl ?? deps.statusUrl)?.replace(/\/+$/, "") ?? null;
  }

  /** Alerts held firing (for metrics). */
  get activeAlerts(): number {
    let firing = 0;
    for (const alert of this.held.values()) if (alert.endedAtMs === null) firing++;
    return firing;
  }

  /** Requests of resends that failed; a resend's failure is not any delivery's, so it is only counted. */
  get resendFailures(): number {
    return this.failedResends;
  }

  async deliver(notices: readonly Notice[], _attempt: number): Promise<Outcome> {
    if (this.closed) return failed(false, "closed", "the output was closed");
    // Every alert the notices touch is sent, changed or not: a retried delivery must send again
    // what its first attempt already applied here.
    const touched = new Set<string>();
    for (const notice of notices) {
      const change = alertChange(notice);
      if (change !== null && this.apply(notice, change)) touched.add(change.key);
    }
    if (touched.size === 0) return DELIVERED;
    const nowMs = this.deps.clock.wallMs();
    const alerts = [...touched].map((key) => this.postable(this.held.get(key)!, nowMs));
    this.arm();
    return combine(await this.postToAll(alerts));
  }

  async close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      if (this.timer !== null) this.deps.clock.clearTimeout(this.timer);
      this.timer = null;
      for (const controller of this.inFlight) controller.abort();
    }
    await Promise.all(this.pending);
  }

  /** Applies one change to the held alerts; true when the alert is held (and so is to be sent). */
  private apply(notice: Notice, change: AlertChange): boolean {
    const { clock } = this.deps;
    const before = this.held.get(change.key);
    const { alert } = change;
    if (change.firing) {
      const raisedAtMs = Date.parse(alert.startsAt);
      // Raised again while firing: the alert began when it was first raised.
      const startsAtMs = before !== undefined && before.endedAtMs === null ? before.startsAtMs : raisedAtMs;
      const expiresAtMs = change.expiresAfterMs === null ? null : raisedAtMs + change.expiresAfterMs;
      this.held.set(change.key, {
        node: notice.node,
        labels: { ...alert.labels },
        annotations: { ...alert.annotations },
        generatorURL: this.generatorUrl(notice.node),
        startsAtMs,
        endedAtMs: null,
        expiresAtMs,
        // Expiry is in epoch ms (it is sent); when to drop it is measured on the monotonic clock.
        dropAtMonoMs: expiresAtMs === null ? Infinity : clock.monoMs() + (expiresAtMs - clock.wallMs()),
      });
      return true;
    }
    // Like Prometheus, it resolves only what it raised: a node coming up at startup is no alert.
    if (before === undefined) return false;
    if (before.endedAtMs === null) {
      this.resolve(before, notice.time);
      before.annotations = { ...alert.annotations };
    }
    return true;
  }

  private resolve(alert: Held, atMs: number): void {
    // Alertmanager refuses an alert that ends before it starts (a wall clock stepped back).
    alert.endedAtMs = Math.max(atMs, alert.startsAtMs);
    alert.dropAtMonoMs = this.deps.clock.monoMs() + RESOLVED_RESEND_MS;
  }

  private generatorUrl(node: string | null): string | null {
    if (this.generatorBase === null) return null;
    return node === null
      ? `${this.generatorBase}/status`
      : `${this.generatorBase}/status?node=${encodeURIComponent(node)}`;
  }

  private postable(alert: Held, nowMs: number): PostableAlert {
    const endsAtMs = alert.endedAtMs ?? alert.expiresAtMs ?? nowMs + FIRING_RESENDS * this.spec.resendMs;
    const out: PostableAlert = {
      labels: alert.labels,
      annotations: alert.annotations,
      startsAt: new Date(alert.startsAtMs).toISOString(),
      endsAt: new Date(endsAtMs).toISOString(),
    };
    if (alert.generatorURL !== null) out.generatorURL = alert.generatorURL;
    return out;
  }

  /** Armed only while something is held: an idle monitor does not wake up for this output. */
  private arm(): void {
    if (this.timer !== null || this.resending || this.closed || this.held.size === 0) return;
    this.timer = this.deps.clock.setTimeout(() => this.resend(), this.spec.resendMs);
    // A forgotten close() must not keep the process alive.
    this.timer.unref?.();
  }

  private resend(): void {
    this.timer = null;
    if (this.closed) return;
    const alerts = this.due();
    if (alerts.length === 0) return;
    this.resending = true;
    void this.postToAll(alerts).then((outcomes) => {
      if (!this.closed) this.failedResends += outcomes.filter((o) => !o.ok).length;
      this.resending = false;
      // The next resend counts from this one's end: a slow Alertmanager never gets two at once.
      this.arm();
    });
  }

  /** Resolves what is no longer firing, drops what is no longer sent, and returns the rest. */
  private due(): PostableAlert[] {
    const { clock, stillFiring } = this.deps;
    const nowMs = clock.wallMs();
    const monoNowMs = clock.monoMs();
    const alerts: PostableAlert[] = [];
    for (const [key, alert] of this.held) {
      if (
        alert.endedAtMs === null &&
        alert.expiresAtMs === null &&
        stillFiring !== undefined &&
        !stillFiring(key, alert.node)
      )
        this.resolve(alert, nowMs);
      if (monoNowMs >= alert.dropAtMonoMs) this.held.delete(key);
      else alerts.push(this.postable(alert, nowMs));
    }
    return alerts;
  }

  private postToAll(alerts: readonly PostableAlert[]): Promise<Outcome[]> {
    const body = JSON.stringify(alerts);
    return Promise.all(
      this.spec.urls.map((url) => {
        const outcome = this.post(`${url}/api/v2/alerts`, body);
        this.pending.add(outcome);
        void outcome.finally(() => this.pending.delete(outcome));
        return outcome;
      }),
    );
  }

  private async post(endpoint: string, body: string): Promise<Outcome> {
    const controller = new AbortController();
    this.inFlight.add(controller);
    let timedOut = false;
    const timer = this.deps.clock.setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, this.spec.timeoutMs);
    try {
      const response = await fetch(endpoint, {
        method: "POST",
        headers: { "content-type": "application/json", "user-agent": `hb/${VERSION}` },
        body,
        signal: controller.signal,
      });
      // Read to the end, also when it is not needed: the connection goes back to the pool.
      const text = await response.text();
      if (response.ok) return DELIVERED;
      const detail = `${endpoint}: ${response.status} ${excerpt(text)}`;
      // A 4xx is the same answer next time, except "too many requests", which asks for later.
      const retry = response.status >= 500 || response.status === 429;
      return failed(retry, `http_${response.status}`, detail);
    } catch (err) {
      if (timedOut) return failed(true, "timeout", `${endpoint}: no answer within ${this.spec.timeoutMs} ms`);
      if (this.closed) return failed(false, "closed", `${endpoint}: the output was closed`);
      const cause = (err as { cause?: { code?: unknown; message?: unknown } }).cause;
      const code = typeof cause?.code === "string" ? cause.code : null;
      const message = typeof cause?.message === "string" ? cause.message : String(err);
      return failed(true, code === "ECONNREFUSED" ? "refused" : "network", `${endpoint}: ${message}`);
    } finally {
      this.deps.clock.clearTimeout(timer);
      this.inFlight.delete(controller);
    }
  }
}

function excerpt(text: string): string {
  const line = text.trim().replace(/\s+/g, " ");
  return line.length > MAX_BODY_EXCERPT_CHARS ? `${line.slice(0, MAX_BODY_EXCERPT_CHARS)}…` : line;
}

/**
 * One outcome for all Alertmanagers: delivered when every one took it. A refusal anywhere is
 * final: a retry would be refused again, and the others get the alerts at the next resend anyway.
 */
function combine(outcomes: readonly Outcome[]): Outcome {
  const failures = outcomes.filter((o): o is Failure => !o.ok);
  const first = failures.find((f) => !f.retry) ?? failures[0];
  if (first === undefined) return DELIVERED;
  return failed(first.retry, first.reason, failures.map((f) => f.detail).join("; "));
}
