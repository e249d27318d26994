// The alertmanager output: the alerts this monitor has raised, pushed to every Alertmanager of the
// site and sent again every `resendMs` while they matter, as Prometheus' notifier does.
// Alertmanager resolves a firing alert at its endsAt unless it is sent again: it is set a few
// resends ahead, so that the alerts of a monitor that died, or that stopped speaking (its output
// is closed then), resolve themselves. On reload the held alerts pass to the output that replaces
// this one. Which notice raises or ends which alert is alerts.ts's; the HTTP is alertmanager-api.ts's.

import type { Clock, Timer } from "../clock.js";
import type { AlertmanagerOutputSpec } from "../config/types.js";
import { AlertPoster, combine, type Entry as Sent } from "./alertmanager-api.js";
import { alertChange, alertEvent, type AlertChange } from "./alerts.js";
import type { Notice } from "./notice.js";
import { DELIVERED, errorText, failed, type Outcome, type Output } from "./output.js";

/** How long a resolved alert is still sent: as Prometheus, so that an Alertmanager that missed it hears it. */
export const RESOLVED_RESEND_MS = 15 * 60_000;
/** A firing alert's endsAt is this many resend periods ahead: a few lost resends do not resolve it. */
export const FIRING_RESENDS = 4;

export interface AlertmanagerDeps {
  readonly clock: Clock;
  /** The monitor's status URL (http://host:port): generatorURL's base unless the spec gives one. */
  readonly statusUrl: string | null;
  /**
   * Asked before each resend about every firing alert that does not end on its own: false
   * resolves it (its node was removed by a reload, say), since no notice will. The monitor's
   * rule is alerts.ts's firingWhileDown.
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

/** A held alert and its key, taken when a send begins; its slice is built from what is held by then. */
type Entry = Sent<Held>;

export class AlertmanagerOutput implements Output {
  readonly kind = "alertmanager" as const;
  readonly name: string;
  private readonly held = new Map<string, Held>();
  private readonly poster: AlertPoster;
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
    this.poster = new AlertPoster(spec, deps.clock);
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

  /** The events that raise or end alerts, whatever `on:` would say (it may not be set). */
  accepts(event: string, fields: Readonly<Record<string, unknown>>): boolean {
    return alertEvent(event, fields);
  }

  async close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      this.stopTimer();
    }
    await this.poster.close();
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

  /** Sends `entries` to every Alertmanager; a resend ends between slices once this output handed over. */
  private send(entries: readonly Entry[], resend: boolean): Promise<Outcome[]> {
    return this.poster.send(
      entries,
      // As it is now: a notice may have changed it since the send began.
      (key, sent, nowMs) => JSON.stringify(this.postable(this.held.get(key) ?? sent, nowMs)),
      // Handed over: its successor sends them all now.
      () => resend && this.successor !== null,
    );
  }
}
