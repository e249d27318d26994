// The schedule of a recurring maintenance window ("Tue 02:00-04:00", "Mon-Fri 22:00-06:00"), read
// in a named time zone, and its occurrences as UTC instants. Local time is turned into UTC with
// Intl's zone data, so no dependency is needed. Where the clock jumps, a local start or end that
// does not exist (the spring-forward gap) is the first instant after the gap, and one that occurs
// twice (the fall-back hour) is the earlier of the two.

export interface Schedule {
  /** The days an occurrence starts on: 0 = Sunday .. 6 = Saturday. */
  readonly days: ReadonlySet<number>;
  /** Minutes after local midnight of the day it starts on. */
  readonly startMin: number;
  /** Past 1440 when it crosses midnight: the end is always startMin + the length. */
  readonly endMin: number;
}

export interface Occurrence {
  readonly startsAt: number;
  readonly endsAt: number;
}

const MIN_MS = 60_000;
const DAY_MS = 86_400_000;
const DAY_MIN = 1440;
const SHORT_DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];
const LONG_DAYS = ["sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"];
const FORM =
  'a schedule is DAYS HH:MM-HH:MM, DAYS being daily, a day (Mon..Sun), a range (Mon-Fri, Fri-Mon) or a list of them (Tue,Thu or Mon-Wed,Sat), e.g. "Tue 02:00-04:00"';
const TIME = /^(\d\d):(\d\d)$/;

function dayOf(name: string): number | undefined {
  const lower = name.toLowerCase();
  const i = SHORT_DAYS.indexOf(lower);
  if (i !== -1) return i;
  const j = LONG_DAYS.indexOf(lower);
  return j === -1 ? undefined : j;
}

/** Minutes after midnight; `24:00` only as an end. */
function minutesOf(text: string, end: boolean): number | string {
  const m = TIME.exec(text);
  const hours = Number(m?.[1]);
  const minutes = Number(m?.[2]);
  if (m === null || minutes > 59 || hours > 24 || (hours === 24 && (minutes !== 0 || !end)))
    return `${JSON.stringify(text)} is not a time of day (00:00 to 23:59${end ? ", or 24:00" : "; 24:00 only ends a window"})`;
  return hours * 60 + minutes;
}

function daysOf(text: string): Set<number> | string {
  if (text.toLowerCase() === "daily") return new Set([0, 1, 2, 3, 4, 5, 6]);
  const days = new Set<number>();
  for (const item of text.split(",")) {
    const ends = item.split("-");
    const named = ends.map(dayOf);
    if (ends.length > 2 || named.some((d) => d === undefined))
      return `${JSON.stringify(item)} is not a day (Mon..Sun) or a range of days (Mon-Fri)`;
    const [from, to = from] = named as number[];
    if (ends.length === 2 && from === to)
      return `${JSON.stringify(item)} is not a range: it starts and ends on one day`;
    // A range may wrap past Sunday (Fri-Mon).
    for (let d = from!; ; d = (d + 1) % 7) {
      days.add(d);
      if (d === to) break;
    }
  }
  return days;
}

/** The schedule `text` says, or what is wrong with it. */
export function parseSchedule(text: string): Schedule | string {
  const wrong = (why: string): string => `${JSON.stringify(text)}: ${why}; ${FORM}`;
  // Spaces are allowed around the list's commas and the times' dash, nowhere else.
  const tidy = text
    .trim()
    .replace(/\s*,\s*/g, ",")
    .replace(/(\d)\s*-\s*(\d)/, "$1-$2");
  const m = /^(\S+)\s+(\S+)-(\S+)$/.exec(tidy);
  if (m === null) return wrong("not days then a time range");
  const days = daysOf(m[1]!);
  if (typeof days === "string") return wrong(days);
  const startMin = minutesOf(m[2]!, false);
  if (typeof startMin === "string") return wrong(startMin);
  const end = minutesOf(m[3]!, true);
  if (typeof end === "string") return wrong(end);
  if (end === startMin) return wrong("it ends when it starts (a whole day is 00:00-24:00)");
  // An end before the start is on the next day: the window crosses midnight.
  const endMin = end > startMin ? end : end + DAY_MIN;
  return Object.freeze({ days, startMin, endMin });
}

const formats = new Map<string, Intl.DateTimeFormat>();

function formatIn(timezone: string): Intl.DateTimeFormat {
  let format = formats.get(timezone);
  if (format === undefined) {
    format = new Intl.DateTimeFormat("en-US", {
      timeZone: timezone,
      hourCycle: "h23",
      year: "numeric",
      month: "numeric",
      day: "numeric",
      hour: "numeric",
      minute: "numeric",
      second: "numeric",
    });
    formats.set(timezone, format);
  }
  return format;
}

/** The wall clock in `timezone` at instant `ms`, as milliseconds of a UTC clock showing the same. */
function wallOf(timezone: string, ms: number): number {
  const part = { year: 0, month: 1, day: 1, hour: 0, minute: 0, second: 0 };
  for (const p of formatIn(timezone).formatToParts(ms))
    if (p.type in part) part[p.type as keyof typeof part] = Number(p.value);
  const seconds = Date.UTC(part.year, part.month - 1, part.day, part.hour, part.minute, part.second);
  return seconds + (((ms % 1000) + 1000) % 1000);
}

function offsetAt(timezone: string, ms: number): number {
  return wallOf(timezone, ms) - ms;
}

/** The instant the wall clock in `timezone` shows `wall` (see the header for gaps and repeats). */
function instantOf(timezone: string, wall: number): number {
  // No zone moves its clock twice within two days: the offsets a day either side are the only two.
  const before = offsetAt(timezone, wall - DAY_MS);
  const after = offsetAt(timezone, wall + DAY_MS);
  const early = wall - before;
  const late = wall - after;
  const earlyFits = wallOf(timezone, early) === wall;
  const lateFits = wallOf(timezone, late) === wall;
  if (earlyFits && lateFits) return Math.min(early, late);
  if (earlyFits) return early;
  if (lateFits) return late;
  // In the gap: the instant the clock jumped, found to the second between the two readings.
  let lo = Math.floor(Math.min(early, late) / 1000);
  let hi = Math.ceil(Math.max(early, late) / 1000);
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (offsetAt(timezone, mid * 1000) === before) lo = mid;
    else hi = mid;
  }
  return hi * 1000;
}

/** The local calendar day of instant `ms`, counted in days from 1970-01-01. */
function dayNumberOf(timezone: string, ms: number): number {
  return Math.floor(wallOf(timezone, ms) / DAY_MS);
}

/** 1970-01-01 was a Thursday. */
function weekdayOf(dayNumber: number): number {
  return (((dayNumber + 4) % 7) + 7) % 7;
}

function occurrenceOn(s: Schedule, timezone: string, dayNumber: number): Occurrence {
  const midnight = dayNumber * DAY_MS;
  return {
    startsAt: instantOf(timezone, midnight + s.startMin * MIN_MS),
    endsAt: instantOf(timezone, midnight + s.endMin * MIN_MS),
  };
}

/** The occurrence containing wallMs (startsAt <= wallMs < endsAt), or null. */
export function occurrenceAt(s: Schedule, timezone: string, wallMs: number): Occurrence | null {
  const today = dayNumberOf(timezone, wallMs);
  // At most a day long, so it started yesterday or today; or, where the clock fell back across
  // midnight, on the day the clock has already shown once.
  for (const day of [today - 1, today, today + 1]) {
    if (!s.days.has(weekdayOf(day))) continue;
    const o = occurrenceOn(s, timezone, day);
    if (o.startsAt <= wallMs && wallMs < o.endsAt) return o;
  }
  return null;
}

/**
 * The first occurrence that starts after wallMs. One that the clock skips whole (a window inside
 * the spring-forward gap) does not occur.
 */
export function nextOccurrence(s: Schedule, timezone: string, wallMs: number): Occurrence {
  const today = dayNumberOf(timezone, wallMs);
  // A week and a day always hold a day of the schedule; the margin is for the skipped ones.
  for (let day = today; day <= today + 15; day++) {
    if (!s.days.has(weekdayOf(day))) continue;
    const o = occurrenceOn(s, timezone, day);
    if (o.startsAt > wallMs && o.endsAt > o.startsAt) return o;
  }
  throw new Error("a schedule without days has no occurrence");
}
