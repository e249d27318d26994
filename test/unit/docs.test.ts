// The README documents exactly what the code defines: events, error codes, exit codes.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { ErrorCode, ExitCode } from "../../src/errors.js";
import { EVENT_LEVELS } from "../../src/events.js";
import { parseConfig } from "../../src/config/parse.js";
import { REJECT_REASONS } from "../../src/monitor/admit.js";
import { HB_VARIABLES } from "../../src/notify/exec.js";

const readme = readFileSync(new URL("../../README.md", import.meta.url), "utf8");

function section(title: string): string {
  const start = readme.indexOf(`\n## ${title}\n`);
  if (start < 0) throw new Error(`README has no "## ${title}" section`);
  const end = readme.indexOf("\n## ", start + 1);
  return readme.slice(start, end < 0 ? undefined : end);
}

/** First cells of the table rows in a section. */
function firstCells(text: string): string[] {
  return [...text.matchAll(/^\| *`?([^|`]+?)`? *\|/gm)]
    .map((m) => m[1]!)
    .filter((c) => !/^(-+|event|code|state|key|command|flag|package)$/.test(c));
}

describe("README", () => {
  it("lists exactly the events of the registry, each with its level", () => {
    const rows = [...section("Events").matchAll(/^\| `([a-z.]+)` +\| (\w+) +\|/gm)].map((m) => [m[1], m[2]]);
    expect(rows.map((r) => r[0]).sort()).toEqual(Object.keys(EVENT_LEVELS).sort());
    for (const [event, level] of rows)
      expect(level, event).toBe(EVENT_LEVELS[event as keyof typeof EVENT_LEVELS]);
  });

  it("lists exactly the error codes, each with its exit code", () => {
    const rows = [...section("Error codes").matchAll(/^\| `(HB_ERR_\w+)` +\| (\d+) +\|/gm)].map((m) => [
      m[1]!,
      Number(m[2]),
    ]);
    expect(rows.map((r) => r[0]).sort()).toEqual(Object.keys(ErrorCode).sort());
    for (const [code, exit] of rows)
      expect(exit, String(code)).toBe(ErrorCode[code as keyof typeof ErrorCode]);
  });

  it("lists exactly the exit codes", () => {
    const listed = firstCells(section("Exit codes")).map(Number);
    expect(listed.sort((a, b) => a - b)).toEqual([...new Set(Object.values(ExitCode))].sort((a, b) => a - b));
  });

  it("names every rejection reason", () => {
    for (const reason of REJECT_REASONS) expect(section("Events")).toContain(`\`${reason}\``);
  });

  it("gives the two commands, setup-and-run and setup-and-test, on its first screen", () => {
    const firstScreen = readme.split("\n").slice(0, 25).join("\n");
    expect(firstScreen).toContain("npm ci && npm start");
    expect(firstScreen).toContain("npm ci && npm test");
  });
});

describe("README: notifications", () => {
  it("lists exactly the HB_* variables a hook gets", () => {
    const rows = [...section("Notifications").matchAll(/^\| `(HB_[A-Z_<>]+)` +\|/gm)].map((m) => m[1]);
    expect(rows.sort()).toEqual(Object.keys(HB_VARIABLES).sort());
  });

  it("gives a worked example of each output kind that the config reader takes", () => {
    const example = /```yaml\n([^`]*\nnotify:[\s\S]*?)```/.exec(section("Notifications"))?.[1];
    expect(example).toBeDefined();
    const parsed = parseConfig(example!, "README.md");
    expect(parsed.ok && parsed.config.notify.map((o) => o.kind)).toEqual(["exec", "webhook", "alertmanager"]);
    expect(parsed.ok && parsed.config.nodes.get("payments-1")?.labels).toEqual({
      team: "payments",
      tier: "1",
    });
  });
});

describe("README: high availability", () => {
  it("gives a two-monitor config that the config reader takes", () => {
    const example = /```yaml\n([^`]*\ncluster:[\s\S]*?)```/.exec(section("High availability"))?.[1];
    expect(example).toBeDefined();
    const parsed = parseConfig(example!, "README.md");
    expect(parsed.ok && parsed.config.cluster?.monitors.map((m) => m.id)).toEqual(["mon-a", "mon-b"]);
    expect(parsed.ok && parsed.config.auth).toBe("required");
  });
});
