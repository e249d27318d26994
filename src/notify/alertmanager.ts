// The alertmanager output: the alerts this monitor has raised, pushed to every Alertmanager of the
// site (POST /api/v2/alerts) and sent again every `resendMs` while they matter, as Prometheus'
// notifier does. Alertmanager resolves a firing alert at its endsAt unless it is sent again: it is
// set a few resends ahead, so that the alerts of a monitor that died resolve themselves. Many
// alerts go MAX_ALERTS_PER_POST at a time, each body built only when it is sent, so that a resend
// never blocks the event loop for long; on reload the held alerts pass to the output that replaces
// this one. Which notice raises or ends which alert is alerts.ts's; this file holds the alerts,
// the resend timer and the HTTP.

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
/** Most alerts in one POST: a body of 100 000 alerts is tens of MB, built in hundreds of ms. */
export const MAX_ALERTS_PER_POST = 1000;
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

/** A held alert and its key, taken when a send begins; its slice is built from what is held by then. */
type Entry = readonly [key: string, alert: Held];

/** One POST's body; null when none of its alerts could be built. */
interface Slice {
  readonly body: string | null;
  /** Why an alert of it could not be built (an invalid date); null when all were. */
  readonly error: string | null;
}

const errorText = (err: unknown): string => (err instanceof Error ? err.message : String(err));

export class AlertmanagerOutput implements Output {
  readonly kind = "alertmanager" as const;
  readonly name: string;
  private readonly held = new Map<string, Held>();
  private readonly inFlight = new Set<AbortController>();
  private readonly pending = new Set<Promise<Outcome>>();
  private readonly generatorBase: string | null;
  private timer: Timer | null = null;
  private resending = false;
  /** A resend is wanted as soon as the one under way ends (alerts were handed over meanwhile). */
  private resendAgain = false;
  private closed = false;
  /** The output this one handed its alerts over to: it never sends on its own again. */
  private successor: AlertmanagerOutput | null = null;
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

  async deliver(notices: readonly Notice[], attempt: number): Promise<Outcome> {
    // Its alerts live on in the successor: so must their changes.
    if (this.successor !== null) return this.successor.deliver(notices, attempt);
    if (this.closed) return failed(false, "closed", "the output was closed");
    try {
      // Every alert the notices touch is sent, changed or not: a retried delivery must send again
      // what its first attempt already applied here.
      const touched = new Set<string>();
      let broken: Outcome = DELIVERED;
      for (const notice of notices)
        try {
          const change = alertChange(notice);
          if (change !== null && this.apply(notice, change)) touched.add(change.key);
        } catch (err) {
          // One notice that makes no alert (a NaN time) must not keep the others of its batch back.
          broken = failed(
            false,
            "internal",
            `${notice.event} of ${notice.node ?? notice.monitor}: ${errorText(err)}`,
          );
        }
      if (touched.size === 0) return broken;
      const entries = [...touched].map((key): Entry => [key, this.held.get(key)!]);
      this.arm();
      return combine([broken, ...(await this.send(entries, false))]);
    } catch (err) {
      return failed(false, "internal", errorText(err));
    }
  }

  async close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      this.stopTimer();
      for (const controller of this.inFlight) controller.abort();
    }
    await Promise.all(this.pending);
  }

  /**
   * On reload, to the output that takes this one's place: every held alert moves to `next`, which
   * sends them at once, and this one never resends again (its requests in flight may finish).
   */
  handOver(next: Output): void {
    if (!(next instanceof AlertmanagerOutput) || next === this) return;
    // Either has handed over already: a second hand-over could send deliveries round in a circle.
    if (this.successor !== null || next.successor !== null) return;
    this.successor = next;
    this.stopTimer();
    for (const [key, alert] of this.held) next.adopt(key, alert);
    this.held.clear();
    next.resendSoon();
  }

  private adopt(key: string, alert: Held): void {
    const own = this.held.get(key);
    // generatorURL follows the new settings; everything else is the alert's own.
    if (own === undefined) this.held.set(key, { ...alert, generatorURL: this.generatorUrl(alert.node) });
    // Its own is newer; but an alert raised again while firing began when it was first raised.
    else if (own.endedAtMs === null && alert.endedAtMs === null && alert.startsAtMs < own.startsAtMs)
      this.held.set(key, { ...own, startsAtMs: alert.startsAtMs });
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
  private arm(delayMs = this.spec.resendMs): void {
    if (this.timer !== null || this.resending || this.closed || this.successor !== null) return;
    if (this.held.size === 0) return;
    this.timer = this.deps.clock.setTimeout(() => this.resend(), delayMs);
    // A forgotten close() must not keep the process alive.
    this.timer.unref?.();
  }

  private stopTimer(): void {
    if (this.timer !== null) this.deps.clock.clearTimeout(this.timer);
    this.timer = null;
  }

  /** Alerts were handed over: they are sent now, not a resend period after the last send. */
  private resendSoon(): void {
    if (this.resending) this.resendAgain = true;
    else {
      this.stopTimer();
      this.arm(0);
    }
  }

  private resend(): void {
    this.timer = null;
    if (this.closed || this.successor !== null) return;
    let entries: Entry[];
    try {
      entries = this.due();
    } catch {
      this.failedResends++;
      return this.arm();
    }
    if (entries.length === 0) return;
    this.resending = true;
    void this.send(entries, true)
      .catch((err: unknown) => [failed(false, "internal", errorText(err))])
      .then((outcomes) => {
        if (!this.closed && this.successor === null)
          this.failedResends += outcomes.filter((o) => !o.ok).length;
        this.resending = false;
        const again = this.resendAgain;
        this.resendAgain = false;
        // The next resend counts from this one's end: a slow Alertmanager never gets two at once.
        this.arm(again ? 0 : this.spec.resendMs);
      });
  }

  /** Resolves what is no longer firing, drops what is no longer sent, and returns the rest. */
  private due(): Entry[] {
    const { clock, stillFiring } = this.deps;
    const nowMs = clock.wallMs();
    const monoNowMs = clock.monoMs();
    const entries: Entry[] = [];
    for (const [key, alert] of this.held) {
      if (
        alert.endedAtMs === null &&
        alert.expiresAtMs === null &&
        stillFiring !== undefined &&
        !stillFiring(key, alert.node)
      )
        this.resolve(alert, nowMs);
      if (monoNowMs >= alert.dropAtMonoMs) this.held.delete(key);
      else entries.push([key, alert]);
    }
    return entries;
  }

  /** Sends `entries` to every Alertmanager, all at once; one outcome per Alertmanager, never a rejection. */
  private send(entries: readonly Entry[], resend: boolean): Promise<Outcome[]> {
    const slice = this.slicer(entries, this.spec.urls.length);
    const count = Math.ceil(entries.length / MAX_ALERTS_PER_POST);
    return Promise.all(
      this.spec.urls.map((url) => {
        const outcome = this.sendTo(`${url}/api/v2/alerts`, slice, count, resend);
        this.pending.add(outcome);
        void outcome.finally(() => this.pending.delete(outcome));
        return outcome;
      }),
    );
  }

  /**
   * The slices to one Alertmanager, one after the other with a turn of the event loop between:
   * a network failure or a timeout ends them (the Alertmanager is away; the next resend or retry
   * tries again), a 4xx does not (Alertmanager still takes the valid alerts of a refused body).
   */
  private async sendTo(
    endpoint: string,
    slice: (index: number) => Slice,
    count: number,
    resend: boolean,
  ): Promise<Outcome> {
    const outcomes: Outcome[] = [];
    try {
      for (let index = 0; index < count; index++) {
        if (index > 0) await new Promise<void>((resolve) => this.deps.clock.setImmediate(resolve));
        if (this.closed)
          return combine([...outcomes, failed(false, "closed", `${endpoint}: the output was closed`)]);
        // Handed over: its successor sends them all now.
        if (resend && this.successor !== null) break;
        const { body, error } = slice(index);
        if (error !== null) outcomes.push(failed(false, "internal", error));
        if (body === null) continue;
        const outcome = await this.post(endpoint, body);
        outcomes.push(outcome);
        if (!outcome.ok && outcome.retry) break;
      }
    } catch (err) {
      outcomes.push(failed(false, "internal", `${endpoint}: ${errorText(err)}`));
    }
    return combine(outcomes);
  }

  /**
   * Slice `index` of `entries`, built when first asked for and kept until each of `takers` has
   * taken it, so that every Alertmanager gets the same body and a large send is never built whole.
   */
  private slicer(entries: readonly Entry[], takers: number): (index: number) => Slice {
    const built = new Map<number, { slice: Slice; left: number }>();
    return (index) => {
      let kept = built.get(index);
      if (kept === undefined) {
        const from = index * MAX_ALERTS_PER_POST;
        kept = { slice: this.build(entries.slice(from, from + MAX_ALERTS_PER_POST)), left: takers };
        built.set(index, kept);
      }
      if (--kept.left === 0) built.delete(index);
      return kept.slice;
    };
  }

  private build(entries: readonly Entry[]): Slice {
    const nowMs = this.deps.clock.wallMs();
    const parts: string[] = [];
    let error: string | null = null;
    for (const [key, sent] of entries)
      try {
        // As it is now: a notice may have changed it since the send began.
        parts.push(JSON.stringify(this.postable(this.held.get(key) ?? sent, nowMs)));
      } catch (err) {
        error ??= `alert ${key}: ${errorText(err)}`;
      }
    return { body: parts.length === 0 ? null : `[${parts.join(",")}]`, error };
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
 * One outcome for all Alertmanagers, or all slices: delivered when every one went. A refusal
 * anywhere is final: a retry would be refused again, and the others get the alerts at the next
 * resend anyway.
 */
function combine(outcomes: readonly Outcome[]): Outcome {
  const failures = outcomes.filter((o): o is Failure => !o.ok);
  const first = failures.find((f) => !f.retry) ?? failures[0];
  if (first === undefined) return DELIVERED;
  // An alert that cannot be built fails alike at every Alertmanager: said once.
  return failed(first.retry, first.reason, [...new Set(failures.map((f) => f.detail))].join("; "));
}
