// The documentation holds exactly what the code defines: events, error and exit codes, rejection
// reasons, commands and their flags, config keys, the default notified events, the status
// server's routes, the source tree; and every relative link in it leads somewhere.
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { ACTIONS } from "../../src/actions.js";
import { COMMANDS } from "../../src/cli/main.js";
import { ErrorCode, ExitCode } from "../../src/errors.js";
import { EVENT_LEVELS, NOTIFY_BY_DEFAULT } from "../../src/events.js";
import { CONFIG_KEYS, parseConfig } from "../../src/config/parse.js";
import { REJECT_REASONS } from "../../src/monitor/admit.js";
import { ROUTES } from "../../src/monitor/http.js";
import { HB_VARIABLES } from "../../src/notify/exec.js";

const root = fileURLToPath(new URL("../..", import.meta.url));
const read = (path: string): string => readFileSync(join(root, path), "utf8");
const readme = read("README.md");
const docs = readdirSync(join(root, "docs"))
  .filter((f) => f.endsWith(".md"))
  .map((f) => `docs/${f}`);

/** From the heading `## title` (or `### title`) to the next heading of that level or above. */
function section(page: string, title: string): string {
  const text = read(page);
  const match = new RegExp(`^(#{2,4}) ${title.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}\\n`, "m").exec(text);
  if (match === null) throw new Error(`${page} has no "## ${title}" section`);
  const level = match[1]!.length;
  const rest = text.slice(match.index + match[0].length);
  const end = new RegExp(`^#{2,${level}} `, "m").exec(rest);
  return rest.slice(0, end === null ? undefined : end.index);
}

/** First cells of the table rows in a text. */
function firstCells(text: string): string[] {
  return [...text.matchAll(/^\| *`?([^|`]+?)`? *\|/gm)]
    .map((m) => m[1]!)
    .filter((c) => !/^(-+|event|code|state|key|command|flag|package|method)$/.test(c));
}

function yamlBlock(text: string, containing: string): string {
  const block = [...text.matchAll(/```yaml\n([\s\S]*?)```/g)]
    .map((m) => m[1]!)
    .find((b) => b.includes(containing));
  if (block === undefined) throw new Error(`no yaml example with ${containing}`);
  return block;
}

describe("README", () => {
  it("gives the two commands, setup-and-run and setup-and-test, on its first screen", () => {
    const firstScreen = readme.split("\n").slice(0, 25).join("\n");
    expect(firstScreen).toContain("npm ci && npm start");
    expect(firstScreen).toContain("npm ci && npm test");
  });

  it("stays a front page, and links to every page of docs/", () => {
    expect(readme.split("\n").length).toBeLessThanOrEqual(250);
    for (const page of docs) expect(readme, page).toContain(`](${page})`);
  });
});

describe("docs/events.md", () => {
  const page = "docs/events.md";

  it("lists exactly the events of the registry, each with its level", () => {
    const rows = [...section(page, "Events").matchAll(/^\| `([a-z.]+)` +\| (\w+) +\|/gm)].map((m) => [
      m[1],
      m[2],
    ]);
    expect(rows.map((r) => r[0]).sort()).toEqual(Object.keys(EVENT_LEVELS).sort());
    for (const [event, level] of rows)
      expect(level, event).toBe(EVENT_LEVELS[event as keyof typeof EVENT_LEVELS]);
  });

  it("lists exactly the error codes, each with its exit code", () => {
    const rows = [...section(page, "Error codes").matchAll(/^\| `(HB_ERR_\w+)` +\| (\d+) +\|/gm)].map((m) => [
      m[1]!,
      Number(m[2]),
    ]);
    expect(rows.map((r) => r[0]).sort()).toEqual(Object.keys(ErrorCode).sort());
    for (const [code, exit] of rows)
      expect(exit, String(code)).toBe(ErrorCode[code as keyof typeof ErrorCode]);
  });

  it("lists exactly the exit codes", () => {
    const listed = firstCells(section(page, "Exit codes")).map(Number);
    expect(listed.sort((a, b) => a - b)).toEqual([...new Set(Object.values(ExitCode))].sort((a, b) => a - b));
  });

  it("names every rejection reason", () => {
    for (const reason of REJECT_REASONS)
      expect(section(page, "Rejection reasons")).toContain(`\`${reason}\``);
  });

  it("says that a node back from a leave is up from left, not restarted", () => {
    const text = read(page);
    expect(text).toMatch(/`node\.restarted` means a new incarnation _without_ a leave/);
    expect(text).toContain("`node.up` with `previous: left`, and nothing else");
  });
});

describe("docs/notifications.md", () => {
  const page = "docs/notifications.md";

  it("lists exactly the HB_* variables a hook gets", () => {
    const rows = [...section(page, "exec").matchAll(/^\| `(HB_[A-Z_<>]+)` +\|/gm)].map((m) => m[1]);
    expect(rows.sort()).toEqual(Object.keys(HB_VARIABLES).sort());
  });

  it("lists exactly the events an output carries by default", () => {
    const listed = [...section(page, "Which events").matchAll(/^- `([a-z.]+)`/gm)].map((m) => m[1]);
    expect(listed.sort()).toEqual([...NOTIFY_BY_DEFAULT].sort());
    expect(section(page, "Which events")).toContain(`these ${NOTIFY_BY_DEFAULT.size} events`);
  });

  it("gives a worked example of each output kind that the config reader takes", () => {
    const parsed = parseConfig(yamlBlock(read(page), "\nnotify:"), page);
    expect(parsed.ok && parsed.config.notify.map((o) => o.kind)).toEqual(["exec", "webhook", "alertmanager"]);
    expect(parsed.ok && parsed.config.nodes.get("payments-1")?.labels).toEqual({
      team: "payments",
      tier: "1",
    });
  });
});

describe("docs/high-availability.md", () => {
  it("gives a two-monitor config that the config reader takes", () => {
    const page = "docs/high-availability.md";
    const parsed = parseConfig(yamlBlock(read(page), "\ncluster:"), page);
    expect(parsed.ok && parsed.config.cluster?.monitors.map((m) => m.id)).toEqual(["mon-a", "mon-b"]);
    expect(parsed.ok && parsed.config.auth).toBe("required");
  });
});

describe("docs/commands.md", () => {
  const page = "docs/commands.md";

  it("has a row and a section for every command", () => {
    const rows = [...read(page).matchAll(/^\| `hb ([a-z-]+)/gm)].map((m) => m[1]);
    expect(rows.sort()).toEqual(Object.keys(COMMANDS).sort());
    for (const name of Object.keys(COMMANDS)) expect(() => section(page, `\`hb ${name}\``)).not.toThrow();
  });

  it("documents every flag of every command in the command's section", async () => {
    for (const [name, entry] of Object.entries(COMMANDS)) {
      const { flags } = await entry.load();
      const text = section(page, `\`hb ${name}\``);
      for (const flag of Object.keys(flags)) expect(text, `hb ${name} --${flag}`).toContain(`\`--${flag}\``);
      // Nothing documented that the command does not take.
      const documented = new Set([...text.matchAll(/^\| `--([a-z-]+)`/gm)].map((m) => m[1]!));
      expect([...documented].sort(), `hb ${name}`).toEqual(Object.keys(flags).sort());
    }
  });
});

describe("docs/configuration.md", () => {
  it("documents every key the config reader accepts, and no other", () => {
    const text = read("docs/configuration.md");
    const rows = new Set(firstCells(section("docs/configuration.md", "Keys")));
    expect([...rows].sort()).toEqual([...CONFIG_KEYS].sort());
    for (const key of CONFIG_KEYS) expect(text).toContain(`\`${key}\``);
  });

  it("gives examples of parents and recurring windows that the config reader takes", () => {
    const page = "docs/configuration.md";
    const top = parseConfig(yamlBlock(read(page), "listen:"), page);
    expect(top.ok && top.config.nodes.get("web-7")?.parents).toEqual(["sw-1"]);
    const windows = parseConfig(yamlBlock(read(page), "nightly-backup"), page);
    expect(windows.ok && windows.config.maintenance.windows.map((w) => w.name)).toEqual([
      "patch-tuesday",
      "nightly-backup",
    ]);
  });
});

describe("docs/status.md", () => {
  it("lists every route of the status server with its methods, and has a section for each action", () => {
    const rows = [...section("docs/status.md", "Routes").matchAll(/^\| ([^|]+?) +\| `([^`]+)` +\|/gm)].map(
      (m) => ({
        methods: [...m[1]!.matchAll(/`([A-Z]+)`/g)].map((x) => x[1]),
        path: m[2],
      }),
    );
    expect(rows).toEqual(ROUTES.map((r) => ({ methods: [...r.methods], path: r.path })));
    for (const route of ROUTES.filter((r) => r.methods.includes("POST")))
      expect(() => section("docs/status.md", `POST ${route.path}`)).not.toThrow();
  });

  it("documents each operator action of the table in its own section: header, argument and status codes", () => {
    for (const action of Object.values(ACTIONS)) {
      const text = section("docs/status.md", `${action.method} ${action.path}`);
      const refusals = [
        413,
        ...(action.header === null ? [] : [403]),
        ...(action.param === null ? [] : [400]),
      ];
      for (const code of [...action.answers, ...refusals])
        expect(text, `${action.path}`).toMatch(new RegExp(`\\b${code}\\b`));
      if (action.header !== null) expect(text).toContain(`\`${action.header}\``);
      if (action.param !== null) expect(text).toContain(`${action.path}?${action.param.name}=`);
    }
  });

  it("is what SECURITY.md says the status server answers", () => {
    const security = read("docs/SECURITY.md");
    for (const route of ROUTES) expect(security).toContain(`\`${route.path}\``);
  });
});

describe("docs/development.md", () => {
  it("describes the source tree as it is: every folder and every file", () => {
    const layout = /```text\n(src\/[\s\S]*?)```/.exec(read("docs/development.md"))?.[1] ?? "";
    for (const entry of readdirSync(join(root, "src"))) {
      const path = join(root, "src", entry);
      if (statSync(path).isDirectory()) {
        expect(layout, `src/${entry}/`).toMatch(new RegExp(`^  ${entry}/`, "m"));
        for (const file of readdirSync(path))
          expect(layout, `src/${entry}/${file}`).toMatch(new RegExp(`\\b${file.replace(".", "\\.")}\\b`));
      } else expect(layout, `src/${entry}`).toContain(entry);
    }
  });
});

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens. */
function slug(heading: string): string {
  return heading
    .toLowerCase()
    .replace(/[^\p{L}\p{N} _-]/gu, "")
    .replace(/ /g, "-");
}

function anchors(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  for (const m of withoutCode(markdown).matchAll(/^#{1,6} (.+)$/gm)) {
    const base = slug(m[1]!.trim());
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  return out;
}

function withoutCode(markdown: string): string {
  return markdown.replace(/^```[\s\S]*?^```/gm, "");
}

describe("links", () => {
  const pages = ["README.md", ...docs, "systemd/README.md"];

  it.each(pages)("every relative link in %s leads to a file (and a heading) that exists", (page) => {
    const text = withoutCode(read(page));
    const links = [...text.matchAll(/\]\(([^)\s]+)\)/g)].map((m) => m[1]!).filter((l) => !/^[a-z]+:/.test(l));
    for (const link of links) {
      const [target = "", anchor] = link.split("#");
      const path = target === "" ? join(root, page) : resolve(dirname(join(root, page)), target);
      expect(existsSync(path), `${page}: ${link} (${relative(root, path)})`).toBe(true);
      if (anchor !== undefined && path.endsWith(".md"))
        expect([...anchors(readFileSync(path, "utf8"))], `${page}: ${link}`).toContain(anchor);
    }
  });
});
