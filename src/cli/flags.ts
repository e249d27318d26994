// Flag parsing shared by the commands: node:util's parseArgs, with usage errors turned into
// HbError (exit 64) and every flag optionally taken from an HB_* environment variable.

import { parseArgs, type ParseArgsConfig } from "node:util";
import { parseDuration } from "../duration.js";
import { HbError } from "../errors.js";
import { parseHostPort, type HostPort } from "../wire/address.js";

type Options = NonNullable<ParseArgsConfig["options"]>;

export function parseFlags<T extends Options>(
  args: readonly string[],
  options: T,
  usage: string,
  allowPositionals = false,
): { values: Record<string, string | boolean | string[] | undefined>; positionals: string[] } {
  try {
    const parsed = parseArgs({ args: [...args], options, strict: true, allowPositionals });
    return {
      values: parsed.values,
      positionals: parsed.positionals,
    };
  } catch (err) {
    throw new HbError("HB_ERR_USAGE", `${(err as Error).message}\n\n${usage}`, { cause: err });
  }
}

export function usageError(message: string, usage: string): HbError {
  return new HbError("HB_ERR_USAGE", `${message}\n\n${usage}`);
}

export function flagOrEnv(
  value: string | boolean | string[] | undefined,
  env: Readonly<Record<string, string | undefined>>,
  name: string,
): string | undefined {
  if (typeof value === "string") return value;
  const fromEnv = env[name];
  return fromEnv === undefined || fromEnv === "" ? undefined : fromEnv;
}

/** --state-dir, else HB_STATE_DIR, else the first of systemd's StateDirectory= paths. */
export function stateDirFlag(
  value: string | boolean | string[] | undefined,
  env: Readonly<Record<string, string | undefined>>,
): string | undefined {
  return flagOrEnv(value, env, "HB_STATE_DIR") ?? env.STATE_DIRECTORY?.split(":")[0];
}

export function durationFlag(text: string, flag: string, usage: string): number {
  const ms = parseDuration(text);
  if (ms === undefined || ms <= 0)
    throw usageError(`${flag}: "${text}" is not a positive duration (e.g. 1s, 250ms)`, usage);
  return ms;
}

export function addressFlag(text: string, flag: string, usage: string, allowNames: boolean): HostPort {
  const parsed = parseHostPort(text.trim(), { allowNames });
  if (typeof parsed === "string") throw usageError(`${flag}: ${parsed}`, usage);
  return parsed;
}
