// A node's incarnation: a number that is larger on every process start, so the monitor can tell
// a restart from a replay. With a state directory (systemd's StateDirectory=) the last value is
// kept on disk and the next is max(now in ms, last + 1), which survives wall-clock steps back;
// without one it is the wall clock in ms, which a clock stepped back across a restart defeats.

import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";

export async function nextIncarnation(
  nodeId: string,
  stateDir: string | undefined,
  wallMs: number,
): Promise<number> {
  if (stateDir === undefined) return wallMs;
  const file = join(stateDir, `incarnation-${nodeId}`);
  let last = 0;
  try {
    const text = (await readFile(file, "utf8")).trim();
    if (/^\d+$/.test(text)) last = Number(text);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
  const next = Math.max(wallMs, last + 1);
  await mkdir(stateDir, { recursive: true });
  await writeFile(`${file}.tmp`, `${next}\n`, { mode: 0o600 });
  await rename(`${file}.tmp`, file);
  return next;
}
