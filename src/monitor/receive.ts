// The hot path: each datagram, read at its arrival, is counted, admitted (decoded, authenticated)
// or refused with a reason, and handed to the peers' detector or the nodes'. While a reload's
// config is applied, what arrives is held back instead (reload.ts) and taken in afterwards. While
// `hb capture` runs, what the nodes' detector accepted is also told to its recorder.
// Nothing here allocates per datagram: one scratch Datagram is decoded into again and again.

import type { Clock } from "../clock.js";
import type { Config } from "../config/types.js";
import { emptyDatagram } from "../wire/protocol.js";
import type { RemoteInfo } from "../wire/udp.js";
import type { Admission, RejectReason } from "./admit.js";
import type { Counters } from "./counters.js";
import type { Detector } from "./detector.js";
import type { Judge } from "./judge.js";
import type { SameIdCheck } from "./peering.js";
import type { Peers } from "./peers.js";
import type { Recorder } from "./recorder.js";
import type { HeldBack } from "./reload.js";
import type { ReplayMarks } from "./replay-marks.js";

export interface ReceiverDeps {
  /** The config now (a reload swaps it). */
  config: () => Config;
  /** Read once per datagram: its arrival time. */
  clock: Clock;
  admission: Admission;
  detector: Detector;
  judge: Judge;
  counters: Counters;
  peers: Peers | null;
  sameId: SameIdCheck | null;
  marks: ReplayMarks | null;
}

export class Receiver {
  /** While a reload's config is applied: what arrives, held until it is whole. */
  held: HeldBack | null = null;
  /** While `hb capture` runs: told of each datagram the nodes' detector accepted, as of its arrival. */
  capture: Recorder | null = null;
  private readonly scratch = emptyDatagram();
  private readonly clock: Clock;
  private readonly counters: Counters;
  private readonly admission: Admission;
  private readonly detector: Detector;
  private readonly judge: Judge;
  private readonly peers: Peers | null;
  private readonly marks: ReplayMarks | null;

  constructor(private readonly deps: ReceiverDeps) {
    this.clock = deps.clock;
    this.counters = deps.counters;
    this.admission = deps.admission;
    this.detector = deps.detector;
    this.judge = deps.judge;
    this.peers = deps.peers;
    this.marks = deps.marks;
  }

  /** Datagrams read from the socket so far. */
  get received(): number {
    return this.counters.received;
  }

  handle(msg: Buffer, from: RemoteInfo): void {
    const now = this.clock.monoMs();
    this.counters.received++;
    if (this.held !== null) return this.held.datagram(msg, from, now);
    this.process(msg, from, now);
  }

  /** One datagram, judged as of `arrivalMs` (also what was held, taken in after a reload). */
  process(msg: Buffer, from: RemoteInfo, arrivalMs: number): void {
    const dg = this.scratch;
    const reason = this.admission.admit(msg, dg);
    if (reason !== null) {
      if (reason === "key_not_allowed") this.deps.sameId?.refused(dg);
      return this.reject(reason);
    }
    const { peers, marks } = this;
    if (peers !== null && this.admission.fromPeer(dg)) {
      const refused = peers.observe(dg, arrivalMs, from);
      if (refused !== null) return this.reject(refused);
      marks?.accepted();
      return;
    }
    const signed = dg.tagOffset !== 0 && this.deps.config().auth !== "off";
    const verdict = this.detector.observe(dg, arrivalMs, from, signed);
    if (verdict !== null) return this.reject(verdict);
    this.counters.accepted++;
    this.judge.heard(arrivalMs);
    marks?.accepted();
    if (this.capture !== null) this.capture.accepted(dg, arrivalMs);
  }

  private reject(reason: RejectReason): void {
    this.counters.rejections.count(reason);
  }
}
