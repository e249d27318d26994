// Drives test/systemd/sandbox.sh from tests: a real systemd as PID 1 of a container.
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";

export const REPO = fileURLToPath(new URL("../..", import.meta.url)).replace(/\/$/, "");
const SCRIPT = `${REPO}/test/systemd/sandbox.sh`;

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface JournalEntry {
  MESSAGE: string;
  PRIORITY: string;
  SYSLOG_IDENTIFIER?: string;
  _PID?: string;
  __REALTIME_TIMESTAMP: string;
  event?: Record<string, unknown> & { event: string; node?: string };
}

/** In CI (or with HB_REQUIRE_SYSTEMD=1) a machine that cannot run the systemd tests fails them. */
export const systemdRequired = process.env.CI === "true" || process.env.HB_REQUIRE_SYSTEMD === "1";

/** Why this machine cannot boot the sandbox, or null when it can. */
export function sandboxUnavailable(): string | null {
  const r = spawnSync("bash", [SCRIPT, "check"], { encoding: "utf8" });
  return r.status === 0 ? null : r.stderr.trim() || `sandbox check exited ${r.status}`;
}

export class Sandbox {
  private readonly env: NodeJS.ProcessEnv;

  constructor(name: string) {
    this.env = { ...process.env, HB_SANDBOX_NAME: name, HB_SANDBOX_BIND: REPO };
  }

  private script(args: string[], timeoutMs = 120_000, input?: string): Run {
    const r = spawnSync("bash", [SCRIPT, ...args], {
      encoding: "utf8",
      env: this.env,
      timeout: timeoutMs,
      input,
    });
    return { code: r.status, stdout: r.stdout ?? "", stderr: r.stderr ?? "" };
  }

  /**
   * Boots the container. A boot that fails on a loaded machine is tried once more (after a
   * clean down), so that the tests judge hb and not the host's moment; both failures are shown.
   */
  up(): void {
    const first = this.script(["up"]);
    if (first.code === 0) return;
    this.down();
    const second = this.script(["up"]);
    if (second.code !== 0) {
      throw new Error(
        `sandbox up failed twice: exit ${first.code}, ${first.stderr || "(no output)"}; then exit ${second.code}, ${second.stderr || "(no output)"}`,
      );
    }
  }

  /** Boots the container as a real host: without the policy-rc.d of a container image, which
   * forbids maintainer scripts every service action (exit 101). */
  upAsHost(): void {
    this.up();
    this.ok("rm", "-f", "/usr/sbin/policy-rc.d");
  }

  down(): void {
    this.script(["down"]);
  }

  /** Runs a command inside; returns its result (does not throw on a non-zero exit). */
  run(...cmd: string[]): Run {
    return this.script(["exec", ...cmd]);
  }

  /** Runs a command inside and throws unless it succeeds; returns stdout. */
  ok(...cmd: string[]): string {
    const r = this.run(...cmd);
    if (r.code !== 0) throw new Error(`${cmd.join(" ")} exited ${r.code}: ${r.stderr}${r.stdout}`);
    return r.stdout;
  }

  sh(script: string): Run {
    return this.run("/bin/sh", "-c", script);
  }

  writeFile(path: string, text: string): void {
    const r = this.script(["exec", "/bin/sh", "-c", `cat > '${path}'`], 10_000, text);
    if (r.code !== 0) throw new Error(`writing ${path}: ${r.stderr}`);
  }

  show(unit: string, ...props: string[]): Record<string, string> {
    const out = this.ok("systemctl", "show", unit, ...props.map((p) => `--property=${p}`));
    return Object.fromEntries(
      out
        .trim()
        .split("\n")
        .map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]),
    );
  }

  journal(unit: string, ...extra: string[]): JournalEntry[] {
    const out = this.ok(
      "journalctl",
      "-u",
      unit,
      "-o",
      "json",
      "--no-pager",
      "--output-fields=MESSAGE,PRIORITY,SYSLOG_IDENTIFIER,_PID",
      ...extra,
    );
    return out
      .split("\n")
      .filter((l) => l.trim() !== "")
      .map((l) => {
        const entry = JSON.parse(l) as JournalEntry;
        if (typeof entry.MESSAGE === "string" && entry.MESSAGE.startsWith("{")) {
          try {
            entry.event = JSON.parse(entry.MESSAGE) as NonNullable<JournalEntry["event"]>;
          } catch {
            // not an hb event
          }
        }
        return entry;
      });
  }

  events(unit = "hb-monitor"): JournalEntry[] {
    return this.journal(unit).filter((e) => e.event !== undefined);
  }

  /** Polls the journal until an hb event matches. */
  async waitForEvent(
    match: (e: NonNullable<JournalEntry["event"]>) => boolean,
    timeoutMs: number,
    unit = "hb-monitor",
  ): Promise<JournalEntry> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.events(unit).find((e) => match(e.event!));
      if (found !== undefined) return found;
      if (Date.now() > deadline) {
        throw new Error(
          `no matching event within ${timeoutMs} ms; journal:\n${this.events(unit)
            .map((e) => e.MESSAGE)
            .join("\n")}`,
        );
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  async waitFor(what: string, check: () => boolean, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!check()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}
