// `hb demo`: a guided run on loopback with real processes: a monitor on the repository's
// heartbeat.yaml (on free ports) and three `hb node` processes for nodes it lists. It kills one
// (late, then down at its deadline), stops another (left) and starts it again (up, from left: a
// planned restart), then kills that one and starts it at once, as systemd would (restarted: a
// crash), and prints `hb status` along the way. Events are shown as readable lines.

import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { parseConfig } from "../config/parse.js";
import { formatDuration } from "../duration.js";
import { ExitCode, HbError } from "../errors.js";
import { parseFlags } from "./flags.js";
import type { Io } from "./io.js";
import { fetchStatus } from "./status-client.js";
import { renderTable } from "./status-table.js";

export const usage = `usage: hb demo [--config PATH]

  Runs a monitor and three nodes on loopback and walks through a crash, a planned stop and
  start, and a crash that is restarted. Uses the repository's heartbeat.yaml unless --config
  is given.`;

/** The example config: beside the bundle (dist/, /usr/share/hb), or at the top of the source tree. */
const demoConfig = (): string =>
  [new URL("heartbeat.yaml", import.meta.url), new URL("../../heartbeat.yaml", import.meta.url)]
    .map((url) => fileURLToPath(url))
    .find((path) => existsSync(path)) ?? "heartbeat.yaml";

type EventLine = Record<string, unknown> & { event: string };

function render(e: EventLine): string {
  const time = new Date(typeof e.time === "number" ? e.time : Date.now()).toISOString().slice(11, 23);
  const level = (typeof e.level === "string" ? e.level : "").toUpperCase().padEnd(5);
  const fields = Object.entries(e)
    .filter(([k]) => k !== "time" && k !== "level" && k !== "event")
    .map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`)
    .join(" ");
  return `${time}  ${level}  ${e.event.padEnd(16)} ${fields}`;
}

class Demo {
  private readonly children = new Set<ChildProcess>();
  private readonly waiters: { match: (e: EventLine) => boolean; resolve: (e: EventLine) => void }[] = [];

  constructor(private readonly io: Io) {}

  say(text: string): void {
    this.io.stdout.write(`\n==> ${text}\n`);
  }

  start(args: string[], label: string): ChildProcess {
    const [command, ...prefix] = this.io.self;
    const child = spawn(command!, [...prefix, ...args], { stdio: ["ignore", "pipe", "inherit"] });
    this.children.add(child);
    child.on("exit", () => this.children.delete(child));
    createInterface({ input: child.stdout }).on("line", (line) => {
      let event: EventLine;
      try {
        event = JSON.parse(line) as EventLine;
      } catch {
        this.io.stdout.write(`${label}: ${line}\n`);
        return;
      }
      this.io.stdout.write(`${label.padEnd(16)} ${render(event)}\n`);
      for (const waiter of [...this.waiters]) {
        if (waiter.match(event)) {
          this.waiters.splice(this.waiters.indexOf(waiter), 1);
          waiter.resolve(event);
        }
      }
    });
    return child;
  }

  waitFor(match: (e: EventLine) => boolean, timeoutMs: number, what: string): Promise<EventLine> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new HbError("HB_ERR_INTERNAL", `demo: no ${what} within ${timeoutMs} ms`)),
        timeoutMs,
      );
      this.waiters.push({
        match,
        resolve: (e) => {
          clearTimeout(timer);
          resolve(e);
        },
      });
    });
  }

  /** Stops the processes newest first, so the monitor (started first) sees the nodes leave. */
  async stopAll(): Promise<void> {
    for (const child of [...this.children].reverse()) {
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGTERM");
      await exited;
    }
  }
}

const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export const flags = { config: { type: "string" } } as const;

export async function run(args: readonly string[], io: Io): Promise<number> {
  const { values } = parseFlags(args, flags, usage);
  const configPath = typeof values.config === "string" ? values.config : demoConfig();
  const parsed = parseConfig(await readFile(configPath, "utf8"), configPath);
  if (!parsed.ok)
    throw new HbError("HB_ERR_CONFIG", `${configPath} is not valid: run hb check-config ${configPath}`);
  const nodes = [...parsed.config.nodes.values()].filter((n) => !n.paused).slice(0, 3);
  if (nodes.length < 3)
    throw new HbError("HB_ERR_CONFIG", `${configPath} lists fewer than three unpaused nodes`);
  const [steady, planned, crashing] = [
    nodes[0]!,
    nodes[1]!,
    nodes.reduce((a, b) => (b.timeoutMs < a.timeoutMs ? b : a)),
  ];
  const stopping = planned === crashing ? nodes[2]! : planned;

  const demo = new Demo(io);
  try {
    demo.say(`starting a monitor on ${configPath} (loopback, free ports)`);
    const started = demo.waitFor((e) => e.event === "monitor.started", 10_000, "monitor.started");
    demo.start(
      ["monitor", "--config", configPath, "--listen", "127.0.0.1:0", "--status", "127.0.0.1:0"],
      "monitor",
    );
    const { listen, status } = (await started) as EventLine & { listen: string; status: string };
    const statusUrl = `http://${status}/status`;

    const nodeProcess = new Map<string, ChildProcess>();
    const startNode = (id: string, interval: number): void => {
      nodeProcess.set(
        id,
        demo.start(
          ["node", "--id", id, "--monitor", listen, "--interval", formatDuration(interval)],
          `node ${id}`,
        ),
      );
    };
    demo.say(`starting three node processes: ${nodes.map((n) => n.id).join(", ")}`);
    const allUp = Promise.all(
      nodes.map((n) =>
        demo.waitFor((e) => e.event === "node.up" && e.node === n.id, 10_000, `node.up for ${n.id}`),
      ),
    );
    for (const n of nodes) startNode(n.id, n.intervalMs);
    await allUp;
    await pause(1500);
    demo.say(`hb status --url ${statusUrl}`);
    io.stdout.write(renderTable(await fetchStatus(statusUrl)));

    demo.say(
      `kill -9 node ${crashing.id}: a crash. It goes late after ${formatDuration(crashing.lateMs)} of silence and down at exactly ${formatDuration(crashing.timeoutMs)}`,
    );
    const down = demo.waitFor(
      (e) => e.event === "node.down" && e.node === crashing.id,
      crashing.timeoutMs + 5000,
      "node.down",
    );
    nodeProcess.get(crashing.id)!.kill("SIGKILL");
    await down;

    demo.say(`systemctl-style stop of node ${stopping.id} (SIGTERM): a planned stop is "left", never "down"`);
    const left = demo.waitFor((e) => e.event === "node.left" && e.node === stopping.id, 5000, "node.left");
    nodeProcess.get(stopping.id)!.kill("SIGTERM");
    await left;

    demo.say(
      `starting node ${stopping.id} again: a new incarnation after a leave is a planned restart, reported as up (previous: left), with no warning`,
    );
    const back = demo.waitFor((e) => e.event === "node.up" && e.node === stopping.id, 5000, "node.up");
    startNode(stopping.id, stopping.intervalMs);
    await back;
    await pause(1500);

    demo.say(
      `kill -9 node ${stopping.id} and start it at once, as systemd does for a crashed unit: a new incarnation without a leave is reported as restarted (a warning)`,
    );
    const restarted = demo.waitFor(
      (e) => e.event === "node.restarted" && e.node === stopping.id,
      5000,
      "node.restarted",
    );
    const killed = nodeProcess.get(stopping.id)!;
    const gone = new Promise((resolve) => killed.once("exit", resolve));
    killed.kill("SIGKILL");
    await gone;
    startNode(stopping.id, stopping.intervalMs);
    await restarted;
    await pause(500);

    demo.say(`hb status --url ${statusUrl}  (exit code 1: a node is down)`);
    io.stdout.write(renderTable(await fetchStatus(statusUrl)));
    demo.say(`done: steady node ${steady.id} stayed up throughout; stopping everything`);
  } finally {
    await demo.stopAll();
  }
  return ExitCode.OK;
}
