// Reads a config file and the key files it names (see wire/key-file.ts for what a key file must
// be), and checks the hooks it would run: the I/O around the pure parser. A file that cannot be
// read is exit 66, one that reads but is not a usable config is exit 78; problems with a key file
// or a hook carry the config's line and column of the entry that names it.

import { createSecretKey, type KeyObject } from "node:crypto";
import { isUtf8 } from "node:buffer";
import { constants } from "node:fs";
import { open, stat } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { HbError } from "../errors.js";
import { readKeyFile } from "../wire/key-file.js";
import { hookFileProblem } from "./hook-file.js";
import { parseConfig, type ParseOptions } from "./parse.js";
import { formatProblem, type Config, type ConfigProblem, type KeySpec } from "./types.js";

/** Where the monitor's config is installed (`hb monitor`, `hb reload`, `hb check-config`). */
export const DEFAULT_CONFIG_PATH = "/etc/hb/heartbeat.yaml";
/** Far above any real fleet (100 000 listed nodes take about 1.3 MiB), far below a memory problem. */
export const MAX_CONFIG_BYTES = 16 * 1024 * 1024;

export type Keyring = ReadonlyMap<string, KeyObject>;

export interface LoadedConfig {
  config: Config;
  keyring: Keyring;
  /** Things that work but should not be left so, as file:line:col: message. */
  warnings?: readonly string[];
  /** Hooks that will not be run (see loadFiles), as file:line:col: message. */
  hookProblems?: readonly string[];
  /** This monitor's id in a cluster when the config leaves `cluster.self` out (--id, host name). */
  monitorId?: string;
}

const ERRNO_TEXT: Readonly<Record<string, string>> = {
  ENOENT: "no such file",
  EACCES: "permission denied",
  EPERM: "permission denied",
  EISDIR: "is a directory",
  ENOTDIR: "a component of the path is not a directory",
  ELOOP: "too many symbolic links",
  EMFILE: "too many open files",
  EIO: "input/output error",
};

function errnoText(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === undefined) return (err as Error).message;
  return `${ERRNO_TEXT[code] ?? (err as Error).message} (${code})`;
}

function mib(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

/**
 * The text of a config file. A missing or unreadable file, a directory or a device is
 * HB_ERR_CONFIG_NOT_FOUND (exit 66); a file too large, or not UTF-8 text, is HB_ERR_CONFIG (78).
 */
export async function readConfigText(path: string): Promise<string> {
  const unreadable = (why: string, cause?: unknown): HbError =>
    new HbError("HB_ERR_CONFIG_NOT_FOUND", `cannot read config ${path}: ${why}`, { cause });
  let bytes: Buffer;
  try {
    // O_NONBLOCK: a FIFO at the config's path must not hang the monitor waiting for a writer.
    const file = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
    try {
      const info = await file.stat();
      if (info.isDirectory()) throw unreadable("is a directory, not a config file");
      if (!info.isFile()) throw unreadable("not a regular file");
      if (info.size > MAX_CONFIG_BYTES) throw tooLarge(path, info.size);
      // Read up to one byte past the limit, whatever the size said: a file that grows while it is
      // read is refused all the same, and a file whose size says 0 (procfs) is still read.
      let buffer = Buffer.alloc(info.size + 1);
      let length = 0;
      for (;;) {
        if (length === buffer.length) {
          if (length > MAX_CONFIG_BYTES) throw tooLarge(path, null);
          const grown = Buffer.alloc(Math.min(2 * length + 4096, MAX_CONFIG_BYTES + 1));
          buffer.copy(grown);
          buffer = grown;
        }
        const { bytesRead } = await file.read(buffer, length, buffer.length - length, null);
        if (bytesRead === 0) break;
        length += bytesRead;
      }
      bytes = buffer.subarray(0, length);
    } finally {
      await file.close();
    }
  } catch (err) {
    if (err instanceof HbError) throw err;
    throw unreadable(errnoText(err), err);
  }
  return decodeText(path, bytes);
}

function tooLarge(path: string, size: number | null): HbError {
  const is = size === null ? `is over ${mib(MAX_CONFIG_BYTES)}` : `is ${mib(size)}`;
  return new HbError("HB_ERR_CONFIG", `config ${path} ${is}; a config is at most ${mib(MAX_CONFIG_BYTES)}`);
}

/** UTF-8 text, or one problem where it stops being text (instead of a page of YAML errors). */
function decodeText(path: string, bytes: Buffer): string {
  const text = bytes.toString("utf8");
  if (isUtf8(bytes) && !text.includes("\0")) return text;
  const nul = text.indexOf("\0");
  const replaced = text.indexOf("\uFFFD");
  const at = nul === -1 ? replaced : replaced === -1 ? nul : Math.min(nul, replaced);
  const lineStart = text.lastIndexOf("\n", at) + 1;
  let line = 1;
  for (let i = text.indexOf("\n"); i !== -1 && i < at; i = text.indexOf("\n", i + 1)) line++;
  throw configError(path, [
    {
      line,
      col: at - lineStart + 1,
      message: "not a text file: a config is UTF-8 YAML, and this looks like binary data",
    },
  ]);
}

/** The parsed config of `text`, or HB_ERR_CONFIG with every problem. */
export function parseOrThrow(
  text: string,
  path: string,
  options: ParseOptions = {},
): { config: Config; warnings: string[]; unresolved: string[] } {
  const parsed = parseConfig(text, path, options);
  if (!parsed.ok) throw configError(path, parsed.problems);
  return {
    config: parsed.config,
    warnings: parsed.warnings.map((w) => formatProblem(path, w)),
    unresolved: parsed.unresolved ?? [],
  };
}

/** Reads, parses and validates a config and its key files, on this thread. */
export async function loadConfig(path: string): Promise<LoadedConfig> {
  const { config, warnings } = parseOrThrow(await readConfigText(path), path);
  return { config, keyring: await loadFiles(config, path), warnings };
}

interface KeyProblem extends ConfigProblem {
  /** The file could not be read at all (exit 66), rather than read and found unusable (78). */
  readonly unreadable: boolean;
}

async function loadKey(spec: KeySpec, base: string): Promise<KeyObject | KeyProblem> {
  const path = resolve(base, spec.path);
  const problem = (message: string, unreadable: boolean): KeyProblem => ({
    line: spec.line,
    col: spec.col,
    message: `key ${spec.id}: ${message}`,
    unreadable,
  });
  try {
    // Only to tell "there is no key file there" (66) from "the key file is unusable" (78):
    // readKeyFile judges the file it opens.
    const info = await stat(path);
    if (info.isDirectory()) return problem(`${path}: is a directory, not a key file`, true);
    return createSecretKey(await readKeyFile(path));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== undefined) return problem(`${path}: ${errnoText(err)}`, true);
    return problem((err as Error).message, false);
  }
}

/**
 * The keys a config names, read from their files (relative paths: from the config's folder),
 * and its hooks checked (config/hook-file.ts): an unsafe hook is found when the config is
 * loaded, not when a node goes down. With `hookProblems`, hook problems are put there instead
 * of failing the load.
 */
export async function loadFiles(config: Config, path: string, hookProblems?: string[]): Promise<Keyring> {
  const keyring = new Map<string, KeyObject>();
  const problems: KeyProblem[] = [];
  for (const spec of config.keys) {
    const key = await loadKey(spec, dirname(path));
    if ("message" in key) problems.push(key);
    else keyring.set(spec.id, key);
  }
  for (const output of config.notify) {
    if (output.kind !== "exec") continue;
    const why = await hookFileProblem(output.argv[0]!);
    if (why === null) continue;
    const problem = { line: output.line, col: output.col, message: `notify.${output.name}: hook ${why}` };
    // The monitor takes a config with a bad hook (detection does not wait on notification) and
    // says so; `hb check-config` refuses it.
    if (hookProblems !== undefined) hookProblems.push(formatProblem(path, problem));
    else problems.push({ ...problem, unreadable: false });
  }
  if (problems.length === 0) return keyring;
  if (!problems.some((p) => p.unreadable)) throw configError(path, problems);
  const details = problems.map((p) => formatProblem(path, p));
  throw new HbError("HB_ERR_KEY_FILE", `${path}: cannot read ${problems.length} key file(s)`, { details });
}

export function configError(path: string, problems: readonly ConfigProblem[]): HbError {
  const details = problems.map((p) => formatProblem(path, p));
  return new HbError("HB_ERR_CONFIG", `${path}: ${problems.length} problem(s)`, { details });
}

/** At most `max` lines, the last saying how many were left out: for one event, not a flood. */
export function firstLines(lines: readonly string[], max: number): string[] {
  if (lines.length <= max) return [...lines];
  return [...lines.slice(0, max - 1), `... and ${lines.length - (max - 1)} more`];
}
