// The manual pages (roff, in docs/man/) hold exactly what the code defines: every command and
// every flag, the HB_* environment variables, every config key, every event, every exit code;
// and rendered as the package renders them, they pass mandoc's lint.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { MAN_PAGES, renderPage } from "../../docs/man/render.js";
import { COMMANDS } from "../../src/cli/main.js";
import { CONFIG_KEYS } from "../../src/config/parse.js";
import { ErrorCode, ExitCode } from "../../src/errors.js";
import { EVENT_LEVELS } from "../../src/events.js";
import { VERSION } from "../../src/version.js";

const root = fileURLToPath(new URL("../..", import.meta.url));
const page = (name: string): string => readFileSync(join(root, "docs/man", name), "utf8");

/** roff text to plain words: `\-` is a hyphen, `\e` a backslash; quotes and fonts dropped. */
const plain = (text: string): string =>
  text
    .replace(/\\-/g, "-")
    .replace(/\\e/g, "\\")
    .replace(/\\f[BIRP]/g, "")
    .replace(/"/g, "");

/** The text of `.SH NAME` (or `.SS "NAME"`), up to the next heading of that level or above. */
function section(text: string, macro: "SH" | "SS", name: string): string {
  const lines = text.split("\n");
  const start = lines.findIndex((l) => l === `.${macro} ${name}` || l === `.${macro} "${name}"`);
  if (start < 0) throw new Error(`no .${macro} ${name}`);
  const stops = macro === "SH" ? /^\.SH / : /^\.S[HS] /;
  const end = lines.findIndex((l, i) => i > start && stops.test(l));
  return lines.slice(start + 1, end < 0 ? undefined : end).join("\n");
}

/** The first word of each `.TP` tag in a text. */
function tags(text: string): string[] {
  return [...text.matchAll(/^\.TP\n\.[A-Z]{1,2} (\S+)/gm)].map((m) => plain(m[1]!));
}

/** Every HB_* environment variable the commands read. */
function commandVariables(): string[] {
  const names = new Set<string>();
  for (const dir of ["src/cli", "src/bin"]) {
    for (const file of readdirSync(join(root, dir))) {
      const text = readFileSync(join(root, dir, file), "utf8");
      for (const m of text.matchAll(/"(HB_[A-Z_]+)"|env\.(HB_[A-Z_]+)/g)) names.add((m[1] ?? m[2])!);
    }
  }
  return [...names].filter((n) => !n.startsWith("HB_ERR_")).sort();
}

describe("hb(1)", () => {
  const text = page("hb.1");

  it("has the sections of a command's manual page", () => {
    for (const name of [
      "NAME",
      "SYNOPSIS",
      "DESCRIPTION",
      "COMMANDS",
      "ENVIRONMENT",
      "FILES",
      "EXIT STATUS",
      "EXAMPLES",
      "SEE ALSO",
    ])
      expect(() => section(text, "SH", name), name).not.toThrow();
  });

  it("documents every command, and exactly the flags each takes", async () => {
    const commands = section(text, "SH", "COMMANDS");
    const listed = [...commands.matchAll(/^\.SS "hb ([a-z-]+)"$/gm)].map((m) => m[1]);
    expect(listed.sort()).toEqual(Object.keys(COMMANDS).sort());
    for (const [name, entry] of Object.entries(COMMANDS)) {
      const { flags } = await entry.load();
      const documented = tags(section(text, "SS", `hb ${name}`)).filter((t) => t.startsWith("--"));
      expect(documented.sort(), `hb ${name}`).toEqual(
        Object.keys(flags)
          .map((f) => `--${f}`)
          .sort(),
      );
    }
  });

  it("lists every HB_* variable the commands read", () => {
    const listed = tags(section(text, "SH", "ENVIRONMENT")).filter((t) => t.startsWith("HB_"));
    expect(listed.sort()).toEqual(commandVariables());
  });

  it("lists exactly the exit codes, and names every error code", () => {
    const exit = section(text, "SH", "EXIT STATUS");
    expect(
      tags(exit)
        .map(Number)
        .sort((a, b) => a - b),
    ).toEqual([...new Set(Object.values(ExitCode))].sort((a, b) => a - b));
    for (const code of Object.keys(ErrorCode)) expect(plain(exit)).toContain(code);
  });
});

describe("heartbeat.yaml(5)", () => {
  const text = page("heartbeat.yaml.5");

  it("documents exactly the keys the config reader accepts, each with its default", () => {
    const keys = section(text, "SH", "KEYS");
    expect(tags(keys).sort()).toEqual([...CONFIG_KEYS].sort());
    const entries = keys.split(/^\.TP\n/m).slice(1);
    for (const entry of entries) expect(entry, entry.split("\n")[0]).toMatch(/^Default: /m);
  });
});

describe("hb-monitor(8)", () => {
  const text = page("hb-monitor.8");

  it("lists exactly the events of the registry, each with its level", () => {
    const events = section(text, "SH", "EVENTS");
    const rows = [...events.matchAll(/^\.TP\n\.BR (\S+) " \((\w+)\)"$/gm)].map((m) => [plain(m[1]!), m[2]]);
    expect(rows.map((r) => r[0]).sort()).toEqual(Object.keys(EVENT_LEVELS).sort());
    for (const [event, level] of rows)
      expect(level, event).toBe(EVENT_LEVELS[event as keyof typeof EVENT_LEVELS]);
  });

  it("names both units, the signals and the files the package installs", () => {
    const files = plain(section(text, "SH", "FILES"));
    for (const path of [
      "/lib/systemd/system/hb-monitor.service",
      "/lib/systemd/system/hb-node@.service",
      "/etc/hb/heartbeat.yaml",
      "/etc/hb/node.env",
      "/var/lib/hb/monitor",
    ])
      expect(files).toContain(path);
    const signals = tags(section(text, "SH", "SIGNALS"));
    expect(signals).toEqual(["SIGHUP", "SIGTERM"]);
  });
});

describe("rendering", () => {
  it("puts the package's version in every page's title line", () => {
    for (const name of MAN_PAGES)
      expect(renderPage(name)).toMatch(
        new RegExp(`^\\.TH \\S+ \\d \\S+ "hb ${VERSION.replace(/\./g, "\\.")}"`, "m"),
      );
  });

  it("writes the three pages with `npx tsx docs/man/render.ts OUTDIR`, and mandoc finds nothing to warn about", () => {
    const out = mkdtempSync(join(tmpdir(), "hb-man-"));
    try {
      const rendered = spawnSync("npx", ["tsx", "docs/man/render.ts", out], { cwd: root, encoding: "utf8" });
      expect(rendered.status, rendered.stderr).toBe(0);
      expect(readdirSync(out).sort()).toEqual([...MAN_PAGES].sort());
      const probe = spawnSync("mandoc", ["-V"], { encoding: "utf8" });
      if (probe.error !== undefined) {
        console.log(
          `mandoc is not installed (${probe.error.message}): the lint of the manual pages is skipped`,
        );
        return;
      }
      for (const name of MAN_PAGES) {
        const lint = spawnSync("mandoc", ["-T", "lint", "-W", "warning", join(out, name)], {
          encoding: "utf8",
        });
        expect(lint.stdout + lint.stderr, name).toBe("");
        expect(lint.status, name).toBe(0);
      }
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  }, 60_000);
});
