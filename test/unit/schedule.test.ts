// Recurring windows' schedules: the grammar, and their occurrences as UTC instants in a named time
// zone, across both 2026 clock changes in Paris (a start in the spring-forward gap is the first
// instant after it; one in the repeated hour is the earlier), across midnight, and to 24:00.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { nextOccurrence, occurrenceAt, parseSchedule, type Schedule } from "../../src/config/schedule.js";

function schedule(text: string): Schedule {
  const s = parseSchedule(text);
  if (typeof s === "string") throw new Error(s);
  return s;
}

const at = (iso: string): number => Date.parse(iso);
const span = (from: string, to: string) => ({ startsAt: at(from), endsAt: at(to) });
const PARIS = "Europe/Paris";
const SUN = 0,
  MON = 1,
  TUE = 2,
  WED = 3,
  THU = 4,
  FRI = 5,
  SAT = 6;

describe("parseSchedule", () => {
  it("reads days, a start and an end", () => {
    expect(schedule("Tue 02:00-04:00")).toEqual({ days: new Set([TUE]), startMin: 120, endMin: 240 });
    expect(schedule("daily 00:00-24:00")).toEqual({
      days: new Set([SUN, MON, TUE, WED, THU, FRI, SAT]),
      startMin: 0,
      endMin: 1440,
    });
    expect(schedule("Mon-Fri 09:30-17:45").days).toEqual(new Set([MON, TUE, WED, THU, FRI]));
    expect(schedule("Tue,Thu 01:00-02:00").days).toEqual(new Set([TUE, THU]));
    expect(schedule("Mon-Wed,Sat 01:00-02:00").days).toEqual(new Set([MON, TUE, WED, SAT]));
  });

  it("takes day names in any case, short or full, and spaces around commas and the dash", () => {
    expect(schedule("tuesday 02:00-04:00").days).toEqual(new Set([TUE]));
    expect(schedule("MON-fri 02:00-04:00").days).toEqual(new Set([MON, TUE, WED, THU, FRI]));
    expect(schedule("Daily 02:00-04:00").days.size).toBe(7);
    expect(schedule("  Tue , Thursday  02:00 - 04:00 ")).toEqual(schedule("Tue,Thu 02:00-04:00"));
  });

  it("wraps a range past Sunday", () => {
    expect(schedule("Fri-Mon 22:00-23:00").days).toEqual(new Set([FRI, SAT, SUN, MON]));
    expect(schedule("Sat-Sun 22:00-23:00").days).toEqual(new Set([SAT, SUN]));
  });

  it("reads an end before the start as the next day's: the window crosses midnight", () => {
    expect(schedule("Fri 22:00-02:00")).toEqual({ days: new Set([FRI]), startMin: 1320, endMin: 1560 });
    expect(schedule("Mon 23:59-00:00").endMin).toBe(1440);
    expect(schedule("Mon 00:01-00:00").endMin).toBe(1440);
  });

  it.each([
    ["Tue", "not days then a time range"],
    ["02:00-04:00", "not days then a time range"],
    ["Tue 02:00", "not days then a time range"],
    ["Tues 02:00-04:00", '"Tues" is not a day'],
    ["Mon-Funday 02:00-04:00", '"Mon-Funday" is not a day'],
    ["Mon-Wed-Fri 02:00-04:00", '"Mon-Wed-Fri" is not a day'],
    ["Mon-Mon 02:00-04:00", '"Mon-Mon" is not a range'],
    ["Mon,,Tue 02:00-04:00", '"" is not a day'],
    ["daily,Mon 02:00-04:00", '"daily" is not a day'],
    ["Tue 2:00-04:00", '"2:00" is not a time of day'],
    ["Tue 02:60-04:00", '"02:60" is not a time of day'],
    ["Tue 25:00-04:00", '"25:00" is not a time of day'],
    ["Tue 24:00-04:00", "24:00 only ends a window"],
    ["Tue 02:00-24:30", '"24:30" is not a time of day'],
    ["Tue 02:00-02:00", "it ends when it starts"],
    ["Tue 00:00-00:00", "a whole day is 00:00-24:00"],
  ])("refuses %j: %s, and gives the accepted form", (text, why) => {
    const error = parseSchedule(text);
    expect(typeof error).toBe("string");
    expect(error).toContain(why);
    expect(error).toContain("a schedule is DAYS HH:MM-HH:MM");
    expect(error).toContain('e.g. "Tue 02:00-04:00"');
  });
});

describe("occurrences in UTC", () => {
  const tuesday = schedule("Tue 02:00-04:00");

  it("contains its start and not its end", () => {
    const first = span("2026-03-03T02:00:00Z", "2026-03-03T04:00:00Z"); // a Tuesday
    expect(occurrenceAt(tuesday, "UTC", at("2026-03-03T03:00:00Z"))).toEqual(first);
    expect(occurrenceAt(tuesday, "UTC", at("2026-03-03T02:00:00Z"))).toEqual(first);
    expect(occurrenceAt(tuesday, "UTC", at("2026-03-03T03:59:59.999Z"))).toEqual(first);
    expect(occurrenceAt(tuesday, "UTC", at("2026-03-03T04:00:00Z"))).toBeNull();
    expect(occurrenceAt(tuesday, "UTC", at("2026-03-03T01:59:59.999Z"))).toBeNull();
    expect(occurrenceAt(tuesday, "UTC", at("2026-03-04T03:00:00Z"))).toBeNull();
  });

  it("gives the next one that starts strictly after", () => {
    expect(nextOccurrence(tuesday, "UTC", at("2026-03-01T12:00:00Z"))).toEqual(
      span("2026-03-03T02:00:00Z", "2026-03-03T04:00:00Z"),
    );
    expect(nextOccurrence(tuesday, "UTC", at("2026-03-03T02:00:00Z"))).toEqual(
      span("2026-03-10T02:00:00Z", "2026-03-10T04:00:00Z"),
    );
  });

  it("crosses midnight into the next day, the day named being the day it starts", () => {
    const friday = schedule("Fri 22:00-02:00");
    const night = span("2026-03-06T22:00:00Z", "2026-03-07T02:00:00Z");
    expect(occurrenceAt(friday, "UTC", at("2026-03-07T01:00:00Z"))).toEqual(night); // Saturday
    expect(occurrenceAt(friday, "UTC", at("2026-03-07T02:00:00Z"))).toBeNull();
    expect(occurrenceAt(friday, "UTC", at("2026-03-06T01:00:00Z"))).toBeNull(); // Friday, before it
    expect(nextOccurrence(friday, "UTC", at("2026-03-06T12:00:00Z"))).toEqual(night);
  });

  it("ends at 24:00, the next midnight, which it does not contain", () => {
    const evening = schedule("Mon 22:00-24:00");
    expect(occurrenceAt(evening, "UTC", at("2026-03-02T23:59:00Z"))).toEqual(
      span("2026-03-02T22:00:00Z", "2026-03-03T00:00:00Z"),
    );
    expect(occurrenceAt(evening, "UTC", at("2026-03-03T00:00:00Z"))).toBeNull();
    const allDay = schedule("daily 00:00-24:00");
    expect(occurrenceAt(allDay, "UTC", at("2026-03-03T00:00:00Z"))).toEqual(
      span("2026-03-03T00:00:00Z", "2026-03-04T00:00:00Z"),
    );
    expect(nextOccurrence(allDay, "UTC", at("2026-03-03T00:00:00Z"))).toEqual(
      span("2026-03-04T00:00:00Z", "2026-03-05T00:00:00Z"),
    );
  });

  it("follows a range that wraps past Sunday", () => {
    const weekend = schedule("Fri-Mon 09:00-10:00");
    expect(nextOccurrence(weekend, "UTC", at("2026-03-03T12:00:00Z")).startsAt).toBe(
      at("2026-03-06T09:00:00Z"),
    );
    expect(nextOccurrence(weekend, "UTC", at("2026-03-06T09:00:00Z")).startsAt).toBe(
      at("2026-03-07T09:00:00Z"),
    );
    expect(nextOccurrence(weekend, "UTC", at("2026-03-08T09:00:00Z")).startsAt).toBe(
      at("2026-03-09T09:00:00Z"),
    );
    expect(nextOccurrence(weekend, "UTC", at("2026-03-09T09:00:00Z")).startsAt).toBe(
      at("2026-03-13T09:00:00Z"),
    );
    expect(occurrenceAt(weekend, "UTC", at("2026-03-10T09:30:00Z"))).toBeNull(); // Tuesday
  });
});

describe("occurrences in Europe/Paris", () => {
  it("are an hour before UTC in winter and two in summer", () => {
    const tuesday = schedule("Tue 02:00-04:00");
    expect(occurrenceAt(tuesday, PARIS, at("2026-03-03T02:00:00Z"))).toEqual(
      span("2026-03-03T01:00:00Z", "2026-03-03T03:00:00Z"),
    );
    expect(occurrenceAt(tuesday, PARIS, at("2026-06-02T01:00:00Z"))).toEqual(
      span("2026-06-02T00:00:00Z", "2026-06-02T02:00:00Z"),
    );
  });

  describe("on 29 March 2026, when 02:00 CET jumps to 03:00 CEST (01:00 UTC)", () => {
    const before = at("2026-03-28T00:00:00Z");

    it("starts a window whose start is in the gap at the first instant after it", () => {
      expect(nextOccurrence(schedule("Sun 02:30-03:30"), PARIS, before)).toEqual(
        span("2026-03-29T01:00:00Z", "2026-03-29T01:30:00Z"),
      );
    });

    it("ends a window whose end is in the gap at the first instant after it", () => {
      expect(nextOccurrence(schedule("Sun 01:30-02:30"), PARIS, before)).toEqual(
        span("2026-03-29T00:30:00Z", "2026-03-29T01:00:00Z"),
      );
    });

    it("makes a window across the change an hour shorter", () => {
      expect(nextOccurrence(schedule("Sun 01:00-04:00"), PARIS, before)).toEqual(
        span("2026-03-29T00:00:00Z", "2026-03-29T02:00:00Z"),
      );
      expect(nextOccurrence(schedule("Sat 23:00-03:00"), PARIS, before)).toEqual(
        span("2026-03-28T22:00:00Z", "2026-03-29T01:00:00Z"),
      );
    });

    it("skips a window that lies wholly in the gap: that day it does not occur", () => {
      const inGap = schedule("Sun 02:10-02:50");
      expect(nextOccurrence(inGap, PARIS, before)).toEqual(
        span("2026-04-05T00:10:00Z", "2026-04-05T00:50:00Z"),
      );
      expect(occurrenceAt(inGap, PARIS, at("2026-03-29T01:00:00Z"))).toBeNull();
    });
  });

  describe("on 25 October 2026, when 03:00 CEST falls back to 02:00 CET (01:00 UTC)", () => {
    const before = at("2026-10-24T00:00:00Z");

    it("starts a window whose start is in the repeated hour at the earlier of the two", () => {
      expect(nextOccurrence(schedule("Sun 02:30-03:30"), PARIS, before)).toEqual(
        span("2026-10-25T00:30:00Z", "2026-10-25T02:30:00Z"),
      );
    });

    it("ends a window whose end is in the repeated hour at the earlier of the two", () => {
      expect(nextOccurrence(schedule("Sun 01:00-02:30"), PARIS, before)).toEqual(
        span("2026-10-24T23:00:00Z", "2026-10-25T00:30:00Z"),
      );
    });

    it("makes a window across the change an hour longer, holding both passes of the hour", () => {
      const twice = schedule("Sun 02:00-03:00");
      const both = span("2026-10-25T00:00:00Z", "2026-10-25T02:00:00Z");
      expect(nextOccurrence(twice, PARIS, before)).toEqual(both);
      expect(occurrenceAt(twice, PARIS, at("2026-10-25T00:30:00Z"))).toEqual(both); // 02:30 CEST
      expect(occurrenceAt(twice, PARIS, at("2026-10-25T01:30:00Z"))).toEqual(both); // 02:30 CET
    });
  });
});

describe("occurrences (property-based)", () => {
  const ZONES = [
    "UTC",
    PARIS,
    "America/New_York",
    "Australia/Lord_Howe", // a half-hour change
    "America/Santiago", // changes at midnight
    "Asia/Kolkata",
    "Pacific/Chatham",
  ];
  const DAY_NAMES = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
  const hhmm = (min: number): string =>
    `${String(Math.floor(min / 60)).padStart(2, "0")}:${String(min % 60).padStart(2, "0")}`;
  const schedules = fc
    .tuple(
      fc.oneof(
        fc.constant("daily"),
        fc.uniqueArray(fc.constantFrom(...DAY_NAMES), { minLength: 1, maxLength: 7 }).map((d) => d.join(",")),
        fc
          .tuple(fc.constantFrom(...DAY_NAMES), fc.constantFrom(...DAY_NAMES))
          .filter(([a, b]) => a !== b)
          .map(([a, b]) => `${a}-${b}`),
      ),
      fc.integer({ min: 0, max: 1439 }),
      fc.integer({ min: 1, max: 1440 }),
    )
    .filter(([, start, end]) => start !== end)
    .map(([days, start, end]) => `${days} ${hhmm(start)}-${hhmm(end)}`);
  const instants = fc.integer({ min: at("2025-01-01T00:00:00Z"), max: at("2028-12-31T00:00:00Z") });

  it("an occurrence at x contains x; the next one starts after x, lasts, and is the same from any instant up to its start", () => {
    fc.assert(
      fc.property(
        schedules,
        fc.constantFrom(...ZONES),
        instants,
        fc.double({ min: 0, max: 1, noNaN: true }),
        (text, zone, x, f) => {
          const s = schedule(text);
          const o = occurrenceAt(s, zone, x);
          if (o !== null) {
            expect(o.startsAt).toBeLessThanOrEqual(x);
            expect(x).toBeLessThan(o.endsAt);
            expect(nextOccurrence(s, zone, o.startsAt - 1)).toEqual(o);
          }
          const next = nextOccurrence(s, zone, x);
          expect(next.startsAt).toBeGreaterThan(x);
          expect(next.endsAt).toBeGreaterThan(next.startsAt);
          const y = x + Math.floor(f * (next.startsAt - 1 - x));
          expect(nextOccurrence(s, zone, y)).toEqual(next);
          expect(occurrenceAt(s, zone, next.startsAt)).toEqual(next);
        },
      ),
      { numRuns: 300 },
    );
  });
});
