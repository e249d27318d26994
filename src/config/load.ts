// Reads a config file and the key files it names (see wire/key-file.ts for what a key file must
// be): the I/O around the pure parser. Problems with a key file carry the config's line and
// column of the key that names it.

import { createSecretKey, type KeyObject } from "node:crypto";
import { readFile } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { HbError } from "../errors.js";
import { readKeyFile } from "../wire/key-file.js";
import { parseConfig } from "./parse.js";
import { formatProblem, type Config, type ConfigProblem, type KeySpec } from "./types.js";

/** Where the monitor's config is installed (`hb monitor`, `hb reload`, `hb check-config`). */
export const DEFAULT_CONFIG_PATH = "/etc/hb/heartbeat.yaml";

export type Keyring = ReadonlyMap<string, KeyObject>;

export interface LoadedConfig {
  config: Config;
  keyring: Keyring;
  /** Things that work but should not be left so, as file:line:col: message. */
  warnings?: readonly string[];
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
