// The policy layer put together: the windows, the decisions, the operator's commands, and the one
// file in the state directory that keeps the windows and the last state paged per node, read
// before anything is judged or paged and written (whole, synced) on every change, so that a
// `kill -9` loses nothing an operator was told was done.

import type { Clock } from "../clock.js";
import type { Config } from "../config/types.js";
import { HbError } from "../errors.js";
import type { Emit } from "../events.js";
import { Maint } from "./maint.js";
import { PAGED_RULE, Policy, readPaged, type Paged, type PolicyDeps } from "./policy.js";
import { LocalMap, type SharedMap } from "./shared.js";
import { WINDOW_RULE, Windows, readWindow, type MaintWindow } from "./windows.js";

/** The state directory's file, as the policy uses it (monitor/state-dir.ts's StateFile). */
export interface KeptFile {
  readonly path: string;
  load(): Promise<string | null>;
  save(render: () => string): Promise<void>;
}

export const POLICY_FILE = {
  name: "maintenance.json",
  what: "the maintenance windows",
  ifRemoved: "the windows added with hb maint are then lost, and what they cover may page",
} as const;

const FORMAT = "hb-maintenance 1";
/** The last state paged is saved at most this often. */
const PAGED_SAVE_MS = 1000;
/** Kept windows and pages are pruned this often. */
const PRUNE_MS = 3_600_000;

/** What the policy asks of the monitor and the outputs (see PolicyDeps). */
export interface PolicyLayerDeps extends Pick<PolicyDeps, "state" | "facts" | "forEachNode" | "offer"> {
  clock: Clock;
  emit: Emit;
  config: () => Config;
  monitor: string;
  /** Where the windows are kept; null: nowhere (they last as long as the process). */
  file: KeptFile | null;
  /** The maps shared with the other monitors; by default, local ones. */
  shared?: { windows: SharedMap<MaintWindow>; paged: SharedMap<Paged> };
  fits?: (w: MaintWindow) => boolean;
}

export class PolicyLayer {
  readonly windows: Windows;
  readonly policy: Policy;
  readonly maint: Maint;
  private readonly shared: { windows: SharedMap<MaintWindow>; paged: SharedMap<Paged> };
  private prune: ReturnType<Clock["setTimeout"]> | undefined;
  private pagedSave: ReturnType<Clock["setTimeout"]> | undefined;
  /** A save failed, and that was said: said again only after one succeeds. */
  private failing = false;
  private readonly counts: Record<string, number> = { maint: 0, parent: 0, flapping: 0, not_paged: 0 };

  constructor(private readonly deps: PolicyLayerDeps) {
    this.shared = deps.shared ?? {
      windows: new LocalMap(WINDOW_RULE),
      paged: new LocalMap(PAGED_RULE),
    };
    const changed = (): void => void this.save().catch(() => undefined);
    // The last state paged changes with every page: during an outage of thousands of nodes it is
    // written at most once a second, not once per page (a crash in that second costs a repeat).
    const pagedChanged = (): void => {
      if (this.pagedSave !== undefined) return;
      this.pagedSave = deps.clock.setTimeout(() => {
        this.pagedSave = undefined;
        changed();
      }, PAGED_SAVE_MS);
      this.pagedSave.unref?.();
    };
    this.windows = new Windows({
      clock: deps.clock,
      emit: deps.emit,
      config: deps.config,
      monitor: deps.monitor,
      shared: this.shared.windows,
      ended: (w) => this.policy.windowEnded(w),
      changed,
    });
    this.shared.paged.onChange = () => pagedChanged();
    this.policy = new Policy({
      clock: deps.clock,
      config: deps.config,
      windows: this.windows,
      paged: this.shared.paged,
      state: (node) => deps.state(node),
      facts: (node) => deps.facts(node),
      forEachNode: (from, max, visit) => deps.forEachNode(from, max, visit),
      offer: (event, fields) => deps.offer(event, fields),
      suppressed: (reasons) => {
        for (const reason of reasons) {
          const kind = reason.includes(":") ? reason.slice(0, reason.indexOf(":")) : reason;
          this.counts[kind] = (this.counts[kind] ?? 0) + 1;
        }
      },
      changed: pagedChanged,
    });
    this.maint = new Maint({
      clock: deps.clock,
      config: deps.config,
      windows: this.windows,
      monitor: deps.monitor,
      forEachNode: (visit) => {
        const config = deps.config();
        for (let from = 0; from >= 0;)
          from = deps.forEachNode(from, 65_536, (id) => visit(id, config.nodes.get(id)?.labels ?? null));
      },
      ...(deps.fits === undefined ? {} : { fits: deps.fits }),
      save: () => this.save(),
    });
  }

  /** Reads what the file keeps; before the first judgement and the first notice. */
  async load(): Promise<void> {
    const file = this.deps.file;
    const text = file === null ? null : await file.load();
    if (text !== null) {
      const newline = text.indexOf("\n");
      let doc: unknown;
      try {
        if (text.slice(0, newline) !== FORMAT) throw new Error(`its first line is not "${FORMAT}"`);
        doc = JSON.parse(text.slice(newline + 1));
      } catch (err) {
        throw new HbError(
          "HB_ERR_STATE_FILE",
          `cannot read ${POLICY_FILE.what} ${file!.path}: ${(err as Error).message} (fix it, or remove it: ${POLICY_FILE.ifRemoved})`,
          { cause: err },
        );
      }
      const { windows, paged } = (doc ?? {}) as { windows?: unknown; paged?: unknown };
      for (const raw of Array.isArray(windows) ? windows : []) {
        const w = readWindow(raw);
        if (w !== null) this.shared.windows.set(w.id, w);
      }
      if (typeof paged === "object" && paged !== null)
        for (const [node, raw] of Object.entries(paged)) {
          const p = readPaged(raw);
          if (p !== null) this.shared.paged.set(node, p);
        }
    }
    const now = this.deps.clock.wallMs();
    this.shared.windows.prune(now);
    this.shared.paged.prune(now);
    this.windows.loaded();
    this.schedulePrune();
  }

  private schedulePrune(): void {
    this.prune = this.deps.clock.setTimeout(() => {
      this.windows.prune();
      this.shared.paged.prune(this.deps.clock.wallMs());
      this.schedulePrune();
    }, PRUNE_MS);
    this.prune.unref?.();
  }

  /** Writes the file; a failure is said once (until a save succeeds again) and rejects. */
  save(): Promise<void> {
    const file = this.deps.file;
    if (file === null) return Promise.resolve();
    return this.write(file).then(
      () => void (this.failing = false),
      (err: unknown) => {
        if (!this.failing)
          this.deps.emit("monitor.warning", {
            problem: "state_dir",
            detail: `cannot write ${POLICY_FILE.what} to ${file.path}: ${(err as Error).message}; a restart would lose what changed since`,
          });
        this.failing = true;
        throw err;
      },
    );
  }

  private write(file: KeptFile): Promise<void> {
    return file.save(() => {
      const windows = [...this.shared.windows.entries()].map(([, w]) => w);
      const paged: Record<string, Paged> = {};
      for (const [node, p] of this.shared.paged.entries()) if (p.state !== "up") paged[node] = p;
      return `${FORMAT}\n${JSON.stringify({ windows, paged })}\n`;
    });
  }

  /** Notices not sent since start, by the kind of reason (hb_notices_suppressed_total). */
  suppressed(): Readonly<Record<string, number>> {
    return this.counts;
  }

  /** Runtime windows kept, by state. */
  windowCounts(): Record<string, number> {
    const counts: Record<string, number> = { scheduled: 0, active: 0, ended: 0, expired: 0 };
    for (const w of this.windows.list().windows) counts[w.state] = (counts[w.state] ?? 0) + 1;
    return counts;
  }

  /** How many nodes a window covers now, counted a slice at a time. */
  async nodesInMaintenance(): Promise<number> {
    const now = this.deps.clock.wallMs();
    if (!this.windows.anyNear(now, 0)) return 0;
    const config = this.deps.config();
    let count = 0;
    for (let from = 0; from >= 0;) {
      from = this.deps.forEachNode(from, 4096, (id) => {
        if (this.windows.covering(id, config.nodes.get(id)?.labels ?? null, now, 0).length > 0) count++;
      });
      if (from >= 0) await new Promise((resolve) => this.deps.clock.setImmediate(() => resolve(undefined)));
    }
    return count;
  }

  configure(config: Config): void {
    this.windows.configure(config);
  }

  stop(): void {
    if (this.prune !== undefined) this.deps.clock.clearTimeout(this.prune);
    if (this.pagedSave !== undefined) this.deps.clock.clearTimeout(this.pagedSave);
    this.policy.stop();
  }
}
