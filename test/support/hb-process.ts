// Runs the built hb executable as a child process and reads its JSON event lines.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createInterface } from "node:readline";

export const HB_BIN = fileURLToPath(new URL("../../dist/hb.mjs", import.meta.url));

if (!existsSync(HB_BIN)) throw new Error(`${HB_BIN} is missing: run "npm run build" (npm test does)`);

export type HbEvent = Record<string, unknown> & { event: string; node?: string };

export class HbProcess {
  readonly child: ChildProcess;
  readonly events: HbEvent[] = [];
  readonly stderr: string[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private readonly waiters = new Set<() => void>();

  /** `bin`: another copy of hb to run (by default the build's, HB_BIN). */
  constructor(args: string[], env: Record<string, string> = {}, bin = HB_BIN) {
    this.child = spawn(process.execPath, [bin, ...args], {
      stdio: ["ignore", "pipe", "pipe"],
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", ...env },
    });
    createInterface({ input: this.child.stdout! }).on("line", (line) => {
      this.events.push(JSON.parse(line) as HbEvent);
      this.waiters.forEach((w) => w());
    });
    createInterface({ input: this.child.stderr! }).on("line", (line) => this.stderr.push(line));
    this.exited = new Promise((resolve) =>
      this.child.once("exit", (code, signal) => resolve({ code, signal })),
    );
  }

  of(event: string, node?: string): HbEvent[] {
    return this.events.filter((e) => e.event === event && (node === undefined || e.node === node));
  }

  /** Resolves with the first event (already seen or future) that matches, or rejects after `timeoutMs`. */
  waitFor(event: string, node?: string, timeoutMs = 15_000, after = 0): Promise<HbEvent> {
    return new Promise((resolve, reject) => {
      // Each line is looked at once: a monitor that writes tens of thousands of lines while a
      // test waits must not cost the test a scan of all of them per line.
      let next = after;
      const check = (): boolean => {
        let found: HbEvent | undefined;
        for (; next < this.events.length && found === undefined; next++) {
          const e = this.events[next]!;
          if (e.event === event && (node === undefined || e.node === node)) found = e;
        }
        if (found === undefined) return false;
        this.waiters.delete(check);
        clearTimeout(timer);
        resolve(found);
        return true;
      };
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        reject(
          new Error(
            `no ${event}${node ? ` for ${node}` : ""} within ${timeoutMs} ms; saw: ${JSON.stringify(this.events.map((e) => [e.event, e.node]))}; stderr: ${this.stderr.join("\n")}`,
          ),
        );
      }, timeoutMs);
      if (!check()) this.waiters.add(check);
    });
  }

  signal(sig: NodeJS.Signals): void {
    this.child.kill(sig);
  }

  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill("SIGKILL");
    await this.exited;
  }
}

/** Starts a monitor on loopback (any free ports) and waits for monitor.started. */
export async function startMonitor(
  configPath: string,
  extraArgs: string[] = [],
): Promise<{ monitor: HbProcess; listen: string; port: number; statusUrl: string }> {
  const monitor = new HbProcess([
    "monitor",
    "--config",
    configPath,
    "--listen",
    "127.0.0.1:0",
    "--status",
    "127.0.0.1:0",
    ...extraArgs,
  ]);
  const started = await monitor.waitFor("monitor.started");
  const listen = started.listen as string;
  return {
    monitor,
    listen,
    port: Number(listen.split(":")[1]),
    statusUrl: `http://${started.status as string}/status`,
  };
}

export function startNode(id: string, listen: string, interval = "200ms", extra: string[] = []): HbProcess {
  return new HbProcess(["node", "--id", id, "--monitor", listen, "--interval", interval, ...extra]);
}

/** Runs hb to completion (for short commands). */
export function runHb(
  args: string[],
  env: Record<string, string> = {},
): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [HB_BIN, ...args], {
    encoding: "utf8",
    env: { PATH: process.env.PATH ?? "", ...env },
    timeout: 20_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

export class TempDir {
  readonly path = mkdtempSync(join(tmpdir(), "hb-test-"));
  file(name: string, text: string, mode = 0o644): string {
    const p = join(this.path, name);
    writeFileSync(p, text, { mode });
    return p;
  }
  remove(): void {
    rmSync(this.path, { recursive: true, force: true });
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Polls `read` every `pollMs` until it gives a value (anything but undefined or false), and
 * resolves with it; fails, naming `what`, after `timeoutMs`.
 */
export async function until<T>(
  what: string,
  read: () => T | undefined | false | Promise<T | undefined | false>,
  timeoutMs = 15_000,
  pollMs = 50,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(pollMs);
  }
}
