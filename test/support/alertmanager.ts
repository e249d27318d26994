// A real Alertmanager on loopback for tests, alone or as one of a peered pair, with short timings
// so that notifications come within seconds; and a webhook receiver that collects what it
// notifies. Each Alertmanager gets free ports and its own storage directory, both gone on stop,
// and is killed if the test process exits first.

import type { WebhookAlert } from "../../src/notify/webhook.js";
import { spawn, type ChildProcess } from "node:child_process";
import { createSocket } from "node:dgram";
import { accessSync, constants, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer as createHttpServer, type Server } from "node:http";
import { createServer as createTcpServer } from "node:net";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";

const BINARY_NAMES = ["prometheus-alertmanager", "alertmanager"];
const READY_TIMEOUT_MS = 15_000;
const STOP_GRACE_MS = 3000;
/** Most of an Alertmanager's log kept for a failure's message. */
const MAX_LOG_CHARS = 8000;

/** The Alertmanager executable: Debian's, or one on PATH; null when none is installed. */
export function alertmanagerBinary(): string | null {
  const dirs = ["/usr/bin", ...(process.env.PATH ?? "").split(delimiter).filter((d) => d !== "")];
  for (const dir of dirs)
    for (const name of BINARY_NAMES) {
      const path = join(dir, name);
      try {
        accessSync(path, constants.X_OK);
        return path;
      } catch {
        // not here
      }
    }
  return null;
}

export interface AlertmanagerOptions {
  /** Where its one webhook receiver posts every notification (firing and resolved). */
  receiverUrl: string;
  /** Cluster addresses of peers to join; any makes it clustered. */
  peers?: readonly string[];
  /** Its own cluster port: 0 for a free one; null or absent: no cluster unless `peers`. */
  clusterPort?: number | null;
  groupWaitMs?: number;
  groupIntervalMs?: number;
  repeatIntervalMs?: number;
  /** How long a clustered instance waits per position for a peer to notify first. */
  peerTimeoutMs?: number;
}

export interface RunningAlertmanager {
  /** Base URL, e.g. http://127.0.0.1:40123. */
  readonly url: string;
  /** host:port of its cluster listener; null when not clustered. */
  readonly clusterAddress: string | null;
  /** What it has logged so far (bounded), for failure messages. */
  log(): string;
  stop(): Promise<void>;
}

const running = new Set<ChildProcess>();
const storageDirs = new Set<string>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once("exit", () => {
    for (const child of running) child.kill("SIGKILL");
    for (const dir of storageDirs) rmSync(dir, { recursive: true, force: true });
  });
}

/** A loopback port free for TCP (and, for memberlist's gossip, UDP too) at the time of asking. */
export async function freePort(udpToo = false): Promise<number> {
  for (;;) {
    const port = await new Promise<number>((resolve, reject) => {
      const server = createTcpServer();
      server.once("error", reject);
      server.listen(0, "127.0.0.1", () => {
        const address = server.address();
        server.close(() => resolve(typeof address === "object" && address !== null ? address.port : 0));
      });
    });
    if (!udpToo || (await udpFree(port))) return port;
  }
}

function udpFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createSocket("udp4");
    socket.once("error", () => {
      socket.close();
      resolve(false);
    });
    socket.bind(port, "127.0.0.1", () => socket.close(() => resolve(true)));
  });
}

const duration = (ms: number): string => `${Math.round(ms)}ms`;

function configYaml(opts: AlertmanagerOptions): string {
  // group_by '...': every alert is its own group, so each gets its own notifications.
  return [
    "route:",
    "  receiver: hook",
    "  group_by: ['...']",
    `  group_wait: ${duration(opts.groupWaitMs ?? 1000)}`,
    `  group_interval: ${duration(opts.groupIntervalMs ?? 1000)}`,
    `  repeat_interval: ${duration(opts.repeatIntervalMs ?? 3_600_000)}`,
    "receivers:",
    "  - name: hook",
    "    webhook_configs:",
    `      - url: ${JSON.stringify(opts.receiverUrl)}`,
    "        send_resolved: true",
    "",
  ].join("\n");
}

/** Starts an Alertmanager and resolves once it answers GET /-/ready with 200. */
export async function startAlertmanager(opts: AlertmanagerOptions): Promise<RunningAlertmanager> {
  const binary = alertmanagerBinary();
  if (binary === null) throw new Error(`no Alertmanager installed (${BINARY_NAMES.join(" or ")})`);
  installExitHook();
  const dir = mkdtempSync(join(tmpdir(), "hb-alertmanager-"));
  storageDirs.add(dir);
  writeFileSync(join(dir, "config.yml"), configYaml(opts));
  const webPort = await freePort();
  const peers = opts.peers ?? [];
  const clustered = peers.length > 0 || (opts.clusterPort !== undefined && opts.clusterPort !== null);
  const clusterPort = clustered ? opts.clusterPort || (await freePort(true)) : null;
  const clusterAddress = clusterPort === null ? null : `127.0.0.1:${clusterPort}`;
  const args = [
    `--config.file=${join(dir, "config.yml")}`,
    `--storage.path=${join(dir, "data")}`,
    `--web.listen-address=127.0.0.1:${webPort}`,
    "--log.level=info",
  ];
  if (clusterAddress === null) args.push("--cluster.listen-address=");
  else
    args.push(
      `--cluster.listen-address=${clusterAddress}`,
      `--cluster.advertise-address=${clusterAddress}`,
      ...peers.map((peer) => `--cluster.peer=${peer}`),
      `--cluster.peer-timeout=${duration(opts.peerTimeoutMs ?? 1000)}`,
      "--cluster.gossip-interval=50ms",
      "--cluster.pushpull-interval=1s",
      "--cluster.settle-timeout=1s",
      "--cluster.probe-interval=200ms",
      "--cluster.reconnect-interval=500ms",
    );

  const child = spawn(binary, args, { stdio: ["ignore", "pipe", "pipe"] });
  running.add(child);
  let log = "";
  const keep = (chunk: Buffer): void => {
    log = (log + chunk.toString("utf8")).slice(-MAX_LOG_CHARS);
  };
  child.stdout.on("data", keep);
  child.stderr.on("data", keep);
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (!stopped) {
      stopped = true;
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGTERM");
        const grace = setTimeout(() => child.kill("SIGKILL"), STOP_GRACE_MS);
        await exited;
        clearTimeout(grace);
      }
      running.delete(child);
      rmSync(dir, { recursive: true, force: true });
      storageDirs.delete(dir);
    }
    await exited;
  };

  const url = `http://127.0.0.1:${webPort}`;
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      await stop();
      throw new Error(`Alertmanager exited before it was ready:\n${log}`);
    }
    if (await answers200(`${url}/-/ready`)) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`Alertmanager not ready within ${READY_TIMEOUT_MS} ms:\n${log}`);
    }
    await sleep(50);
  }
  return { url, clusterAddress, log: () => log, stop };
}

async function answers200(url: string): Promise<boolean> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(1000) });
    await response.arrayBuffer();
    return response.status === 200;
  } catch {
    return false;
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** An alert as GET /api/v2/alerts reports it. */
export interface GettableAlert {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  startsAt: string;
  endsAt: string;
  updatedAt: string;
  fingerprint: string;
  generatorURL?: string;
  status: { state: "active" | "suppressed" | "unprocessed"; silencedBy: string[]; inhibitedBy: string[] };
}

/** GET /api/v2/alerts (by default only unresolved ones: Alertmanager never lists resolved alerts). */
export async function getAlerts(url: string, query = ""): Promise<GettableAlert[]> {
  const response = await fetch(`${url}/api/v2/alerts${query === "" ? "" : `?${query}`}`);
  if (!response.ok) throw new Error(`GET ${url}/api/v2/alerts: ${response.status} ${await response.text()}`);
  return (await response.json()) as GettableAlert[];
}

/** One notification of Alertmanager's webhook receiver (payload version 4). */
export interface WebhookNotification {
  version: string;
  status: "firing" | "resolved";
  receiver: string;
  groupKey: string;
  groupLabels: Record<string, string>;
  commonLabels: Record<string, string>;
  alerts: WebhookAlert[];
}

export interface Receiver {
  readonly url: string;
  /** Every notification received, in order of arrival. */
  readonly notifications: WebhookNotification[];
  /** Resolves with the notifications that match once there are `count` of them; rejects after `timeoutMs`. */
  waitFor(
    match: (n: WebhookNotification) => boolean,
    count?: number,
    timeoutMs?: number,
  ): Promise<WebhookNotification[]>;
  close(): Promise<void>;
}

/** A webhook receiver on loopback that keeps every JSON body posted to it. */
export async function startReceiver(): Promise<Receiver> {
  const notifications: WebhookNotification[] = [];
  const waiters = new Set<() => void>();
  const server: Server = createHttpServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      try {
        notifications.push(JSON.parse(Buffer.concat(chunks).toString("utf8")) as WebhookNotification);
        res.writeHead(200).end();
      } catch {
        res.writeHead(400).end();
      }
      waiters.forEach((wake) => wake());
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  const port = typeof address === "object" && address !== null ? address.port : 0;

  const waitFor: Receiver["waitFor"] = (match, count = 1, timeoutMs = 15_000) =>
    new Promise((resolve, reject) => {
      const check = (): void => {
        const found = notifications.filter(match);
        if (found.length < count) return;
        waiters.delete(check);
        clearTimeout(timer);
        resolve(found);
      };
      const timer = setTimeout(() => {
        waiters.delete(check);
        reject(
          new Error(
            `fewer than ${count} matching notifications within ${timeoutMs} ms; got: ${JSON.stringify(notifications)}`,
          ),
        );
      }, timeoutMs);
      waiters.add(check);
      check();
    });

  return {
    url: `http://127.0.0.1:${port}/hook`,
    notifications,
    waitFor,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
