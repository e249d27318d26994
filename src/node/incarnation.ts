// A node's incarnation: a number that is larger on every process start, so the monitor can tell
// a restart from a replay. With a state directory (systemd's StateDirectory=) the last value is
// kept on disk and the next is max(now in ms, last + 1), which survives wall-clock steps back;
// without one it is the wall clock in ms, which a clock stepped back across a restart defeats.
// A damaged file is replaced (from the wall clock) and reported, never a reason not to start.

import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";

export interface Incarnation {
  incarnation: number;
  /** Set when the file on disk was unusable and has been replaced: what was wrong with it. */
  repaired: string | null;
}

function parseLast(text: string): number | null {
  if (!/^\d{1,16}$/.test(text)) return null;
  const last = Number(text);
  // The next value, last + 1, must still be a safe integer (it travels as a u53).
  return last < Number.MAX_SAFE_INTEGER ? last : null;
}

export async function nextIncarnation(
  nodeId: string,
  stateDir: string | undefined,
  wallMs: number,
): Promise<Incarnation> {
  if (stateDir === undefined) return { incarnation: wallMs, repaired: null };
  const file = join(stateDir, `incarnation-${nodeId}`);
  let last = 0;
  let repaired: string | null = null;
  try {
    const text = (await readFile(file, "utf8")).trim();
    const parsed = parseLast(text);
    if (parsed === null) {
      const shown = text.length > 40 ? `${text.slice(0, 40)}...` : text;
      repaired = `${file} held ${JSON.stringify(shown)}, not an incarnation; replaced from the wall clock`;
    } else {
      last = parsed;
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
  const next = Math.max(wallMs, last + 1);
  await mkdir(stateDir, { recursive: true });
  await writeFile(`${file}.tmp`, `${next}\n`, { mode: 0o600 });
  await rename(`${file}.tmp`, file);
  return { incarnation: next, repaired };
}
