// Reading a shared secret from a key file, for both sides of the wire: the monitor's keyring and
// a node's signing key. The file is opened first and judged by what was opened (no race between
// a check and the read): a regular file of at most 4 KiB, owned by root or by this process's
// user, mode 0600 (or 0640 with the group the service gets, hb-keys, as Debian does for TLS keys
// with ssl-cert), in directories that nobody else can write to (as OpenSSH's StrictModes asks).

import { constants, type Stats } from "node:fs";
import { open, realpath, stat } from "node:fs/promises";
import { dirname, resolve } from "node:path";

export const MIN_KEY_BYTES = 16;
export const MAX_KEY_FILE_BYTES = 4096;

export interface KeyFileOptions {
  /** The user that may own the file besides root; default: this process's effective user. */
  uid?: number;
}

/** The directory `path` is in, and each one above it. */
function ancestors(path: string): string[] {
  const dirs: string[] = [];
  for (let dir = dirname(path); ; dir = dirname(dir)) {
    dirs.push(dir);
    if (dirname(dir) === dir) return dirs;
  }
}

/**
 * Whoever can write to a directory on the way can swap the key for their own. A sticky,
 * world-writable directory (/tmp) is fine: there, others cannot rename or remove our entries.
 */
async function checkDirectories(path: string, opened: Stats, uid: number): Promise<void> {
  const real = await realpath(path);
  const now = await stat(real);
  if (now.dev !== opened.dev || now.ino !== opened.ino)
    throw new Error(`${path} was replaced while being read`);
  for (const dir of new Set([...ancestors(resolve(path)), ...ancestors(real)])) {
    const info = await stat(dir);
    if (info.uid !== 0 && info.uid !== uid) {
      throw new Error(
        `${path} is in ${dir}, owned by uid ${info.uid}: key directories must belong to root or uid ${uid}`,
      );
    }
    if ((info.mode & 0o022) !== 0 && (info.mode & 0o1000) === 0) {
      const mode = (info.mode & 0o777).toString(8);
      throw new Error(`${path} is in ${dir}, which others can write to (mode ${mode}): chmod go-w ${dir}`);
    }
  }
}

/** The secret in a key file: its text with surrounding white space removed. */
export async function readKeyFile(path: string, options: KeyFileOptions = {}): Promise<Buffer> {
  const uid = options.uid ?? process.geteuid?.() ?? 0;
  // O_NONBLOCK: a FIFO put in the key's place must be refused, not wait for a writer forever.
  const handle = await open(path, constants.O_RDONLY | constants.O_NOCTTY | constants.O_NONBLOCK);
  const buf = Buffer.alloc(MAX_KEY_FILE_BYTES + 1);
  try {
    const info = await handle.stat();
    if (!info.isFile()) throw new Error(`${path} is not a regular file`);
    if (info.uid !== 0 && info.uid !== uid) {
      throw new Error(`${path} is owned by uid ${info.uid}: key files must belong to root or uid ${uid}`);
    }
    if ((info.mode & 0o027) !== 0) {
      const mode = (info.mode & 0o777).toString(8);
      throw new Error(
        `${path} is accessible to others or writable by its group (mode ${mode}): chmod 600, or 640 with group hb-keys`,
      );
    }
    if (info.size > MAX_KEY_FILE_BYTES) {
      throw new Error(`${path} is ${info.size} bytes; a key file holds at most ${MAX_KEY_FILE_BYTES}`);
    }
    await checkDirectories(path, info, uid);
    // Read at most one byte past the limit, whatever the file grew to since fstat.
    let length = 0;
    for (;;) {
      const { bytesRead } = await handle.read(buf, length, buf.length - length, null);
      length += bytesRead;
      if (bytesRead === 0 || length === buf.length) break;
    }
    if (length > MAX_KEY_FILE_BYTES) {
      throw new Error(`${path} is over ${MAX_KEY_FILE_BYTES} bytes; a key file holds at most that`);
    }
    const secret = Buffer.from(buf.toString("utf8", 0, length).trim(), "utf8");
    if (secret.length === 0) throw new Error(`${path} is empty`);
    if (secret.length < MIN_KEY_BYTES)
      throw new Error(`${path} holds ${secret.length} bytes; keys need at least ${MIN_KEY_BYTES}`);
    return secret;
  } finally {
    buf.fill(0);
    await handle.close();
  }
}
