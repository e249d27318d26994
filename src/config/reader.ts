// Reading values out of a YAML document with their positions: every problem found is recorded
// with its line and column, and reading goes on, so that a config's problems are reported all
// at once. config/parse.ts decides what the values mean.

import { isMap, isScalar, isSeq, type LineCounter, type Node, type Pair } from "yaml";
import { formatDuration, parseDuration } from "../duration.js";
import { formatSize, parseSize } from "../size.js";
import { parseHostPort, type HostPort } from "../wire/address.js";
import type { ConfigProblem, PhiSpec, Thresholds } from "./types.js";

export { formatSize };

export interface PartialThresholds {
  interval?: number;
  timeout?: number;
  late?: number;
  /** `detector:` as written at this level: a φ detector's settings, or null for `kind: fixed`. */
  phi?: PhiSpec | null;
}

export class Reader {
  readonly problems: ConfigProblem[] = [];
  constructor(
    private readonly text: string,
    private readonly lines: LineCounter,
  ) {}

  report(at: Node | null | undefined, message: string): void {
    this.problems.push({ ...this.position(at), message });
  }

  /** Where a node is written (1-based line and column). */
  position(at: Node | null | undefined): { line: number; col: number } {
    const pos = this.lines.linePos(at?.range?.[0] ?? 0);
    return { line: pos.line, col: pos.col };
  }

  /**
   * The pairs of a mapping, with each key's text; reports non-mappings, unknown keys and keys
   * given twice. Read each mapping once: a second read would report its problems again.
   */
  pairs(value: unknown, at: Node | null, what: string, allowed?: readonly string[]): [string, Pair][] {
    if (value == null || (isScalar(value) && value.value == null)) return [];
    if (!isMap(value)) {
      this.report((value as Node | null) ?? at, `${what} must be a mapping`);
      return [];
    }
    const out: [string, Pair][] = [];
    // yaml's own uniqueKeys check compares every pair with every other: 100 000 nodes took
    // minutes. A set per mapping finds the same duplicates in one pass.
    const seen = value.items.length > 1 ? new Set<string>() : null;
    for (const pair of value.items) {
      const key = pair.key as Node | null;
      if (!isScalar(key) || (typeof key.value !== "string" && typeof key.value !== "number")) {
        this.report(key, `${what}: keys must be plain names`);
        continue;
      }
      // An unquoted 007 parses as the number 7; the node id is what the operator wrote.
      const name = typeof key.value === "number" ? this.text.slice(key.range![0], key.range![1]) : key.value;
      if (seen !== null) {
        if (seen.has(name)) {
          this.report(key, `duplicate key ${quote(name)} in ${what}: map keys must be unique`);
          continue;
        }
        seen.add(name);
      }
      if (allowed !== undefined && !allowed.includes(name)) {
        this.report(key, `unknown key ${quote(name)} in ${what} (expected one of: ${allowed.join(", ")})`);
        continue;
      }
      out.push([name, pair]);
    }
    return out;
  }

  string(pair: Pair, name: string): string | undefined {
    const value = pair.value as Node | null;
    if (isScalar(value) && typeof value.value === "string") return value.value;
    this.report(value ?? (pair.key as Node), `${name} must be a string`);
    return undefined;
  }

  oneOf<T extends string>(pair: Pair, name: string, choices: readonly T[]): T | undefined {
    const value = pair.value as Node | null;
    // YAML reads a bare `off` as a string, but `no`/`false` as booleans: accept `false` for off.
    if (isScalar(value) && value.value === false && choices.includes("off" as T)) return "off" as T;
    const text = isScalar(value) ? value.value : undefined;
    if (typeof text === "string" && choices.includes(text as T)) return text as T;
    this.report(value ?? (pair.key as Node), `${name} must be one of: ${choices.join(", ")}`);
    return undefined;
  }

  /** Whole milliseconds, more than 0 (or 0 too, with `allowZero`). */
  duration(pair: Pair, name: string, allowZero = false): number | undefined {
    const value = pair.value as Node | null;
    const text = isScalar(value) ? value.value : undefined;
    if (typeof text !== "string") {
      this.report(
        value ?? (pair.key as Node),
        `${name} must be a duration with a unit, e.g. "1s" or "250ms"`,
      );
      return undefined;
    }
    const ms = parseDuration(text);
    if (ms === undefined || (ms === 0 && !allowZero)) {
      this.report(
        value,
        allowZero
          ? `${name}: "${text}" is not a duration (e.g. 0s, 250ms, 1s, 1.5s, 2m)`
          : `${name}: "${text}" is not a positive duration (e.g. 250ms, 1s, 1.5s, 2m)`,
      );
      return undefined;
    }
    return ms;
  }

  integer(pair: Pair, name: string, min: number, max = Number.MAX_SAFE_INTEGER): number | undefined {
    const value = pair.value as Node | null;
    if (
      isScalar(value) &&
      typeof value.value === "number" &&
      Number.isSafeInteger(value.value) &&
      value.value >= min &&
      value.value <= max
    ) {
      return value.value;
    }
    this.report(
      value ?? (pair.key as Node),
      max === Number.MAX_SAFE_INTEGER
        ? `${name} must be a whole number of at least ${min}`
        : `${name} must be a whole number from ${min} to ${max}`,
    );
    return undefined;
  }

  /** A number as YAML reads one (8, 0.5, 1e3), not a string or .inf. */
  number(pair: Pair, name: string): number | undefined {
    const value = pair.value as Node | null;
    if (isScalar(value) && typeof value.value === "number" && Number.isFinite(value.value))
      return value.value;
    this.report(value ?? (pair.key as Node), `${name} must be a number`);
    return undefined;
  }

  size(pair: Pair, name: string): number | undefined {
    const value = pair.value as Node | null;
    const bytes = isScalar(value) ? parseSize(String(value.value)) : undefined;
    if (bytes === undefined)
      this.report(value ?? (pair.key as Node), `${name} must be a size such as 8MiB, 512KiB or 1048576`);
    return bytes;
  }

  idList(pair: Pair, name: string): { id: string; at: Node }[] {
    const value = pair.value as Node | null;
    if (!isSeq(value)) {
      this.report(value ?? (pair.key as Node), `${name} must be a list of key ids, e.g. [k1, k2]`);
      return [];
    }
    return value.items.map((item) => ({ id: isScalar(item) ? String(item.value) : "", at: item as Node }));
  }

  /**
   * The items of a list of names, each as written (an unquoted 007 is "007", as a node id is);
   * reports a value that is not a list and an item that is not a name.
   */
  nameList(pair: Pair, name: string, example: string): { name: string; at: Node }[] {
    const value = pair.value as Node | null;
    if (!isSeq(value)) {
      this.report(value ?? (pair.key as Node), `${name} must be a list, e.g. ${example}`);
      return [];
    }
    const out: { name: string; at: Node }[] = [];
    for (const item of value.items as (Node | null)[]) {
      if (isScalar(item) && typeof item.value === "number")
        out.push({ name: this.text.slice(item.range![0], item.range![1]), at: item });
      else if (isScalar(item) && typeof item.value === "string" && item.value !== "")
        out.push({ name: item.value, at: item });
      else this.report(item ?? value, `${name} must be a list of names, e.g. ${example}`);
    }
    return out;
  }

  address(pair: Pair, name: string, allowOff: boolean): HostPort | null | undefined {
    const value = pair.value as Node | null;
    if (allowOff && isScalar(value) && (value.value === "off" || value.value === false)) return null;
    const text = this.string(pair, name);
    if (text === undefined) return undefined;
    const parsed = parseHostPort(text, { allowNames: false });
    if (typeof parsed === "string") {
      this.report(value, `${name}: ${parsed}`);
      return undefined;
    }
    return parsed;
  }

  /** Reads one of interval, timeout, late into `out`. */
  threshold(out: PartialThresholds, name: "interval" | "timeout" | "late", pair: Pair, what: string): void {
    const ms = this.duration(pair, `${what}.${name}`);
    if (ms !== undefined) out[name] = ms;
  }

  /** Checks the rules that involve a value set at this level (inherited ones were checked there). */
  checkThresholds(t: Thresholds, own: PartialThresholds | null, at: Node | null, what: string): void {
    const setsTimeoutRule = own === null || own.interval !== undefined || own.timeout !== undefined;
    const setsLateRule = setsTimeoutRule || own.late !== undefined;
    if (setsTimeoutRule && t.timeoutMs <= 2 * t.intervalMs) {
      this.report(
        at,
        `${what}: timeout (${formatDuration(t.timeoutMs)}) must be more than 2 x interval (${formatDuration(t.intervalMs)})`,
      );
    }
    if (setsLateRule && t.lateMs >= t.timeoutMs) {
      this.report(
        at,
        `${what}: late (${formatDuration(t.lateMs)}) must be less than timeout (${formatDuration(t.timeoutMs)})`,
      );
    }
  }
}

/** A name as it goes into a message: quoted, with control characters escaped (binary input). */
export function quote(name: string): string {
  return JSON.stringify(name);
}
