// Reading a shared secret from a key file, for both sides of the wire: the monitor's keyring and
// a node's signing key. A key file must be a regular file, long enough to be a secret, and
// inaccessible to others: mode 0600, or 0640 with a group that the service gets (systemd:
// SupplementaryGroups=hb-keys), as Debian does for TLS keys with ssl-cert.

import { readFile, stat } from "node:fs/promises";

export const MIN_KEY_BYTES = 16;

/** The secret in a key file: its text with surrounding white space removed. */
export async function readKeyFile(path: string): Promise<Buffer> {
  const info = await stat(path);
  if (!info.isFile()) throw new Error(`${path} is not a regular file`);
  if ((info.mode & 0o027) !== 0) {
    const mode = (info.mode & 0o777).toString(8);
    throw new Error(
      `${path} is accessible to others or writable by its group (mode ${mode}): chmod 600, or 640 with group hb-keys`,
    );
  }
  const secret = Buffer.from((await readFile(path, "utf8")).trim(), "utf8");
  if (secret.length === 0) throw new Error(`${path} is empty`);
  if (secret.length < MIN_KEY_BYTES)
    throw new Error(`${path} holds ${secret.length} bytes; keys need at least ${MIN_KEY_BYTES}`);
  return secret;
}
