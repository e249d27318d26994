// How far one datagram may move a node's replay mark. Accepting a datagram raises the mark
// (incarnation, sequence), and every datagram below it is refused; so a forged or corrupted
// datagram with a huge incarnation or sequence would silence the real node. An incarnation more
// than a day ahead of this monitor's wall clock is never accepted; a smaller leap ahead of the
// clock, or a sequence jump larger than the node's silence explains, is accepted only once a
// second datagram continues from it. Pure: the caller supplies times; pending leaps are bounded.

/** Incarnations are start times in epoch ms: more than this ahead of our clock is impossible. */
export const MAX_INCARNATION_AHEAD_MS = 24 * 3_600_000;
/** Ahead of our clock by more than ordinary clock skew: wait for a second datagram. */
export const INCARNATION_SKEW_MS = 60_000;
/** Datagrams a node may have sent beyond what its silence explains (bursts, clock jitter). */
export const SEQUENCE_SLACK = 10;
/** Unnumbered senders (sequence = their wall clock in ms): clock slack between two sends. */
export const UNNUMBERED_SLACK_MS = 60_000;
/** Leaps waiting for a second datagram; the oldest is forgotten past this. */
export const MAX_PENDING_LEAPS = 10_000;

export type LeapReason = "future_incarnation" | "unconfirmed_jump";

interface Leap {
  incarnation: number;
  sequence: number;
  unnumbered: boolean;
  atMs: number;
}

/** The largest sequence step that `silenceMs` without a datagram explains. */
export function allowedJump(silenceMs: number, intervalMs: number, unnumbered: boolean): number {
  return unnumbered
    ? 2 * silenceMs + UNNUMBERED_SLACK_MS
    : SEQUENCE_SLACK + Math.ceil((2 * Math.max(0, silenceMs)) / intervalMs);
}

export class ReplayGuard {
  private readonly pending = new Map<string, Leap>();

  /**
   * Judges a datagram that would raise `node`'s mark (incarnation -1 when it has none);
   * `lastSeenMs` is its last arrival (monotonic; -Infinity when not heard since this monitor
   * started, when its silence is unknown); `markUnnumbered`: the datagram at the mark was
   * unnumbered. A sequence step is measured in milliseconds only between two unnumbered
   * datagrams: the flag of one datagram alone never buys a numbered node a clock's allowance.
   * Returns null to accept, or why not.
   */
  check(
    node: string,
    dg: { incarnation: number; sequence: number; unnumbered: boolean },
    markIncarnation: number,
    markSequence: number,
    nowMs: number,
    toWall: (monoMs: number) => number,
    lastSeenMs: number,
    intervalMs: number,
    markUnnumbered: boolean,
  ): LeapReason | null {
    const newIncarnation = dg.incarnation > markIncarnation;
    let leap: boolean;
    if (newIncarnation) {
      const wallNowMs = toWall(nowMs);
      if (dg.incarnation > wallNowMs + MAX_INCARNATION_AHEAD_MS) return "future_incarnation";
      leap = dg.incarnation > wallNowMs + INCARNATION_SKEW_MS;
    } else {
      leap =
        Number.isFinite(lastSeenMs) &&
        dg.sequence - markSequence >
          allowedJump(nowMs - lastSeenMs, intervalMs, dg.unnumbered && markUnnumbered);
    }
    if (!leap) {
      // The hot path: nothing pending for anyone, nothing to look up.
      if (this.pending.size > 0) this.pending.delete(node);
      return null;
    }
    const before = this.pending.get(node);
    if (
      before !== undefined &&
      before.incarnation === dg.incarnation &&
      dg.sequence > before.sequence &&
      dg.sequence - before.sequence <=
        allowedJump(nowMs - before.atMs, intervalMs, dg.unnumbered && before.unnumbered)
    ) {
      this.pending.delete(node);
      return null;
    }
    this.pending.delete(node);
    if (this.pending.size >= MAX_PENDING_LEAPS) this.pending.delete(this.pending.keys().next().value!);
    this.pending.set(node, {
      incarnation: dg.incarnation,
      sequence: dg.sequence,
      unnumbered: dg.unnumbered,
      atMs: nowMs,
    });
    return "unconfirmed_jump";
  }

  forget(node: string): void {
    this.pending.delete(node);
  }
}
