// The `maintenance:` section: how long a window made at run time (`hb maint`) may last, and the
// recurring windows, each a name, the nodes it holds (selectors), a schedule and the time zone
// that schedule is read in. Read with positions like the rest of the config; what a window does
// to notices is the policy's.

import { isMap, isScalar, isSeq, type Node, type Pair } from "yaml";
import { parseSelector } from "../selectors.js";
import { MAX_ID_BYTES, isId } from "../wire/protocol.js";
import { quote, type Reader } from "./reader.js";
import { parseSchedule } from "./schedule.js";
import { DEFAULT_MAX_MAINTENANCE_MS, type MaintenanceSpec, type RecurringWindowSpec } from "./types.js";

export const MAINTENANCE_KEYS: readonly string[] = ["max_duration", "windows"];
export const WINDOW_KEYS: readonly string[] = ["name", "match", "schedule", "timezone"];

export const NO_MAINTENANCE: MaintenanceSpec = Object.freeze({
  maxDurationMs: DEFAULT_MAX_MAINTENANCE_MS,
  windows: Object.freeze([]),
});

export function parseMaintenance(r: Reader, pair: Pair): MaintenanceSpec {
  let maxDurationMs = DEFAULT_MAX_MAINTENANCE_MS;
  let windows: readonly RecurringWindowSpec[] = NO_MAINTENANCE.windows;
  for (const [name, field] of r.pairs(pair.value, pair.key as Node, "maintenance", MAINTENANCE_KEYS)) {
    if (name === "max_duration")
      maxDurationMs = r.duration(field, "maintenance.max_duration") ?? maxDurationMs;
    else windows = parseWindows(r, field);
  }
  return Object.freeze({ maxDurationMs, windows });
}

function parseWindows(r: Reader, pair: Pair): readonly RecurringWindowSpec[] {
  const value = pair.value as Node | null;
  if (value == null || (isScalar(value) && value.value == null)) return NO_MAINTENANCE.windows;
  if (!isSeq(value)) {
    r.report(
      value,
      'maintenance.windows must be a list, e.g. - { name: patch-tuesday, match: ["web-*"], schedule: "Tue 02:00-04:00", timezone: Europe/Paris }',
    );
    return NO_MAINTENANCE.windows;
  }
  const out: RecurringWindowSpec[] = [];
  const names = new Set<string>();
  for (const [index, item] of value.items.entries()) {
    const spec = parseWindow(r, item as Node, `maintenance.windows[${index}]`);
    if (spec === undefined) continue;
    if (names.has(spec.name))
      r.report(item as Node, `maintenance.windows: two windows are named ${quote(spec.name)}`);
    names.add(spec.name);
    out.push(spec);
  }
  return Object.freeze(out);
}

function parseWindow(r: Reader, item: Node, where: string): RecurringWindowSpec | undefined {
  if (!isMap(item)) {
    r.report(item, `${where} must be a mapping with a name, match, schedule and timezone`);
    return undefined;
  }
  const fields = new Map(r.pairs(item, item, where, WINDOW_KEYS));
  const namePair = fields.get("name");
  let name = namePair === undefined ? undefined : r.string(namePair, `${where}.name`);
  if (namePair === undefined) r.report(item, `${where} needs a name`);
  else if (name !== undefined && !isId(name)) {
    r.report(
      namePair.value as Node,
      `${where}.name ${quote(name)} must be 1-${MAX_ID_BYTES} of [A-Za-z0-9._-], starting alphanumeric`,
    );
    name = undefined;
  }
  const what = name === undefined ? where : `maintenance.windows.${name}`;

  const matchPair = fields.get("match");
  const match: string[] = [];
  if (matchPair === undefined)
    r.report(item, `${what} needs match: the nodes it holds, e.g. ["web-*", "label:team=payments"]`);
  else {
    const example = '["web-*", "db-1", "label:team=payments"]';
    const listed = r.nameList(matchPair, `${what}.match`, example);
    if (isSeq(matchPair.value) && matchPair.value.items.length === 0)
      r.report(matchPair.value, `${what}.match must name at least one node, e.g. ${example}`);
    for (const { name: text, at } of listed) {
      const selector = parseSelector(text);
      if (typeof selector === "string") r.report(at, `${what}.match: ${selector}`);
      else match.push(text);
    }
  }

  const schedulePair = fields.get("schedule");
  const schedule = schedulePair === undefined ? undefined : r.string(schedulePair, `${what}.schedule`);
  if (schedulePair === undefined) r.report(item, `${what} needs a schedule, e.g. "Tue 02:00-04:00"`);
  else if (schedule !== undefined) {
    const parsed = parseSchedule(schedule);
    if (typeof parsed === "string") r.report(schedulePair.value as Node, `${what}.schedule: ${parsed}`);
  }

  const zonePair = fields.get("timezone");
  const timezone = zonePair === undefined ? undefined : r.string(zonePair, `${what}.timezone`);
  if (zonePair === undefined)
    r.report(
      item,
      `${what}: timezone is required: a window's schedule is read in an explicit timezone, e.g. Europe/Paris or UTC`,
    );
  else if (timezone !== undefined && !isTimeZone(timezone))
    r.report(
      zonePair.value as Node,
      `${what}.timezone: ${quote(timezone)} is not a time zone (an IANA name such as Europe/Paris, or UTC)`,
    );

  if (name === undefined || schedule === undefined || timezone === undefined) return undefined;
  return Object.freeze({
    name,
    match: Object.freeze(match),
    schedule,
    timezone,
    ...r.position(item),
  });
}

function isTimeZone(name: string): boolean {
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: name });
    return true;
  } catch {
    return false;
  }
}
