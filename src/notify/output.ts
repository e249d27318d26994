// What every notify output is to the dispatcher: something that delivers a batch of notices once
// and says how it went. Queueing, ordering, batching and retrying are the dispatcher's (lane.ts,
// queue.ts, retry.ts); an output only delivers, and never throws.

import type { Notice } from "./notice.js";

export type OutputKind = "exec" | "webhook" | "alertmanager";

export type Outcome =
  | { readonly ok: true }
  | {
      readonly ok: false;
      /** True when the same delivery may succeed later (EX_TEMPFAIL, a network error, a 5xx). */
      readonly retry: boolean;
      /** A stable, short reason: "exit_1", "timeout", "http_503", "network", "refused", ... */
      readonly reason: string;
      /** For humans: what happened, bounded in length (a hook's stderr tail, an HTTP body). */
      readonly detail: string;
    };

export interface Output {
  readonly name: string;
  readonly kind: OutputKind;
  /**
   * Delivers `notices` (one or more, in order; a batch is one call) as attempt `attempt` (1 for
   * the first). Resolves when done; never rejects.
   */
  deliver(notices: readonly Notice[], attempt: number): Promise<Outcome>;
  /** Stops timers and cancels what is in flight (the monitor is stopping or the output was removed). */
  close(): Promise<void>;
  /**
   * The output's settings changed on reload and `next` takes its place: hand it any state that
   * must outlive the change (alerts still firing), and stop sending on its own.
   */
  handOver?(next: Output): void;
  /**
   * Whether the output carries `event`, when it is not the spec's `on:` list that says so (an
   * alertmanager output takes the events that raise or end its alerts).
   */
  accepts?(event: string, fields: Readonly<Record<string, unknown>>): boolean;
}

/** Longest `detail` an output reports. */
export const MAX_DETAIL_CHARS = 1024;

export function failed(retry: boolean, reason: string, detail: string): Outcome {
  return {
    ok: false,
    retry,
    reason,
    detail: detail.length > MAX_DETAIL_CHARS ? `${detail.slice(0, MAX_DETAIL_CHARS)}…` : detail,
  };
}

export const DELIVERED: Outcome = Object.freeze({ ok: true });

export const errorText = (err: unknown): string => (err instanceof Error ? err.message : String(err));
