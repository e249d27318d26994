// Alertmanager's HTTP API as the alertmanager output uses it: alerts POSTed to /api/v2/alerts of
// every Alertmanager of the site at once, MAX_ALERTS_PER_POST at a time with a turn of the event
// loop between two, each body built only when it is sent, so that a large send never blocks the
// event loop for long. Each request has a time limit; one Outcome comes back per Alertmanager.

import type { Clock } from "../clock.js";
import type { AlertmanagerOutputSpec } from "../config/types.js";
import { VERSION } from "../version.js";
import { DELIVERED, errorText, failed, type Outcome } from "./output.js";

/** Most alerts in one POST: a body of 100 000 alerts is tens of MB, built in hundreds of ms. */
export const MAX_ALERTS_PER_POST = 1000;
/** Most of a refusing Alertmanager's answer kept in a failure's detail. */
const MAX_BODY_EXCERPT_CHARS = 300;

type Failure = Extract<Outcome, { ok: false }>;

/** An alert to send, by its key. */
export type Entry<A> = readonly [key: string, alert: A];
/** An alert's JSON as it is at `nowMs` (epoch ms), made when its slice is built. */
export type Render<A> = (key: string, alert: A, nowMs: number) => string;

/** One POST's body; null when none of its alerts could be built. */
interface Slice {
  readonly body: string | null;
  /** Why an alert of it could not be built (an invalid date); null when all were. */
  readonly error: string | null;
}

export class AlertPoster {
  private readonly inFlight = new Set<AbortController>();
  private readonly pending = new Set<Promise<Outcome>>();
  private closed = false;

  constructor(
    private readonly spec: AlertmanagerOutputSpec,
    private readonly clock: Clock,
  ) {}

  /**
   * Sends `entries` to every Alertmanager, all at once; one outcome per Alertmanager, never a
   * rejection. `abandoned` is asked before each slice: true ends the send there.
   */
  send<A>(entries: readonly Entry<A>[], render: Render<A>, abandoned: () => boolean): Promise<Outcome[]> {
    const slice = this.slicer(entries, render, this.spec.urls.length);
    const count = Math.ceil(entries.length / MAX_ALERTS_PER_POST);
    return Promise.all(
      this.spec.urls.map((url) => {
        const outcome = this.sendTo(`${url}/api/v2/alerts`, slice, count, abandoned);
        this.pending.add(outcome);
        void outcome.finally(() => this.pending.delete(outcome));
        return outcome;
      }),
    );
  }

  /** Cancels the requests in flight and resolves once every send has ended. */
  async close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      for (const controller of this.inFlight) controller.abort();
    }
    await Promise.all(this.pending);
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
    abandoned: () => boolean,
  ): Promise<Outcome> {
    const outcomes: Outcome[] = [];
    try {
      for (let index = 0; index < count; index++) {
        if (index > 0) await new Promise<void>((resolve) => this.clock.setImmediate(resolve));
        if (this.closed)
          return combine([...outcomes, failed(false, "closed", `${endpoint}: the output was closed`)]);
        if (abandoned()) break;
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
  private slicer<A>(
    entries: readonly Entry<A>[],
    render: Render<A>,
    takers: number,
  ): (index: number) => Slice {
    const built = new Map<number, { slice: Slice; left: number }>();
    return (index) => {
      let kept = built.get(index);
      if (kept === undefined) {
        const from = index * MAX_ALERTS_PER_POST;
        const part = entries.slice(from, from + MAX_ALERTS_PER_POST);
        kept = { slice: build(part, render, this.clock.wallMs()), left: takers };
        built.set(index, kept);
      }
      if (--kept.left === 0) built.delete(index);
      return kept.slice;
    };
  }

  private async post(endpoint: string, body: string): Promise<Outcome> {
    const controller = new AbortController();
    this.inFlight.add(controller);
    let timedOut = false;
    const timer = this.clock.setTimeout(() => {
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
      this.clock.clearTimeout(timer);
      this.inFlight.delete(controller);
    }
  }
}

function build<A>(entries: readonly Entry<A>[], render: Render<A>, nowMs: number): Slice {
  const parts: string[] = [];
  let error: string | null = null;
  for (const [key, alert] of entries)
    try {
      parts.push(render(key, alert, nowMs));
    } catch (err) {
      error ??= `alert ${key}: ${errorText(err)}`;
    }
  return { body: parts.length === 0 ? null : `[${parts.join(",")}]`, error };
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
export function combine(outcomes: readonly Outcome[]): Outcome {
  const failures = outcomes.filter((o): o is Failure => !o.ok);
  const first = failures.find((f) => !f.retry) ?? failures[0];
  if (first === undefined) return DELIVERED;
  // An alert that cannot be built fails alike at every Alertmanager: said once.
  return failed(first.retry, first.reason, [...new Set(failures.map((f) => f.detail))].join("; "));
}
