// Notifications, put together: the notices made from the monitor's events, the dispatcher and an
// output per `notify:` entry. `emit` wraps the journal's Emit: every event is written first, then
// offered (a notice is made only when some output carries it), so detection never waits on a
// delivery. `hb notify test` and the metrics reach the outputs through here.

import { createHash } from "node:crypto";
import { hostname } from "node:os";
import type { Clock } from "../clock.js";
import type { Keyring } from "../config/load.js";
import type { NotifySpec } from "../config/types.js";
import type { Emit } from "../events.js";
import { VERSION } from "../version.js";
import { AlertmanagerOutput } from "./alertmanager.js";
import { Dispatcher, type LaneStats } from "./dispatcher.js";
import { ExecOutput } from "./exec.js";
import { NoticeMaker, type NodeFacts } from "./notices.js";
import type { Outcome, Output } from "./output.js";
import { WebhookOutput } from "./webhook.js";

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
}

export class Notify {
  readonly monitor: string;
  private readonly notices: NoticeMaker;
  private readonly dispatcher: Dispatcher;
  private keyring: Keyring = new Map();

  constructor(private readonly deps: NotifyDeps) {
    this.monitor = deps.monitor ?? hostname();
    this.notices = new NoticeMaker({
      monitor: this.monitor,
      wallMs: () => deps.clock.wallMs(),
      facts: (node) => deps.facts(node),
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

  /** Writes the event to the journal, then hands it to the outputs that carry it. */
  readonly emit: Emit = (event, fields) => {
    this.deps.log(event, fields);
    const record = fields as unknown as Readonly<Record<string, unknown>>;
    if (this.dispatcher.size > 0 && this.dispatcher.wants(event, record))
      this.dispatcher.offer(this.notices.make(event, record));
  };

  /** The outputs of a (re)loaded config, with the keys a webhook may sign with. */
  configure(specs: readonly NotifySpec[], keyring: Keyring): void {
    this.keyring = keyring;
    // A webhook whose key file was rotated is a changed output: its next requests use the new key.
    this.dispatcher.configure(specs, (spec) => {
      const key = spec.kind === "webhook" && spec.signWith !== null ? keyring.get(spec.signWith) : undefined;
      return key === undefined ? "" : createHash("sha256").update(key.export()).digest("hex");
    });
  }

  private output(spec: NotifySpec): Output {
    const clock = this.deps.clock;
    switch (spec.kind) {
      case "exec":
        return new ExecOutput(spec, { clock, monitor: this.monitor });
      case "webhook":
        return new WebhookOutput(spec, {
          clock,
          key: spec.signWith === null ? null : (this.keyring.get(spec.signWith) ?? null),
          userAgent: `hb/${VERSION}`,
          ...(this.deps.statusUrl() === null ? {} : { externalUrl: this.deps.statusUrl()! }),
        });
      case "alertmanager":
        return new AlertmanagerOutput(spec, {
          clock,
          statusUrl: this.deps.statusUrl(),
          stillFiring: (key, node) =>
            !key.startsWith("HbNodeDown/") || node === null || this.deps.isDown(node),
        });
    }
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
    this.deps.log("notify.test", {
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
