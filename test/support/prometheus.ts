// A real Prometheus on loopback for tests: a free port, a scratch TSDB removed on stop, and a
// generated prometheus.yml that scrapes the given targets as job "hb" every second and evaluates
// the given rule files every second. The process is killed on stop and when the test process exits.
import { spawn, type ChildProcess } from "node:child_process";
import { accessSync, constants, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

const READY_TIMEOUT_MS = 15_000;
/** Kept for error messages: what Prometheus said before it failed. */
const MAX_LOG_LINES = 40;

function onPath(name: string): string | null {
  const dirs = (process.env.PATH ?? "").split(delimiter).filter((d) => d !== "");
  for (const dir of [...dirs, "/usr/bin"]) {
    const file = join(dir, name);
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      // not in this directory
    }
  }
  return null;
}

/** The prometheus executable, or null when it is not installed. */
export function prometheusBinary(): string | null {
  return onPath("prometheus");
}

/** The promtool executable, or null when it is not installed. */
export function promtoolBinary(): string | null {
  return onPath("promtool");
}

/** A port that was free a moment ago (the kernel's pick for port 0). */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", resolve);
  });
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === "string") throw new Error("no TCP port from the kernel");
  return address.port;
}

export interface PrometheusOptions {
  /** host:port of each /metrics endpoint, scraped as job "hb". */
  targets: readonly string[];
  /** Absolute paths of rule files. */
  ruleFiles: readonly string[];
}

export interface PrometheusAlert {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  state: "pending" | "firing";
  activeAt: string;
  value: string;
}

export interface PrometheusRuleGroup {
  name: string;
  lastEvaluation: string;
  rules: { name: string; health: string; lastError?: string }[];
}

const running = new Set<Prometheus>();
process.once("exit", () => {
  for (const prometheus of running) prometheus.kill();
});

export class Prometheus {
  readonly url: string;
  readonly log: string[] = [];
  private readonly exited: Promise<void>;

  private constructor(
    private readonly child: ChildProcess,
    private readonly dir: string,
    port: number,
  ) {
    this.url = `http://127.0.0.1:${port}`;
    const keep = (chunk: Buffer): void => {
      for (const line of chunk.toString("utf8").split("\n")) if (line !== "") this.log.push(line);
      this.log.splice(0, Math.max(0, this.log.length - MAX_LOG_LINES));
    };
    child.stdout!.on("data", keep);
    child.stderr!.on("data", keep);
    this.exited = new Promise((resolve) => {
      child.once("exit", () => resolve());
      child.once("error", (err) => {
        this.log.push(String(err));
        resolve();
      });
    });
    running.add(this);
  }

  /** Starts Prometheus and waits until it reports itself ready; starts it again when it exits at once (its port taken meanwhile). */
  static async start(options: PrometheusOptions): Promise<Prometheus> {
    const binary = prometheusBinary();
    if (binary === null) throw new Error("prometheus is not installed (Debian: apt-get install prometheus)");
    let lastError: unknown;
    for (let attempt = 0; attempt < 3; attempt++) {
      const prometheus = await Prometheus.spawn(binary, options);
      try {
        await prometheus.waitReady();
        return prometheus;
      } catch (err) {
        lastError = err;
        const exitedEarly = prometheus.child.exitCode !== null || prometheus.child.signalCode !== null;
        await prometheus.stop();
        if (!exitedEarly) break;
      }
    }
    throw lastError;
  }

  private static async spawn(binary: string, options: PrometheusOptions): Promise<Prometheus> {
    const dir = mkdtempSync(join(tmpdir(), "hb-prometheus-"));
    const config = {
      global: { scrape_interval: "1s", scrape_timeout: "1s", evaluation_interval: "1s" },
      rule_files: options.ruleFiles,
      scrape_configs: [{ job_name: "hb", static_configs: [{ targets: options.targets }] }],
    };
    // JSON is YAML: nothing to escape by hand.
    writeFileSync(join(dir, "prometheus.yml"), JSON.stringify(config, null, 2));
    const port = await freePort();
    const child = spawn(
      binary,
      [
        `--config.file=${join(dir, "prometheus.yml")}`,
        `--storage.tsdb.path=${join(dir, "data")}`,
        `--web.listen-address=127.0.0.1:${port}`,
        "--log.level=warn",
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    return new Prometheus(child, dir, port);
  }

  private async waitReady(): Promise<void> {
    const deadline = Date.now() + READY_TIMEOUT_MS;
    while (Date.now() < deadline) {
      if (this.child.exitCode !== null || this.child.signalCode !== null) break;
      try {
        if ((await fetch(`${this.url}/-/ready`)).ok) return;
      } catch {
        // not listening yet
      }
      await sleep(100);
    }
    throw new Error(`prometheus at ${this.url} did not become ready:\n${this.log.join("\n")}`);
  }

  private async get<T>(path: string): Promise<T> {
    const response = await fetch(`${this.url}${path}`);
    const body = (await response.json()) as { status: string; data: T; error?: string };
    if (!response.ok || body.status !== "success")
      throw new Error(`GET ${path}: ${response.status} ${body.error ?? ""}`);
    return body.data;
  }

  /** Pending and firing alerts (GET /api/v1/alerts). */
  async alerts(): Promise<PrometheusAlert[]> {
    return (await this.get<{ alerts: PrometheusAlert[] }>("/api/v1/alerts")).alerts;
  }

  /** The loaded rule groups and when each was last evaluated (GET /api/v1/rules). */
  async ruleGroups(): Promise<PrometheusRuleGroup[]> {
    return (await this.get<{ groups: PrometheusRuleGroup[] }>("/api/v1/rules")).groups;
  }

  /** An instant query's samples: each series' labels and value. */
  async query(promql: string): Promise<{ metric: Record<string, string>; value: [number, string] }[]> {
    const data = await this.get<{ result: { metric: Record<string, string>; value: [number, string] }[] }>(
      `/api/v1/query?query=${encodeURIComponent(promql)}`,
    );
    return data.result;
  }

  /** Kills the process at once (no TSDB to keep) and removes its data. Safe to call at exit. */
  kill(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill("SIGKILL");
    rmSync(this.dir, { recursive: true, force: true });
  }

  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill("SIGKILL");
    await this.exited;
    rmSync(this.dir, { recursive: true, force: true });
    running.delete(this);
  }
}
