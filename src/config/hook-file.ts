// Whether a hook file may be run: the check made when a config is loaded (so that `hb
// check-config` and a reload refuse an unsafe hook up front) and again before every run. A hook
// runs with the monitor's rights: whoever can rewrite it, or swap it through its directory, could
// run code as the monitor.

import { constants } from "node:fs";
import { access, realpath, stat } from "node:fs/promises";
import { dirname, isAbsolute } from "node:path";

const errorText = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/**
 * Why the hook at `path` may not be run, or null when it may: it must be an absolute path to a
 * regular file this process can execute, that no one but its owner can rewrite, nor replace
 * through its directory.
 */
export async function hookFileProblem(path: string): Promise<string | null> {
  if (!isAbsolute(path)) return `${path} is not an absolute path`;
  try {
    let real: string;
    try {
      real = await realpath(path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return `${path} does not exist`;
      throw err;
    }
    const info = await stat(real);
    if (!info.isFile()) return `${path} is not a regular file`;
    try {
      await access(real, constants.X_OK);
    } catch {
      return `${path} is not executable by this process`;
    }
    if ((info.mode & 0o022) !== 0) {
      return `${path} is writable by its group or others (mode ${(info.mode & 0o7777).toString(8)})`;
    }
    // A symlink can be swapped through its own directory, the file through the real one.
    for (const dir of new Set([dirname(path), dirname(real)])) {
      const mode = (await stat(dir)).mode;
      if ((mode & 0o002) !== 0 && (mode & 0o1000) === 0) return `${dir} is writable by others and not sticky`;
    }
    return null;
  } catch (err) {
    return `${path} cannot be checked: ${errorText(err)}`;
  }
}
