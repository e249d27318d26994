// The replay marks file: each node's highest accepted incarnation and sequence, so that a
// restarted monitor still refuses datagrams it accepted before. One line per node,
// "ID INCARNATION SEQUENCE [s] [l]" ("s": the node signs its datagrams; "l": the last datagram
// accepted was a leave), after a version line; written to a temporary file and renamed.

import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import { HbError } from "../errors.js";
import { ID_PATTERN } from "../wire/protocol.js";

/** The highest incarnation and sequence accepted from a node, kept across monitor restarts. */
export interface ReplayMark {
  readonly incarnation: number;
  readonly sequence: number;
  /** The node was heard with a verified tag. */
  readonly signed: boolean;
  /** The datagram at the mark was a leave: the node stopped as planned (its next start is no crash). */
  readonly left: boolean;
}

export const MARKS_FILE = "replay-marks";
const HEADER = "hb-replay-marks 1";

export async function loadMarks(file: string): Promise<Map<string, ReplayMark>> {
  const marks = new Map<string, ReplayMark>();
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return marks;
    // Not a crash to restart from: the operator must fix the file (or remove it to start anew).
    throw new HbError(
      "HB_ERR_STATE_FILE",
      `cannot read the replay marks ${file}: ${code ?? (err as Error).message} (fix its owner and mode, or remove it: old datagrams could then be replayed once)`,
      { cause: err },
    );
  }
  const lines = text.split("\n");
  if (lines[0] !== HEADER) return marks;
  for (const line of lines.slice(1)) {
    const [id, incarnation, sequence, ...tags] = line.split(" ");
    if (id === undefined || !ID_PATTERN.test(id)) continue;
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

export async function saveMarks(file: string, marks: Iterable<[string, ReplayMark]>): Promise<void> {
  const parts = [HEADER];
  for (const [id, mark] of marks)
    parts.push(
      `${id} ${mark.incarnation} ${mark.sequence}${mark.signed ? " s" : ""}${mark.left ? " l" : ""}`,
    );
  await mkdir(dirname(file), { recursive: true });
  await writeFile(`${file}.tmp`, parts.join("\n") + "\n", { mode: 0o600 });
  await rename(`${file}.tmp`, file);
}
