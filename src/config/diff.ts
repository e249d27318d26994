// What changed between two configs, as short lines for `config.reloaded` events and `hb reload`,
// so that an operator sees exactly what a reload did. The diff walks the fields of Config and of
// each node rather than a list of them, so that a key added to the config is in the diff too;
// values are shown as they are written (durations, sizes, addresses, key lists).

import { formatDuration } from "../duration.js";
import { finish, type Sliced } from "../slices.js";
import { formatSize } from "./reader.js";
import {
  formatDetector,
  formatStatusAddress,
  type Config,
  type PhiSpec,
  type StatusAddress,
} from "./types.js";

/** Where a key is written in the file is not what it configures. */
const POSITION_FIELDS: ReadonlySet<string> = new Set(["line", "col"]);
/** Derived from other fields, whose changes are listed (a parent's children: the nodes' parents). */
const DERIVED_FIELDS: ReadonlySet<string> = new Set(["children"]);
/** What tells the items of a collection apart, named in each line rather than among the fields. */
const ITEM_KEYS: ReadonlySet<string> = new Set(["id", "name"]);
/** Read once, when the monitor starts. */
const RESTART_FIELDS: ReadonlySet<string> = new Set(["listen", "status", "receiveBufferBytes"]);
/** How a null reads, where it means something other than "none". */
const NULL_READS: Readonly<Record<string, string>> = { status: "off", keys: "any" };
/** Fields not named after the key they come from. */
const FIELD_KEYS: Readonly<Record<string, string>> = { phi: "detector" };
/** Fields that hold URLs, shown without their path (see redactUrl). */
const URL_FIELDS: ReadonlySet<string> = new Set(["url", "urls", "generatorUrl"]);
/** Fields shown in part (URLs, a hook's arguments), so compared as written. */
const SECRET_FIELDS: ReadonlySet<string> = new Set([...URL_FIELDS, "argv"]);
/** Lines per collection (nodes, keys): a reload that adds 100 000 nodes says so in one event. */
const MAX_ITEM_LINES = 100;
/** Items compared between two points where the walk may pause (see slices.ts). */
const ITEMS_PER_STEP = 1024;

/** The config key a field comes from: startupGraceMs -> startup_grace. */
export function configKey(field: string): string {
  return (
    FIELD_KEYS[field] ??
    field.replace(/(?<=.)(Ms|Bytes)$/, "").replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)
  );
}

type Fields = Readonly<Record<string, unknown>>;

function isRecord(value: unknown): value is Fields {
  return typeof value === "object" && value !== null && !Array.isArray(value) && !(value instanceof Set);
}

function isAddress(value: Fields): boolean {
  return ("host" in value && "port" in value) || "path" in value;
}

/** A collection whose items are told apart by id: the nodes (a Map) and the keys (a list). */
function asCollection(value: unknown): Map<string, Fields> | null {
  if (value instanceof Map) return value as Map<string, Fields>;
  if (Array.isArray(value) && value.every((item) => isRecord(item) && typeof item.id === "string")) {
    return new Map((value as Fields[]).map((item) => [item.id as string, item]));
  }
  // Notify outputs are told apart by name (an empty list has nothing to tell apart).
  if (Array.isArray(value) && value.every((item) => isRecord(item) && typeof item.name === "string")) {
    return new Map((value as Fields[]).map((item) => [item.name as string, item]));
  }
  return null;
}

/** A list of named items (notify outputs, maintenance windows) inside a section, by name. */
function asNamed(value: unknown): Map<string, Fields> | null {
  if (!Array.isArray(value) || !value.every((item) => isRecord(item) && typeof item.name === "string"))
    return null;
  return new Map((value as Fields[]).map((item) => [item.name as string, item]));
}

/** A URL as the journal may show it: a webhook's path or query often holds its secret token. */
function redactUrl(text: string): string {
  try {
    const url = new URL(text);
    return url.pathname === "/" && url.search === "" ? url.origin : `${url.origin}/…`;
  } catch {
    return "…";
  }
}

function show(field: string, value: unknown): string {
  if (field === "phi") return formatDetector(value as PhiSpec | null);
  if (value === null || value === undefined) return NULL_READS[field] ?? "none";
  if (URL_FIELDS.has(field)) {
    const urls = (Array.isArray(value) ? value : [value]) as unknown[];
    return urls.map((url) => redactUrl(String(url))).join(",");
  }
  // A hook's arguments may hold a token: the hook is named, its arguments are not.
  if (field === "argv" && Array.isArray(value))
    return value.length > 1 ? `${String(value[0])} …` : String(value[0] ?? "none");
  if (typeof value === "number") {
    if (field.endsWith("Ms")) return formatDuration(value);
    if (field.endsWith("Bytes")) return formatSize(value);
    return String(value);
  }
  if (field === "labels" && isRecord(value))
    return Object.entries(value)
      .map(([name, label]) => `${name}=${String(label)}`)
      .join(",");
  if (value instanceof Set) return [...(value as Set<unknown>)].map(String).sort().join(",") || "none";
  if (Array.isArray(value)) return value.map((item) => show(field, item)).join(",") || "none";
  if (isRecord(value)) {
    if (isAddress(value)) return formatStatusAddress(value as unknown as StatusAddress);
    return describe(value);
  }
  return typeof value === "string" ? value : String(JSON.stringify(value));
}

function same(field: string, a: unknown, b: unknown): boolean {
  if (a === b) return true;
  // What is shown of these hides secrets: compare what is written.
  if (SECRET_FIELDS.has(field)) return JSON.stringify(a) === JSON.stringify(b);
  // Numbers, strings and booleans: equal or not, whatever their spelling (the common case).
  if (typeof a !== "object" && typeof b !== "object") return a == null && b == null;
  if (a instanceof Set && b instanceof Set) return a.size === b.size && [...a].every((x) => b.has(x));
  return show(field, a) === show(field, b);
}

/** "interval 1s, timeout 10s, late 5s, paused": an item that was added (unset fields left out). */
function describe(item: Fields): string {
  const out: string[] = [];
  for (const f in item) {
    const value = item[f];
    if (ITEM_KEYS.has(f) || POSITION_FIELDS.has(f) || value === null || value === false) continue;
    if (Array.isArray(value) && value.length === 0) continue;
    out.push(value === true ? configKey(f) : `${configKey(f)} ${show(f, value)}`);
  }
  return out.join(", ");
}

/** Whether any field differs, without spelling anything out. */
function differs(before: Fields, after: Fields): boolean {
  for (const f in after)
    if (f !== "id" && !POSITION_FIELDS.has(f) && !same(f, before[f], after[f])) return true;
  for (const f in before) if (!(f in after) && !POSITION_FIELDS.has(f)) return true;
  return false;
}

/** "interval 1s -> 2s, late 5s -> 10s": the fields that differ, or "" when none does. */
function changedFields(before: Fields, after: Fields): string {
  // Called for every node of a reload: nothing is allocated unless something differs.
  let out: string[] | null = null;
  const compare = (f: string): void => {
    if (f === "id" || POSITION_FIELDS.has(f) || same(f, before[f], after[f])) return;
    (out ??= []).push(`${configKey(f)} ${show(f, before[f])} -> ${show(f, after[f])}`);
  };
  for (const f in after) compare(f);
  for (const f in before) if (!(f in after)) compare(f);
  return out === null ? "" : (out as string[]).join(", ");
}

function* diffCollection(
  name: string,
  before: Map<string, Fields>,
  after: Map<string, Fields>,
  changes: string[],
): Sliced<void> {
  const counts = { added: 0, removed: 0, changed: 0 };
  let shown = 0;
  const line = (kind: keyof typeof counts, text: string): void => {
    counts[kind]++;
    if (shown++ < MAX_ITEM_LINES) changes.push(text);
  };
  const compare = (id: string, old: Fields | undefined, item: Fields): void => {
    // Past the lines shown, only counted: 100 000 changed nodes cost comparisons, not strings.
    if (shown >= MAX_ITEM_LINES) {
      if (old === undefined) counts.added++;
      else if (old !== item && differs(old, item)) counts.changed++;
      else return;
      shown++;
      return;
    }
    if (old === undefined) {
      const fields = describe(item);
      line("added", `${name}.${id}: added${fields === "" ? "" : ` (${fields})`}`);
    } else if (old !== item) {
      const diff = changedFields(old, item);
      if (diff !== "") line("changed", `${name}.${id}: ${diff}`);
    }
  };
  // A reload usually lists the same ids in the same order: walking both in step passes over
  // 100 000 of them without a lookup each, until the first place where the order differs.
  const pending = before.entries();
  let inStep = true;
  let sinceStep = 0;
  for (const [id, item] of after) {
    if (++sinceStep === ITEMS_PER_STEP) {
      sinceStep = 0;
      yield;
    }
    if (inStep) {
      const next = pending.next();
      if (!next.done && next.value[0] === id) {
        compare(id, next.value[1], item);
        continue;
      }
      inStep = false;
    }
    compare(id, before.get(id), item);
  }
  // Removed: in step, whatever `before` has left; otherwise, every id of it that `after` lacks.
  for (const [id] of inStep ? pending : before.entries()) {
    if (++sinceStep === ITEMS_PER_STEP) {
      sinceStep = 0;
      yield;
    }
    if (inStep || !after.has(id)) line("removed", `${name}.${id}: removed`);
  }
  if (shown > MAX_ITEM_LINES) {
    changes.push(
      `${name}: ${shown - MAX_ITEM_LINES} more changes not listed (${counts.added} added, ${counts.removed} removed, ${counts.changed} changed in all)`,
    );
  }
}

/**
 * A section (`maintenance`, `cluster`): its plain fields in one line, `maintenance: max_duration
 * 7d -> 1d`, and each list of named items in it as a collection, `maintenance.windows.NAME: ...`.
 */
function* diffSection(key: string, before: Fields, after: Fields, changes: string[]): Sliced<void> {
  const plain: string[] = [];
  const lists: [string, Map<string, Fields>, Map<string, Fields>][] = [];
  for (const f of new Set([...Object.keys(before), ...Object.keys(after)])) {
    if (POSITION_FIELDS.has(f)) continue;
    const was = asNamed(before[f]);
    const is = asNamed(after[f]);
    if (was !== null && is !== null) lists.push([f, was, is]);
    else if (!same(f, before[f], after[f]))
      plain.push(`${configKey(f)} ${show(f, before[f])} -> ${show(f, after[f])}`);
  }
  if (plain.length > 0) changes.push(`${key}: ${plain.join(", ")}`);
  for (const [f, was, is] of lists) yield* diffCollection(`${key}.${configKey(f)}`, was, is, changes);
}

export function diffConfigs(before: Config, after: Config): string[] {
  return finish(diffSteps(before, after));
}

/** diffConfigs, pausing every thousand nodes or so (the configs are frozen: nothing moves). */
export function* diffSteps(before: Config, after: Config): Sliced<string[]> {
  const changes: string[] = [];
  const a = before as unknown as Fields;
  const b = after as unknown as Fields;
  for (const field of new Set([...Object.keys(a), ...Object.keys(b)])) {
    if (DERIVED_FIELDS.has(field)) continue;
    const key = configKey(field);
    const was = asCollection(a[field]);
    const is = asCollection(b[field]);
    if (was !== null && is !== null) {
      yield* diffCollection(key, was, is, changes);
    } else if (isRecord(a[field]) && isRecord(b[field]) && !isAddress(a[field]) && !isAddress(b[field])) {
      yield* diffSection(key, a[field], b[field], changes);
    } else if (!same(field, a[field], b[field])) {
      const note = RESTART_FIELDS.has(field) ? " (takes effect on restart)" : "";
      changes.push(`${key}: ${show(field, a[field])} -> ${show(field, b[field])}${note}`);
    }
  }
  return changes;
}
