// A reload of the config: compared, staged and made ready (with the admission rules) while the
// current config goes on, then applied, at once or a slice per turn of the event loop. While it
// is applied, what arrives is held back in order, datagrams with the instant each was read and
// `hb forget` requests, and handed back once the config is whole. The outcome of the last reload
// is kept for `hb reload` to read.

import type { Clock } from "../clock.js";
import { diffSteps } from "../config/diff.js";
import type { LoadedConfig } from "../config/load.js";
import type { Config } from "../config/types.js";
import type { Emit } from "../events.js";
import { SLICE_MS, finish, finishInTurns, type Sliced } from "../slices.js";
import { untilSocketEmpty, type RemoteInfo } from "../wire/udp.js";
import { admissionRules, type Admission, type AdmissionRules } from "./admit.js";
import type { Detector } from "./detector.js";
import type { Judge } from "./judge.js";
import type { Staged } from "./reconfigure.js";
import type { ReloadState } from "./status.js";

/** A reload made ready while the current config goes on. */
export interface PreparedReload {
  readonly changes: string[];
  readonly rules: AdmissionRules;
  readonly staged: Staged;
}

export function* prepareReload(
  current: Config,
  loaded: LoadedConfig,
  detector: Detector,
): Sliced<PreparedReload> {
  const changes = yield* diffSteps(current, loaded.config);
  const rules = yield* admissionRules(loaded);
  const staged = yield* detector.stage(loaded.config);
  return { changes, rules, staged };
}

/**
 * Datagrams held while a config is applied: at 100 000 datagrams a second and a tenth of a second
 * to apply, ten thousand. Past this bound the rest are let go, and the monitor says it was
 * overloaded (as when the kernel drops them), so that no node is blamed for them.
 */
export const MAX_HELD = 262_144;

export class HeldBack {
  readonly messages: Buffer[] = [];
  readonly origins: RemoteInfo[] = [];
  readonly arrivals: number[] = [];
  /** `hb forget` requests, each with the number of datagrams held before it (its place in order). */
  readonly forgets: { node: string; after: number }[] = [];
  /**
   * Instants at which the socket was found empty, each with the number of datagrams held by then:
   * every datagram that arrived before such an instant is among those. Deadlines up to it can
   * be judged once they are taken in, and no earlier.
   */
  readonly emptyAt: number[] = [];
  readonly heldBy: number[] = [];
  /** Datagrams let go past MAX_HELD. */
  dropped = 0;

  datagram(msg: Buffer, from: RemoteInfo, arrivalMs: number): void {
    if (this.messages.length >= MAX_HELD) {
      this.dropped++;
      return;
    }
    this.messages.push(msg);
    this.origins.push(from);
    this.arrivals.push(arrivalMs);
  }

  forget(node: string): void {
    this.forgets.push({ node, after: this.messages.length });
  }

  /** The socket is empty at `nowMs`. */
  empty(nowMs: number): void {
    this.emptyAt.push(nowMs);
    this.heldBy.push(this.messages.length);
  }
}

/** Where datagrams come in (receive.ts): held back while a config is applied, then taken in. */
export interface Intake {
  held: HeldBack | null;
  readonly received: number;
  process(msg: Buffer, from: RemoteInfo, arrivalMs: number): void;
}

export interface ReloadsDeps {
  clock: Clock;
  emit: Emit;
  config: () => Config;
  /** Swaps in the config that every part of the monitor reads from now on. */
  setConfig: (config: Config) => void;
  admission: Admission;
  detector: Detector;
  judge: Judge;
  intake: Intake;
  /** `hb forget`, as the monitor does it (taken in among the held datagrams, in order). */
  forget: (node: string) => void;
}

export class Reloads {
  private last: ReloadState = { generation: 0, ok: null, at: null, changes: [], errors: [] };

  constructor(private readonly deps: ReloadsDeps) {}

  /** The outcome of the last reload (accepted or rejected). */
  get state(): ReloadState {
    return this.last;
  }

  /** Swaps in a new config at once; returns the changes (also reported as an event). */
  reload(loaded: LoadedConfig): string[] {
    const { detector, clock } = this.deps;
    const { changes, rules, staged } = finish(prepareReload(this.deps.config(), loaded, detector));
    this.deps.setConfig(staged.config);
    this.deps.admission.configure(rules);
    finish(detector.commitSteps(staged, clock.monoMs()));
    return this.reloaded(changes);
  }

  /**
   * reload(), a few milliseconds per turn of the event loop (`pause` awaits the next turn), so
   * that no reload blocks the loop for long whatever the fleet's size. While it is compared and
   * staged, datagrams are received and judged by the current config; while it is applied, they
   * are read and held with their arrival times, judging waits, and both resume in arrival order
   * once it is whole. Reloads must not overlap. `sliceMs` 0 takes one step (a few thousand
   * nodes) per turn.
   */
  async reloadInTurns(
    loaded: LoadedConfig,
    pause: () => Promise<void>,
    sliceMs = SLICE_MS,
  ): Promise<string[]> {
    const { clock, detector, judge, intake } = this.deps;
    // Between slices, the socket is emptied: a slice per turn would leave all but 32 datagrams.
    let held: HeldBack | null = null;
    const rest = async (): Promise<void> => {
      await this.emptySocket(pause);
      held?.empty(clock.monoMs());
    };
    const prepare = prepareReload(this.deps.config(), loaded, detector);
    const { changes, rules, staged } = await finishInTurns(prepare, rest, undefined, sliceMs);
    this.deps.setConfig(staged.config);
    this.deps.admission.configure(rules);
    held = intake.held = new HeldBack();
    held.empty(clock.monoMs());
    judge.pause();
    // Once begun, applying is finished even if the caller stops meanwhile (its pause fails): a
    // half-applied config is no state to leave, not even to stop in.
    const restAnyway = (): Promise<void> => rest().catch(() => undefined);
    try {
      await finishInTurns(detector.commitSteps(staged, clock.monoMs()), restAnyway, undefined, sliceMs);
      intake.held = null;
      this.takeHeld(held);
      // What arrived during the last slice may still wait in the socket: read it before judging.
      await restAnyway();
    } finally {
      intake.held = null;
      judge.resume();
    }
    return this.reloaded(changes);
  }

  /**
   * A rest between two slices of long work on this thread: turns the loop (`turn`) until the
   * socket is empty (see untilSocketEmpty).
   */
  emptySocket(turn: () => Promise<void>): Promise<void> {
    return untilSocketEmpty(turn, () => this.deps.intake.received);
  }

  /** A reload found an invalid config: the current one stays. */
  reject(errors: string[]): void {
    this.deps.emit("config.rejected", { errors });
    this.record(false, [], errors);
  }

  /**
   * Takes in what was held while a config was applied, in order, forgets included. Deadlines are
   * judged only up to the last instant at which the socket was found empty before each datagram
   * was read: a node whose heartbeat still waited in the socket is never judged for it.
   */
  private takeHeld(held: HeldBack): void {
    const { detector, intake, judge, clock } = this.deps;
    const { messages, origins, arrivals, forgets, emptyAt, heldBy } = held;
    let forget = 0;
    let mark = 0;
    for (let i = 0; i <= messages.length; i++) {
      while (forget < forgets.length && forgets[forget]!.after === i)
        this.deps.forget(forgets[forget++]!.node);
      if (i === messages.length) break;
      let safe = Number.NEGATIVE_INFINITY;
      while (mark < heldBy.length && heldBy[mark]! <= i) safe = emptyAt[mark++]!;
      if (safe !== Number.NEGATIVE_INFINITY) detector.advance(safe);
      intake.process(messages[i]!, origins[i]!, arrivals[i]!);
    }
    if (held.dropped > 0) {
      const now = clock.monoMs();
      judge.overload("backlog", arrivals[0] ?? now, now);
    }
  }

  /** After a config is applied: judgement, then the event. */
  private reloaded(changes: string[]): string[] {
    this.deps.detector.advance(this.deps.clock.monoMs());
    this.deps.judge.rearm();
    this.deps.emit("config.reloaded", { changes });
    this.record(true, changes, []);
    return changes;
  }

  private record(ok: boolean, changes: string[], errors: string[]): void {
    this.last = {
      generation: this.last.generation + 1,
      ok,
      at: this.deps.clock.wallMs(),
      changes,
      errors,
    };
  }
}
