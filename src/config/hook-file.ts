// Whether a hook file may be run: checked when a config is loaded (so that `hb check-config`
// refuses an unsafe hook up front and the monitor warns of it) and again before every run, whose
// process is started from the path that was checked. A hook runs with the monitor's rights:
// whoever can rewrite it, or swap it through any directory above it, could run code as the
// monitor.

import { constants } from "node:fs";
import { access, realpath, stat } from "node:fs/promises";
import { dirname, isAbsolute } from "node:path";

const errorText = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/** Who may own a hook and the directories above it: root, or the user the monitor runs as. */
function trustedOwner(uid: number): boolean {
  return uid === 0 || uid === process.getuid?.();
}

/**
 * The real path to run for the hook at `path`, or why it may not be run: it must be an absolute
 * path to a regular file this process can execute, owned by root or the monitor's user, that
 * no one else can rewrite, nor replace through any directory on its way (a directory others may
 * write to must be sticky).
 */
export async function checkHookFile(path: string): Promise<{ real: string } | { problem: string }> {
  if (!isAbsolute(path)) return { problem: `${path} is not an absolute path` };
  try {
    let real: string;
    try {
      real = await realpath(path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return { problem: `${path} does not exist` };
      throw err;
    }
    const info = await stat(real);
    if (!info.isFile()) return { problem: `${path} is not a regular file` };
    try {
      await access(real, constants.X_OK);
    } catch {
      return { problem: `${path} is not executable by this process` };
    }
    if ((info.mode & 0o022) !== 0)
      return {
        problem: `${path} is writable by its group or others (mode ${(info.mode & 0o7777).toString(8)})`,
      };
    if (!trustedOwner(info.uid))
      return { problem: `${path} is owned by uid ${info.uid}, not root or this user` };
    // Every directory on the way, to the symlink and to the file it names.
    const dirs = new Set<string>();
    for (const start of [dirname(path), dirname(real)])
      for (let dir = start; !dirs.has(dir); dir = dirname(dir)) dirs.add(dir);
    for (const dir of dirs) {
      const d = await stat(dir);
      if ((d.mode & 0o002) !== 0 && (d.mode & 0o1000) === 0)
        return { problem: `${dir} is writable by others and not sticky` };
      const groupWrites = (d.mode & 0o020) !== 0 && (d.mode & 0o1000) === 0;
      if (groupWrites && d.gid !== 0 && d.gid !== process.getgid?.())
        return { problem: `${dir} is writable by its group (gid ${d.gid}) and not sticky` };
    }
    return { real };
  } catch (err) {
    return { problem: `${path} cannot be checked: ${errorText(err)}` };
  }
}

/** Why the hook at `path` may not be run, or null when it may (see checkHookFile). */
export async function hookFileProblem(path: string): Promise<string | null> {
  const checked = await checkHookFile(path);
  return "problem" in checked ? checked.problem : null;
}
