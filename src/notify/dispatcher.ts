// The dispatcher: detection only enqueues a notice; delivery runs later, on its own, and can
// never hold up a deadline. It keeps one lane per output (lane.ts: batches, parallel calls,
// per-node order; queue.ts: the bound; retry.ts: backoff), takes the outputs of each (re)loaded
// config, runs `hb notify test`, and drops everything at once when the monitor stops speaking.

import type { NotifySpec } from "../config/types.js";
import { Lane, type LaneDeps, type LaneStats } from "./lane.js";
import type { Notice } from "./notice.js";
import { errorText, failed, type Outcome, type Output } from "./output.js";

/** At stop, deliveries in flight get this long to finish before they are cut off. */
export const STOP_GRACE_MS = 5000;

export interface DispatcherDeps extends LaneDeps {
  /** Makes the output for a spec (a new one when the spec changes on reload). */
  make(spec: NotifySpec): Output;
}

/** A spec as compared on reload: where it is written in the file changes nothing. */
function specKey(spec: NotifySpec): string {
  return JSON.stringify(spec, (field, value: unknown) => {
    if (field === "line" || field === "col") return undefined;
    return value instanceof Set ? [...(value as Set<string>)].sort() : value;
  });
}

export class Dispatcher {
  private lanes = new Map<string, Lane>();
  private keys = new Map<string, string>();
  private specs: readonly NotifySpec[] = [];
  private identity: (spec: NotifySpec) => string = () => "";
  private testing = false;

  constructor(private readonly deps: DispatcherDeps) {}

  /** True when some output may carry `event` (so that the notice is worth making). */
  wants(event: string, fields: Readonly<Record<string, unknown>>): boolean {
    for (const lane of this.lanes.values()) if (lane.accepts(event, fields)) return true;
    return false;
  }

  /** Enqueues `notice` for every output that carries its event. Never blocks, never throws. */
  offer(notice: Notice): void {
    for (const lane of this.lanes.values()) if (lane.accepts(notice.event, notice.fields)) lane.offer(notice);
  }

  /**
   * Takes the outputs of a (re)loaded config: an unchanged one keeps its queue and calls; a
   * changed one keeps its queue and uses the new spec for the next calls; a removed one is
   * closed. `identity` adds to what "unchanged" compares (a signing key's contents). An output
   * that cannot be made is left out and reported; the others are taken.
   */
  configure(specs: readonly NotifySpec[], identity: (spec: NotifySpec) => string = () => ""): void {
    this.specs = specs;
    this.identity = identity;
    const next = new Map<string, Lane>();
    const keys = new Map<string, string>();
    for (const spec of specs) {
      const key = specKey(spec) + identity(spec);
      const lane = this.lanes.get(spec.name);
      if (lane !== undefined && this.keys.get(spec.name) === key) {
        next.set(spec.name, lane);
        keys.set(spec.name, key);
        continue;
      }
      let output: Output;
      try {
        output = this.deps.make(spec);
      } catch (err) {
        this.deps.emit("notify.failed", {
          output: spec.name,
          reason: "internal",
          detail: `cannot be set up: ${errorText(err)}`,
          attempts: 0,
          notices: 0,
          nodes: [],
        });
        if (lane !== undefined) {
          next.set(spec.name, lane);
          keys.set(spec.name, this.keys.get(spec.name)!);
        }
        continue;
      }
      if (lane === undefined) next.set(spec.name, new Lane(spec, output, this.deps));
      else {
        lane.replace(spec, output);
        next.set(spec.name, lane);
      }
      keys.set(spec.name, key);
    }
    for (const [name, lane] of this.lanes) if (!next.has(name)) void lane.close(STOP_GRACE_MS);
    this.lanes = next;
    this.keys = keys;
  }

  /**
   * Drops what every output was about to send and starts each afresh, as a new output with an
   * empty queue: a monitor that stops speaking sends nothing more, neither what waited nor what
   * an output would have sent again on its own (an alertmanager output's resends).
   */
  restart(): void {
    const { specs, identity } = this;
    this.configure([]);
    this.configure(specs, identity);
  }

  /**
   * `hb notify test`: one call through the named output, at once, one attempt; null: no such
   * output. One at a time: a status endpoint cannot be used to start hooks without end.
   */
  async test(name: string, notice: Notice): Promise<Outcome | null> {
    const lane = this.lanes.get(name);
    if (lane === undefined) return null;
    if (this.testing) return failed(false, "busy", "another notify test is running");
    this.testing = true;
    const started = this.deps.clock.monoMs();
    try {
      return await Promise.resolve()
        .then(() => lane.output.deliver([notice], 1))
        .catch((err: unknown) => failed(false, "internal", errorText(err)));
    } finally {
      this.testing = false;
      this.deps.observe?.(name, (this.deps.clock.monoMs() - started) / 1000);
    }
  }

  stats(): LaneStats[] {
    return [...this.lanes.values()].map((lane) => lane.stats());
  }

  get size(): number {
    return this.lanes.size;
  }

  /** At stop: what is in flight gets `graceMs` to finish; what waits is dropped and reported. */
  async close(graceMs = STOP_GRACE_MS): Promise<void> {
    await Promise.all([...this.lanes.values()].map((lane) => lane.close(graceMs)));
  }
}
