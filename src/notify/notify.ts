// Notifications, put together: the notices made from the monitor's events, the dispatcher and an
// output per `notify:` entry. `emit` wraps the journal's Emit: every event is written first, then
// offered (a notice is made only when some output carries it), so detection never waits on a
// delivery. `hb notify test` and the metrics reach the outputs through here.

import { hostname } from "node:os";
import type { Clock } from "../clock.js";
import type { Keyring } from "../config/load.js";
import type { NotifySpec } from "../config/types.js";
import type { Emit, EventName } from "../events.js";
import { Dispatcher } from "./dispatcher.js";
import type { LaneStats } from "./lane.js";
import { downFields } from "../facts.js";
import { NoticeMaker, type NodeFacts } from "./notices.js";
import type { Outcome, Output } from "./output.js";
import { makeOutput, outputIdentity, type OutputContext } from "./outputs.js";

export interface NotifyDeps {
  clock: Clock;
  /** The journal's Emit. */
  log: Emit;
  /** This monitor's name in notices; default the host name. */
  monitor?: string;
  facts(node: string): NodeFacts | null;
  /** Whether the node is down now: an alert still firing for one that is not is resolved. */
  isDown(node: string): boolean;
  /** Base URL of the status endpoint, for links in alerts; null when there is none to give. */
  statusUrl(): string | null;
  /** With a cluster: whether this monitor speaks now, and what it knows of the other monitors. */
  cluster?: {
    speaking(): boolean;
    peerFacts(peer: string): NodeFacts | null;
    downPeers(): readonly Readonly<Record<string, unknown>>[];
  };
  /** Visits up to `max` nodes from `fromSlot` on (id, state, last arrival); returns where to go on, or -1. */
  forEachNode?(
    fromSlot: number,
    max: number,
    visit: (id: string, state: string, lastSeenWallMs: number | null) => void,
  ): number;
  /** Makes the output of a `notify:` entry; by default the one of its kind (outputs.ts). */
  makeOutput?: (spec: NotifySpec, context: OutputContext) => Output;
}

/**
 * What the policy layer decides of each event (src/policy/): whether it becomes a notice, and
 * why not. Typed here so that notify/ needs nothing of it but this shape.
 */
export interface NoticePolicy {
  decide(
    event: string,
    fields: Readonly<Record<string, unknown>>,
  ):
    | { readonly notice: "sent"; readonly extra: Readonly<Record<string, unknown>> | null }
    | { readonly notice: "suppressed" | "held"; readonly by: readonly string[] };
  /** A notice went out (this monitor speaks): the last state paged. */
  offered(event: string, fields: Readonly<Record<string, unknown>>): void;
  /** A new speaker's look at a down node: keep quiet, repeat to outputs that deduplicate, or page. */
  reassert(node: string): "quiet" | "repeat" | "page";
}

/** Nodes looked at per turn of the loop while down nodes are said again. */
const REASSERT_SLICE = 4096;

/** A node or monitor back from down or late: the end of an incident. */
function isRecovery(event: string, fields: Readonly<Record<string, unknown>>): boolean {
  return (
    (event === "node.up" || event === "peer.up") && (fields.previous === "down" || fields.previous === "late")
  );
}

export class Notify {
  readonly monitor: string;
  private readonly notices: NoticeMaker;
  private readonly dispatcher: Dispatcher;
  private keyring: Keyring = new Map();
  /** Whether this monitor spoke as last told (speakingChanged); null: not told yet. */
  private speakingBefore: boolean | null = null;
  /** Set once the policy layer is built (it reads the monitor this notifies for). */
  policy: NoticePolicy | null = null;

  constructor(private readonly deps: NotifyDeps) {
    this.monitor = deps.monitor ?? hostname();
    const cluster = deps.cluster;
    this.notices = new NoticeMaker({
      monitor: this.monitor,
      wallMs: () => deps.clock.wallMs(),
      facts: (node) => deps.facts(node),
      ...(cluster === undefined ? {} : { peerFacts: (peer: string) => cluster.peerFacts(peer) }),
    });
    this.dispatcher = new Dispatcher({
      clock: deps.clock,
      emit: (event, fields) => this.emit(event, fields),
      make: (spec) => this.output(spec),
      observe: (output, seconds) => this.onDelivery?.(output, seconds),
    });
  }

  /** Told of each delivery's duration (metrics). */
  onDelivery: ((output: string, seconds: number) => void) | undefined;

  /**
   * Writes the event to the journal, with what the policy decided when it did not become a
   * notice, then hands it to the outputs that carry it.
   */
  readonly emit: Emit = (event, fields) => {
    let record = fields as unknown as Readonly<Record<string, unknown>>;
    const verdict = this.policy?.decide(event, record);
    if (verdict !== undefined && verdict.notice !== "sent") {
      const why = verdict.notice === "held" ? "heldBy" : "suppressedBy";
      this.log(event, { ...record, notice: verdict.notice, [why]: verdict.by });
      return;
    }
    if (verdict?.extra != null) record = { ...record, ...verdict.extra };
    const speaking = this.log(event, record);
    // A monitor that is not speaking still tells of recoveries it saw: the incident may have
    // been opened by a speaker that has since handed over, and a duplicate is better than an
    // incident left open.
    if (!speaking && !(isRecovery(event, record) && this.speakingBefore !== null)) return;
    if (speaking) this.policy?.offered(event, record);
    if (this.dispatcher.size > 0 && this.dispatcher.wants(event, record))
      this.dispatcher.offer(this.notices.make(event, record));
  };

  /**
   * A notice the policy decided on later (a hold that ended, nodes settled after a window): to
   * the outputs, not the journal, which had the event when it happened. False: not speaking.
   */
  offerLater(event: string, fields: Readonly<Record<string, unknown>>): boolean {
    if (this.deps.cluster !== undefined && !this.deps.cluster.speaking()) return false;
    this.policy?.offered(event, fields);
    if (this.dispatcher.size > 0 && this.dispatcher.wants(event, fields))
      this.dispatcher.offer(this.notices.make(event, fields));
    return true;
  }

  /**
   * Writes an event to the journal; with a cluster, saying which monitor wrote it and whether it
   * was speaking. Returns whether it was: the monitor speaks now, or spoke until this very event
   * made it hand over (the event that ends its turn is still its to tell).
   */
  private log(event: EventName, fields: Readonly<Record<string, unknown>>): boolean {
    const cluster = this.deps.cluster;
    if (cluster === undefined) {
      this.deps.log(event, fields as never);
      return true;
    }
    const speaking = cluster.speaking() || this.speakingBefore === true;
    // `monitor.speaking` has a `speaking` of its own: the event's says it.
    this.deps.log(event, {
      ...fields,
      monitor: this.monitor,
      speaking: fields.speaking ?? speaking,
    } as never);
    return speaking;
  }

  /**
   * This monitor started or stopped speaking. One that starts says again, through its outputs,
   * every state that needs attention (nodes and monitors down), with the same dedup keys as when
   * they began: a node that died while the previous speaker was dying is still reported.
   * Duplicates are possible in a hand-over; silence is not. One that stops drops what it was
   * about to send and starts afresh, so that it sends nothing more, not even an output's resends.
   */
  speakingChanged(speaking: boolean): void {
    this.speakingBefore = speaking;
    if (!speaking) return this.dispatcher.restart();
    for (const fields of this.deps.cluster?.downPeers() ?? []) this.offerAgain("peer.down", fields);
    const deps = this.deps;
    if (deps.forEachNode === undefined) return;
    const step = (from: number): void => {
      if (!(this.deps.cluster?.speaking() ?? true)) return;
      const next = deps.forEachNode!(from, REASSERT_SLICE, (node, state, lastSeen) => {
        if (state !== "down") return;
        const verdict = this.policy?.reassert(node) ?? "page";
        if (verdict === "quiet") return;
        const timeoutMs = this.deps.facts(node)?.timeoutMs ?? 0;
        const fields = {
          ...downFields(node, lastSeen, timeoutMs, this.deps.clock.wallMs()),
          ...(verdict === "repeat" ? { alreadyPaged: true } : {}),
        };
        if (verdict === "page") this.policy?.offered("node.down", fields);
        this.offerAgain("node.down", fields);
      });
      if (next >= 0) this.deps.clock.setImmediate(() => step(next));
    };
    step(0);
  }

  private offerAgain(event: string, fields: Readonly<Record<string, unknown>>): void {
    const record = { ...fields, reasserted: true };
    if (this.dispatcher.wants(event, record)) this.dispatcher.offer(this.notices.make(event, record));
  }

  /** The outputs of a (re)loaded config, with the keys a webhook may sign with. */
  configure(specs: readonly NotifySpec[], keyring: Keyring): void {
    this.keyring = keyring;
    this.dispatcher.configure(specs, (spec) => outputIdentity(spec, this.keyring));
  }

  private output(spec: NotifySpec): Output {
    const deps = this.deps;
    const context: OutputContext = {
      clock: deps.clock,
      monitor: this.monitor,
      keyring: this.keyring,
      statusUrl: deps.statusUrl(),
      isDown: (node) => deps.isDown(node),
    };
    return (deps.makeOutput ?? makeOutput)(spec, context);
  }

  /**
   * `hb notify test NAME`: a notice marked as a test, through that output alone, at once and once;
   * null when there is no such output. The outcome is written to the journal too.
   */
  async test(name: string): Promise<Outcome | null> {
    const fields = {
      output: name,
      outcome: "sending",
      detail: "a test notice from hb notify test: no action needed",
    };
    const outcome = await this.dispatcher.test(name, this.notices.make("notify.test", fields, true));
    if (outcome === null) return null;
    this.log("notify.test", {
      output: name,
      outcome: outcome.ok ? "delivered" : outcome.reason,
      detail: outcome.ok ? "" : outcome.detail,
    });
    return outcome;
  }

  stats(): LaneStats[] {
    return this.dispatcher.stats();
  }

  close(): Promise<void> {
    return this.dispatcher.close();
  }
}
