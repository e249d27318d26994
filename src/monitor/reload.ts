// What a reload needs beyond the detector: the comparison and the admission rules, made ready a
// step at a time alongside the detector's staging, and what arrives while the new config is
// being applied: datagrams, with the instant each was read, and `hb forget` requests. They are
// held in order, and handed back once the config is whole.

import { diffSteps } from "../config/diff.js";
import type { LoadedConfig } from "../config/load.js";
import type { Config } from "../config/types.js";
import type { Sliced } from "../slices.js";
import type { RemoteInfo } from "../wire/udp.js";
import { admissionRules, type AdmissionRules } from "./admit.js";
import type { Detector } from "./detector.js";
import type { Staged } from "./reconfigure.js";

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
