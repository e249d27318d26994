// Reads a config file and the key files it names: the I/O around the pure parser. Key files must
// be present, regular, long enough to be a secret, and inaccessible to others: mode 0600, or 0640
// with a group that the monitor's service gets (systemd: SupplementaryGroups=hb-keys), as
// Debian does for TLS keys with ssl-cert. Problems carry the config's line and column.

import { createSecretKey, type KeyObject } from "node:crypto";
import { readFile, stat } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { formatProblem, parseConfig, type Config, type ConfigProblem, type KeySpec } from "./config.js";
import { HbError } from "./errors.js";

export const MIN_KEY_BYTES = 16;

export type Keyring = ReadonlyMap<string, KeyObject>;

export interface LoadedConfig {
  config: Config;
  keyring: Keyring;
  /** Things that work but should not be left so, as file:line:col: message. */
  warnings?: readonly string[];
}

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

async function loadKey(spec: KeySpec, base: string): Promise<KeyObject | ConfigProblem> {
  try {
    return createSecretKey(await readKeyFile(resolve(base, spec.path)));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const message = code === "ENOENT" ? `${spec.path}: no such file` : (err as Error).message;
    return { line: spec.line, col: spec.col, message: `key ${spec.id}: ${message}` };
  }
}

/** The text of a config file; a missing or unreadable file is HB_ERR_CONFIG_NOT_FOUND (exit 66). */
export async function readConfigText(path: string): Promise<string> {
  try {
    return await readFile(path, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new HbError("HB_ERR_CONFIG_NOT_FOUND", `cannot read config ${path}: ${code}`, { cause: err });
  }
}

export async function loadConfig(path: string): Promise<LoadedConfig> {
  const text = await readConfigText(path);
  const parsed = parseConfig(text, path);
  if (!parsed.ok) throw configError(path, parsed.problems);
  const keyring = new Map<string, KeyObject>();
  const problems: ConfigProblem[] = [];
  for (const spec of parsed.config.keys) {
    const key = await loadKey(spec, dirname(path));
    if ("message" in key) problems.push(key);
    else keyring.set(spec.id, key);
  }
  if (problems.length > 0) throw configError(path, problems);
  return { config: parsed.config, keyring, warnings: parsed.warnings.map((w) => formatProblem(path, w)) };
}

function configError(path: string, problems: readonly ConfigProblem[]): HbError {
  const details = problems.map((p) => formatProblem(path, p));
  return new HbError("HB_ERR_CONFIG", `${path}: ${problems.length} problem(s)`, { details });
}
