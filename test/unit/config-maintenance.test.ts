// `maintenance:`: the bound on windows made with `hb maint`, and the recurring windows, each with
// its selectors, schedule and time zone checked, every problem at its line and column.
import { describe, expect, it } from "vitest";
import { parseDuration, formatDuration } from "../../src/duration.js";
import { ok, problems } from "../support/config-parse.js";

const DAY_MS = 86_400_000;

describe("maintenance", () => {
  it("lets hb maint windows last 7 days and has no recurring window, unless told otherwise", () => {
    for (const text of ["", "maintenance:", "maintenance: {}", "maintenance: { windows: [] }"])
      expect(ok(text).maintenance, text).toEqual({ maxDurationMs: 7 * DAY_MS, windows: [] });
    expect(ok("maintenance: { max_duration: 12h }").maintenance.maxDurationMs).toBe(12 * 3_600_000);
  });

  it("reads recurring windows with where each is written, the schedule and selectors as written", () => {
    const c = ok(
      [
        "maintenance:", //                                                     1
        "  max_duration: 2d", //                                               2
        "  windows:", //                                                       3
        '    - { name: patch-tuesday, match: ["web-*", "label:team=payments"], schedule: "Tue 02:00-04:00", timezone: Europe/Paris }',
        "    - name: nightly", //                                              5
        "      match: [db-1, 007]", //                                         6
        "      schedule: Mon-Fri 23:30-00:30", //                              7
        "      timezone: UTC", //                                              8
      ].join("\n"),
    );
    expect(c.maintenance).toEqual({
      maxDurationMs: 2 * DAY_MS,
      windows: [
        {
          name: "patch-tuesday",
          match: ["web-*", "label:team=payments"],
          schedule: "Tue 02:00-04:00",
          timezone: "Europe/Paris",
          line: 4,
          col: 7,
        },
        {
          name: "nightly",
          match: ["db-1", "007"],
          schedule: "Mon-Fri 23:30-00:30",
          timezone: "UTC",
          line: 5,
          col: 7,
        },
      ],
    });
    expect(Object.isFrozen(c.maintenance)).toBe(true);
    expect(Object.isFrozen(c.maintenance.windows)).toBe(true);
    expect(Object.isFrozen(c.maintenance.windows[0])).toBe(true);
    expect(Object.isFrozen(c.maintenance.windows[0]!.match)).toBe(true);
  });

  it("reports every mistake with file:line:col", () => {
    expect(
      problems(
        [
          "maintenance:", //                                                                            1
          "  max_duration: 0s", //                                                                      2
          "  windows:", //                                                                              3
          "    - { name: a, match: [web-*], schedule: 'Tue 02:00-04:00', timezone: UTC, comment: x }", // 4
          "    - { name: 'bad name', match: [web-*], schedule: 'Tue 02:00-04:00', timezone: UTC }", //    5
          "    - { match: ['we b', 'label:team'], schedule: 'Tue 02:00-04:00', timezone: UTC }", //       6
          "    - { name: c, match: [], schedule: 'Tue 2:00-4:00', timezone: UTC }", //                    7
          "    - { name: d, match: [x], schedule: 'Tue 02:00-04:00' }", //                                8
          "    - { name: e, match: [x], schedule: 'Tue 02:00-04:00', timezone: Mars/Olympus }", //        9
          "    - { name: a, match: [x], schedule: 'Tue 02:00-04:00', timezone: UTC }", //                 10
          "    - { name: f }", //                                                                         11
          "    - just a string", //                                                                       12
          "  other: 1", //                                                                                13
        ].join("\n"),
      ),
    ).toEqual([
      'hb.yaml:2:17: maintenance.max_duration: "0s" is not a positive duration (e.g. 250ms, 1s, 1.5s, 2m)',
      'hb.yaml:4:78: unknown key "comment" in maintenance.windows[0] (expected one of: name, match, schedule, timezone)',
      'hb.yaml:5:15: maintenance.windows[1].name "bad name" must be 1-64 of [A-Za-z0-9._-], starting alphanumeric',
      "hb.yaml:6:7: maintenance.windows[2] needs a name",
      'hb.yaml:6:17: maintenance.windows[2].match: "we b" is not a node id, glob or label:KEY=VALUE',
      'hb.yaml:6:25: maintenance.windows[2].match: "label:team" is not label:KEY=VALUE (both KEY and VALUE non-empty)',
      'hb.yaml:7:25: maintenance.windows.c.match must name at least one node, e.g. ["web-*", "db-1", "label:team=payments"]',
      expect.stringMatching(
        /^hb\.yaml:7:39: maintenance\.windows\.c\.schedule: "Tue 2:00-4:00": "2:00" is not a time of day .*; a schedule is DAYS HH:MM-HH:MM.* e\.g\. "Tue 02:00-04:00"$/,
      ),
      "hb.yaml:8:7: maintenance.windows.d: timezone is required: a window's schedule is read in an explicit timezone, e.g. Europe/Paris or UTC",
      'hb.yaml:9:69: maintenance.windows.e.timezone: "Mars/Olympus" is not a time zone (an IANA name such as Europe/Paris, or UTC)',
      'hb.yaml:10:7: maintenance.windows: two windows are named "a"',
      'hb.yaml:11:7: maintenance.windows.f needs match: the nodes it holds, e.g. ["web-*", "label:team=payments"]',
      'hb.yaml:11:7: maintenance.windows.f needs a schedule, e.g. "Tue 02:00-04:00"',
      "hb.yaml:11:7: maintenance.windows.f: timezone is required: a window's schedule is read in an explicit timezone, e.g. Europe/Paris or UTC",
      "hb.yaml:12:7: maintenance.windows[8] must be a mapping with a name, match, schedule and timezone",
      'hb.yaml:13:3: unknown key "other" in maintenance (expected one of: max_duration, windows)',
    ]);
  });

  it("refuses windows that are not a list, and a maintenance that is not a mapping", () => {
    expect(problems("maintenance: { windows: { a: 1 } }")).toEqual([
      expect.stringMatching(/^hb\.yaml:1:25: maintenance\.windows must be a list, e\.g\. /),
    ]);
    expect(problems("maintenance: 7d")).toEqual(["hb.yaml:1:14: maintenance must be a mapping"]);
  });

  it("takes time zone names as Intl knows them, UTC included", () => {
    const window = (zone: string) =>
      `maintenance: { windows: [{ name: w, match: ["*"], schedule: "daily 01:00-02:00", timezone: ${zone} }] }`;
    for (const zone of ["UTC", "Europe/Paris", "America/Argentina/Buenos_Aires", "Etc/GMT-3"])
      expect(ok(window(zone)).maintenance.windows[0]!.timezone).toBe(zone);
    expect(problems(window("'Europe/Pariss'"))).toHaveLength(1);
    expect(problems(window("''"))).toHaveLength(1);
  });
});

describe("durations in days", () => {
  it("are read and written with d, here and in every other duration of the config", () => {
    expect(parseDuration("7d")).toBe(7 * DAY_MS);
    expect(parseDuration("1.5d")).toBe(36 * 3_600_000);
    expect(formatDuration(7 * DAY_MS)).toBe("7d");
    expect(formatDuration(36 * 3_600_000)).toBe("36h");
    expect(ok("forget_after: 2d").forgetAfterMs).toBe(2 * DAY_MS);
  });
});
