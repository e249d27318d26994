// When the detector judges. One timer, armed at the detector's earliest deadline, serves the
// whole fleet; when it fires, judgement waits until the datagrams already queued are read (node
// reads 32 per turn of the loop). A timer that fires far too late means the monitor itself was
// frozen (`monitor.stalled`), and datagrams the kernel dropped, or a backlog that outlasts the
// stall threshold, mean it was overloaded (`monitor.overloaded`): either way the deadlines that
// fell since are held back, never blamed on the nodes.

import type { Clock, Timer } from "../clock.js";
import type { Config } from "../config/types.js";
import type { Emit } from "../events.js";
import { READS_PER_TURN } from "../wire/udp.js";
import type { Detector } from "./detector.js";

/** A deadline timer later than this (or than half the smallest `late`) means the monitor stalled. */
export const MAX_STALL_THRESHOLD_MS = 1000;

/** After a stall every node gets two of its intervals to be heard before anyone is judged. */
export function stallHoldMs(config: Config): number {
  let interval = config.defaults.intervalMs;
  for (const node of config.nodes.values()) interval = Math.max(interval, node.intervalMs);
  return 2 * interval;
}

export interface JudgeDeps {
  clock: Clock;
  emit: Emit;
  detector: Detector;
  /** Datagrams read from the socket so far. */
  received: () => number;
  /** The kernel's drop counter for the socket, if it can be read. */
  kernelDrops: () => number | null;
  /** How long judgement is held after a stall or an overload: every node can speak in it. */
  holdMs: () => number;
  /** Called just before deadlines are judged: it may hold judgement (a monitor cut off). */
  beforeJudging?: (nowMs: number) => void;
  /** Told of each stall: the timer was armed for `fromMs` and ran at `toMs` (`hb capture` records it). */
  onStall?: (fromMs: number, toMs: number) => void;
}

export class Judge {
  private timer: Timer | undefined;
  private armedAt = Number.POSITIVE_INFINITY;
  private judging = false;
  /** While a reload's config is applied, nothing is judged (see Monitor.reloadInTurns). */
  private paused = false;
  /** The kernel's drop count for our socket when last read, and when: a rise means overload. */
  private dropsSeen: number | null = null;
  private dropsReadAt = Number.NEGATIVE_INFINITY;
  private overloaded = false;
  /** When the current overload episode began: every deadline since is held while it lasts. */
  private overloadFrom = Number.NEGATIVE_INFINITY;
  private maxTimerLatenessMs = 0;
  /** After stop(), nothing arms the timer again. */
  private stopped = false;

  constructor(private readonly deps: JudgeDeps) {}

  /** The socket is bound: drops count from here. */
  start(): void {
    this.dropsSeen = this.deps.kernelDrops();
    this.dropsReadAt = this.deps.clock.monoMs();
    this.rearm();
  }

  /** A datagram was taken in at `nowMs`: its deadline may be the earliest. */
  heard(nowMs: number): void {
    if (nowMs + this.deps.detector.minLateMs < this.armedAt) this.arm();
  }

  /** Arms the timer anew at the detector's earliest deadline (after a change to them). */
  rearm(): void {
    this.armedAt = Number.POSITIVE_INFINITY;
    this.arm();
  }

  pause(): void {
    this.paused = true;
  }

  /** Judging may go on; the caller judges what is due and re-arms. */
  resume(): void {
    this.paused = false;
  }

  private arm(): void {
    if (this.stopped) return;
    const { clock, detector } = this.deps;
    const next = detector.nextDeadline() ?? Number.POSITIVE_INFINITY;
    if (next === this.armedAt || this.judging) return;
    if (this.timer !== undefined) clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.armedAt = next;
    if (next === Number.POSITIVE_INFINITY) return;
    const delay = Math.max(0, Math.ceil(next - clock.monoMs()));
    this.timer = clock.setTimeout(() => this.onTimer(), delay);
  }

  private onTimer(): void {
    const { clock, detector, emit } = this.deps;
    this.timer = undefined;
    if (this.paused) return void (this.armedAt = Number.POSITIVE_INFINITY);
    const scheduled = this.armedAt;
    const now = clock.monoMs();
    // Timers may fire a little early by the monotonic clock; never judge before the deadline.
    if (now < scheduled) return this.rearm();
    const lateness = now - scheduled;
    if (lateness > this.maxTimerLatenessMs) this.maxTimerLatenessMs = lateness;
    if (lateness > this.stallThresholdMs()) {
      const holdMs = this.deps.holdMs();
      detector.hold(scheduled, now, holdMs);
      emit("monitor.stalled", { stalledMs: Math.round(lateness), holdMs });
      this.deps.onStall?.(scheduled, now);
    }
    // Read the datagrams that queued up while we were away, then judge. Node reads at most 32
    // datagrams from a socket per turn of the loop: turn until a turn reads fewer (the socket is
    // empty), for at most the stall threshold; a backlog that outlasts it is our own overload.
    this.judging = true;
    const drainUntil = now + this.stallThresholdMs();
    let readBefore = this.deps.received();
    const judge = (): void => {
      if (this.paused) return void (this.judging = false);
      const read = this.deps.received() - readBefore;
      readBefore = this.deps.received();
      const judgeAt = clock.monoMs();
      if (read >= READS_PER_TURN && judgeAt < drainUntil) return clock.setImmediate(judge);
      this.judging = false;
      this.checkOverload(judgeAt, read >= READS_PER_TURN);
      this.deps.beforeJudging?.(judgeAt);
      detector.advance(judgeAt);
      this.rearm();
    };
    clock.setImmediate(judge);
  }

  /**
   * Datagrams the kernel dropped since the last look (the socket's receive buffer overflowed)
   * may have been anyone's heartbeat: silence since then is the monitor's own overload, like a
   * stall. Judgement of deadlines from then on is held, and that is said once per episode.
   */
  private checkOverload(nowMs: number, backlog: boolean): void {
    const drops = this.deps.kernelDrops() ?? this.dropsSeen;
    const dropped = drops !== null && this.dropsSeen !== null && drops > this.dropsSeen;
    if (dropped || backlog) {
      if (!this.overloaded) this.overloadFrom = this.dropsReadAt;
      // Held from the episode's start, not from the last look: under lasting drops a node's
      // datagrams may keep being lost, and two intervals after any one look prove nothing.
      this.overload(
        dropped ? "kernel_drops" : "backlog",
        this.overloadFrom,
        nowMs,
        dropped ? drops - this.dropsSeen! : 0,
      );
    } else {
      this.overloaded = false;
    }
    this.dropsSeen = drops;
    this.dropsReadAt = nowMs;
  }

  /** Datagrams were lost from `fromMs` on: hold judgement from then, and say so once. */
  overload(cause: "kernel_drops" | "backlog", fromMs: number, nowMs: number, kernelDrops = 0): void {
    const holdMs = this.deps.holdMs();
    this.deps.detector.hold(fromMs, nowMs, holdMs);
    if (this.overloaded) return;
    this.overloaded = true;
    this.deps.emit("monitor.overloaded", { cause, kernelDrops, holdMs });
  }

  private stallThresholdMs(): number {
    return Math.min(MAX_STALL_THRESHOLD_MS, this.deps.detector.minLateMs / 2);
  }

  /** How far past its deadline the judging timer is (0 when on time): a wedged monitor shows here. */
  overdueMs(): number {
    return this.armedAt === Number.POSITIVE_INFINITY
      ? 0
      : Math.max(0, this.deps.clock.monoMs() - this.armedAt);
  }

  takeTimerLatenessMs(): number {
    const max = this.maxTimerLatenessMs;
    this.maxTimerLatenessMs = 0;
    return max;
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== undefined) this.deps.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.armedAt = Number.POSITIVE_INFINITY;
  }
}
