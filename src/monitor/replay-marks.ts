// The replay marks: each node's highest accepted incarnation and sequence, so that a restarted
// monitor still refuses datagrams it accepted before. Kept in the state directory only when
// datagrams are signed (auth on, or a cluster), as one line per node,
// "ID INCARNATION SEQUENCE [s] [l]" ("s": the node signs its datagrams; "l": the last datagram
// accepted was a leave), after a version line; saved a few seconds after arrivals, and at stop.

import type { Clock } from "../clock.js";
import type { Config } from "../config/types.js";
import type { Emit } from "../events.js";
import { Throttle } from "../throttle.js";
import { isId } from "../wire/protocol.js";
import type { StateDir, StateFile, StateFileSpec } from "./state-dir.js";

/** The highest incarnation and sequence accepted from a node, kept across monitor restarts. */
export interface ReplayMark {
  readonly incarnation: number;
  readonly sequence: number;
  /** The node was heard with a verified tag. */
  readonly signed: boolean;
  /** The datagram at the mark was a leave: the node stopped as planned (its next start is no crash). */
  readonly left: boolean;
}

/** Whether a datagram is at or below a mark: accepted before, so a replay now. */
export function isReplay(dg: { incarnation: number; sequence: number }, mark: ReplayMark): boolean {
  return (
    dg.incarnation < mark.incarnation || (dg.incarnation === mark.incarnation && dg.sequence <= mark.sequence)
  );
}

export const MARKS_FILE: StateFileSpec = {
  name: "replay-marks",
  what: "the replay marks",
  ifRemoved: "old datagrams could then be replayed once",
};
const HEADER = "hb-replay-marks 1";

/** How often replay marks are saved while heartbeats arrive (a crash loses at most this much). */
export const MARKS_SAVE_MS = 5000;

/** A file of another version, or none, holds no marks; a line that does not parse is skipped. */
export function parseMarks(text: string | null): Map<string, ReplayMark> {
  const marks = new Map<string, ReplayMark>();
  const lines = text?.split("\n") ?? [];
  if (lines[0] !== HEADER) return marks;
  for (const line of lines.slice(1)) {
    const [id, incarnation, sequence, ...tags] = line.split(" ");
    if (id === undefined || !isId(id)) continue;
    const mark = {
      incarnation: Number(incarnation),
      sequence: Number(sequence),
      signed: tags.includes("s"),
      left: tags.includes("l"),
    };
    if (Number.isSafeInteger(mark.incarnation) && Number.isSafeInteger(mark.sequence)) marks.set(id, mark);
  }
  return marks;
}

export function formatMarks(marks: Iterable<[string, ReplayMark]>): string {
  const parts = [HEADER];
  for (const [id, mark] of marks)
    parts.push(
      `${id} ${mark.incarnation} ${mark.sequence}${mark.signed ? " s" : ""}${mark.left ? " l" : ""}`,
    );
  return parts.join("\n") + "\n";
}

/** Whatever holds marks: the node detector, the peers' one. */
export interface MarkHolder {
  marks(): Iterable<[string, ReplayMark]>;
  restoreMarks(marks: Iterable<[string, ReplayMark]>): void;
}

export interface ReplayMarksDeps {
  clock: Clock;
  emit: Emit;
  /** The config now (a reload may turn authentication off or on). */
  config: () => Config;
  nodes: MarkHolder;
  peers: (MarkHolder & { readonly ids: readonly string[] }) | null;
}

export class ReplayMarks {
  private readonly file: StateFile;
  /** Written at most this often while datagrams are accepted, and at stop. */
  private readonly throttle: Throttle;
  private saving: Promise<void> | null = null;
  private saved: Promise<void> = Promise.resolve();

  /** Null when nothing needs them: no state directory, or no datagram is signed. */
  static keep(stateDir: StateDir | null, config: Config, deps: ReplayMarksDeps): ReplayMarks | null {
    // Peer heartbeats are always signed: with a cluster, marks are kept whatever `auth` says.
    const signed = config.auth !== "off" || config.cluster !== null;
    return stateDir !== null && signed ? new ReplayMarks(stateDir.file(MARKS_FILE), deps) : null;
  }

  private constructor(
    file: StateFile,
    private readonly deps: ReplayMarksDeps,
  ) {
    this.file = file;
    this.throttle = new Throttle(deps.clock, MARKS_SAVE_MS, () => void this.save());
  }

  /** Before the first datagram is read: the marks saved by the last run are taken up again. */
  async load(): Promise<void> {
    // One file for nodes and peers (their ids never meet): a heartbeat captured from a monitor
    // is no more replayable after a restart than a node's.
    const marks = parseMarks(await this.file.load());
    const { nodes, peers } = this.deps;
    const peerMarks = new Map<string, ReplayMark>();
    for (const id of peers?.ids ?? []) {
      const mark = marks.get(id);
      if (mark === undefined) continue;
      peerMarks.set(id, mark);
      marks.delete(id);
    }
    if (this.deps.config().auth !== "off") nodes.restoreMarks(marks);
    peers?.restoreMarks(peerMarks);
  }

  /** A datagram was accepted: its mark is saved within MARKS_SAVE_MS. */
  accepted(): void {
    this.throttle.trigger();
  }

  /** Saves now (a mark was cleared); a failure is a warning, the monitor goes on. */
  save(): Promise<void> {
    const saving = this.file.save(() => {
      const { nodes, peers } = this.deps;
      return formatMarks([
        ...(this.deps.config().auth === "off" ? [] : nodes.marks()),
        ...(peers?.marks() ?? []),
      ]);
    });
    // Asks that share one write share its warning too.
    if (saving !== this.saving) {
      this.saving = saving;
      this.saved = saving.catch((err: unknown) => {
        this.deps.emit("monitor.warning", {
          problem: "replay_marks",
          detail: `cannot save ${this.file.path}: ${(err as Error).message}`,
        });
      });
    }
    return this.saved;
  }

  /** At stop: the last marks, saved. */
  close(): Promise<void> {
    this.throttle.cancel();
    return this.save();
  }
}
