// `hb monitor`: load the config, bind UDP and the status endpoint, report `monitor.started` with
// the bound addresses, then run until SIGTERM/SIGINT. SIGHUP re-reads the config: a valid file is
// swapped in atomically, an invalid one is rejected with one event and the old config stays.

import { hostname } from "node:os";
import { setImmediate as nextTurn } from "node:timers/promises";
import type { Timer } from "../clock.js";
import { DEFAULT_CONFIG_PATH, firstLines, type LoadedConfig } from "../config/load.js";
import { loadConfigOffThread, loadConfigOnTwoThreads } from "../config/load-off-thread.js";
import { exposureWarning, parseStatusAddress } from "../config/parse.js";
import { formatStatusAddress, type Config, type StatusAddress } from "../config/types.js";
import { ExitCode, HbError } from "../errors.js";
import type { Emit } from "../events.js";
import { createEventLog } from "../log.js";
import { StatusServer } from "../monitor/http.js";
import { Metrics } from "../monitor/metrics.js";
import { Monitor } from "../monitor/monitor.js";
import { formatCounts } from "../monitor/status.js";
import { Notify } from "../notify/notify.js";
import { Notifier, watchdogIntervalMs } from "../systemd.js";
import { Throttle } from "../throttle.js";
import { VERSION } from "../version.js";
import { formatHostPort } from "../wire/address.js";
import { familyOf, udpSocket } from "../wire/udp.js";
import { addressFlag, flagOrEnv, parseFlags, stateDirFlag, usageError } from "./flags.js";
import type { Io } from "./io.js";

export const usage = `usage: hb monitor [--config PATH] [--listen HOST:PORT] [--status HOST:PORT|PATH|off] [--state-dir DIR] [--id ID]

  --config PATH   the monitor's config (env HB_CONFIG; default /etc/hb/heartbeat.yaml)
  --listen ADDR   override the config's UDP address, e.g. 127.0.0.1:0 (0 = any free port)
  --status ADDR   override the config's HTTP status address: HOST:PORT, a Unix socket path, or "off"
  --state-dir DIR where replay marks survive restarts (env HB_STATE_DIR or STATE_DIRECTORY)
  --id ID         this monitor's id in cluster.monitors when the config has no cluster.self
                  (env HB_MONITOR_ID; default the host name)`;

/** A rejected reload's event lists at most this many problems (a broken 100 000-node file has more). */
const MAX_REJECTED_LINES = 100;
/** systemd's status line is refreshed at most this often. */
const STATUS_LINE_MS = 1000;

function statusFlag(text: string): StatusAddress {
  const parsed = parseStatusAddress(text);
  if (typeof parsed === "string") throw usageError(`--status: ${parsed}`, usage);
  return parsed;
}

function withOverrides(config: Config, listen: string | undefined, status: string | undefined): Config {
  return Object.freeze({
    ...config,
    listen: listen === undefined ? config.listen : addressFlag(listen, "--listen", usage, false),
    status: status === undefined ? config.status : status === "off" ? null : statusFlag(status),
  });
}

/** The status endpoint's base URL as others can reach it (links in alerts); null for a Unix socket. */
function statusUrl(configured: StatusAddress | null, bound: string): string | null {
  if (configured === null || "path" in configured) return null;
  const port = /:(\d+)$/.exec(bound)?.[1] ?? String(configured.port);
  const host = configured.host === "0.0.0.0" || configured.host === "::" ? hostname() : configured.host;
  return `http://${host.includes(":") ? `[${host}]` : host}:${port}`;
}

export const flags = {
  config: { type: "string" },
  listen: { type: "string" },
  status: { type: "string" },
  "state-dir": { type: "string" },
  id: { type: "string" },
} as const;

export async function run(args: readonly string[], io: Io): Promise<number> {
  const { values } = parseFlags(args, flags, usage);
  const path = flagOrEnv(values.config, io.env, "HB_CONFIG") ?? DEFAULT_CONFIG_PATH;
  const listenFlag = flagOrEnv(values.listen, io.env, "HB_LISTEN");
  const statusFlag = flagOrEnv(values.status, io.env, "HB_STATUS");
  const stateDir = stateDirFlag(values["state-dir"], io.env);
  // Nothing runs yet that a blocked loop would delay: parse a large file on both cores.
  const loaded = await loadConfigOnTwoThreads(io.entry, path);
  loaded.config = withOverrides(loaded.config, listenFlag, statusFlag);
  const monitorId = flagOrEnv(values.id, io.env, "HB_MONITOR_ID") ?? hostname();
  loaded.monitorId = monitorId;
  const clustered = loaded.config.cluster !== null;
  const log: Emit = createEventLog({ out: io.stdout, journal: io.journal });
  const notifier = Notifier.fromEnv(io.env);
  // Runs from a timer only, after `running` below exists.
  const statusLine = new Throttle(io.clock, STATUS_LINE_MS, () =>
    notifier?.status(formatCounts(running.counts())),
  );
  // Every event goes to the journal, then to the notify outputs that carry it (none until the
  // config's outputs are taken in below).
  const notify = new Notify({
    clock: io.clock,
    log,
    monitor: loaded.config.cluster?.self ?? monitorId,
    forEachNode: (from, max, visit) => running.forEachNode(from, max, visit),
    ...(clustered
      ? {
          cluster: {
            speaking: () => running.peers?.speaking() ?? true,
            peerFacts: (peer: string) => running.peers?.facts(peer) ?? null,
            downPeers: () => running.peers?.downPeers() ?? [],
          },
        }
      : {}),
    facts: (node) => running.facts(node),
    isDown: (node) => running.isDown(node),
    statusUrl: () => statusUrl(loaded.config.status, statusAddress),
  });
  const emit: Emit = (event, fields) => {
    notify.emit(event, fields);
    if (notifier !== null && (event.startsWith("node.") || event === "config.reloaded")) statusLine.trigger();
  };

  const running = new Monitor(loaded, {
    clock: io.clock,
    emit,
    socket: udpSocket(familyOf(loaded.config.listen.host)),
    pid: io.pid,
    stateDir,
    onSpeaking: (speaking) => notify.speakingChanged(speaking),
  });
  // A --listen override replaces the file's address, and with it the file's exposure warning.
  const warn = (next: LoadedConfig): void => {
    const warnings = listenFlag === undefined ? (next.warnings ?? []) : [exposureWarning(next.config)];
    for (const detail of warnings) if (detail !== null) running.warn("config", detail);
    for (const detail of next.hookProblems ?? []) running.warn("notify", `${detail}: it will not be run`);
  };
  const listen = await running.listen();
  let statusServer: StatusServer | undefined;
  let statusAddress = formatStatusAddress(loaded.config.status);
  // A status address that cannot be bound is retried with backoff: detection is the job.
  let started = false;
  const statusProblems: string[] = [];
  const statusProblem = (detail: string): void => {
    if (started) running.warn("status", detail);
    else statusProblems.push(detail);
  };
  if (loaded.config.status !== null) {
    const source = {
      statusBody: running.statusBody.bind(running),
      reloadStatus: running.reloadStatus.bind(running),
      forget: running.forget.bind(running),
      notifyTest: (output: string) => notify.test(output),
    };
    statusServer = new StatusServer(source, new Metrics(running, notify), {
      clock: io.clock,
      datagramsRead: () => running.datagramCounters().received,
    });
    statusAddress =
      (await statusServer.serve(
        loaded.config.status,
        (err, retryMs) => statusProblem(`${err.message}; retrying in ${retryMs} ms`),
        (bound) => statusProblem(`${bound} is listening now`),
      )) ?? statusAddress;
  }
  notify.configure(loaded.config.notify, loaded.keyring);
  const summary = () => ({
    listen: formatHostPort(listen),
    status: statusAddress,
    nodes: running.nodeCount,
    version: VERSION,
  });

  // Reloads run one at a time; SIGHUPs that arrive during one are served by a single next one,
  // which reads the file as it is by then.
  let reloading = Promise.resolve();
  let reloadQueued = false;
  let stopping = false;
  let current = loaded.config;
  // Between slices of a reload's work on this thread: the socket is emptied first.
  const rest = (): Promise<void> => running.emptySocket(() => nextTurn());
  const reload = async (): Promise<void> => {
    reloadQueued = false;
    notifier?.send("RELOADING=1", `MONOTONIC_USEC=${Math.round(io.clock.monoMs() * 1000)}`);
    try {
      // Read and parsed on another thread: the loop goes on receiving and judging meanwhile.
      const next = await loadConfigOffThread(io.entry, path, current, rest);
      if (stopping) return;
      next.config = withOverrides(next.config, listenFlag, statusFlag);
      next.monitorId = monitorId;
      // The cluster is read once, at start: the running peers keep theirs.
      if (JSON.stringify(next.config.cluster) !== JSON.stringify(current.cluster)) {
        running.warn("cluster", "cluster: changes take effect when the monitor restarts");
        next.config = Object.freeze({ ...next.config, cluster: current.cluster });
      }
      // A slice per turn; a stop while it is staged ends it unapplied, once applying it finishes.
      await running.reloadInTurns(next, () =>
        stopping ? Promise.reject(new Error("stopping")) : nextTurn(),
      );
      current = next.config;
      notify.configure(next.config.notify, next.keyring);
      // A rotated cluster key signs this monitor's heartbeats from now on, as it checks theirs.
      const clusterKey = current.cluster === null ? undefined : next.keyring.get(current.cluster.key);
      if (clusterKey !== undefined) running.peers?.rekey(clusterKey);
      warn(next);
    } catch (err) {
      if (stopping) return;
      const errors =
        err instanceof HbError && err.details.length > 0 ? err.details : [(err as Error).message];
      running.rejectReload(firstLines(errors, MAX_REJECTED_LINES));
    }
    notifier?.send("READY=1", `STATUS=${formatCounts(running.counts())}`);
  };

  // The watchdog is pinged from the loop that judges liveness, and only while the judging timer
  // is on time: a monitor whose loop hangs, or whose deadlines stopped firing, gets restarted.
  const watchdogMs = notifier === null ? undefined : watchdogIntervalMs(io.env, io.pid);
  let watchdog: Timer | undefined;
  const ping = (): void => {
    if (running.overdueMs() < (watchdogMs ?? 0)) notifier?.send("WATCHDOG=1");
    watchdog = io.clock.setTimeout(ping, watchdogMs ?? 0);
  };

  // Signal handlers go in before anything announces that the monitor is up: a SIGHUP sent the
  // moment monitor.started appears must reload, not hit the default action and kill us.
  const stopped = new Promise<number>((resolve) => {
    const unsubscribe: (() => void)[] = [];
    const stop = (signal: string): void => {
      stopping = true;
      unsubscribe.forEach((off) => off());
      notifier?.send("STOPPING=1");
      if (watchdog !== undefined) io.clock.clearTimeout(watchdog);
      statusLine.cancel();
      emit("monitor.stopping", { ...summary(), signal });
      void Promise.all([running.close(), statusServer?.close(), notifier?.flush(), notify.close()]).then(() =>
        resolve(ExitCode.OK),
      );
    };
    unsubscribe.push(
      io.onSignal("SIGHUP", () => {
        if (reloadQueued) return;
        reloadQueued = true;
        reloading = reloading.then(reload);
      }),
      io.onSignal("SIGTERM", () => stop("SIGTERM")),
      io.onSignal("SIGINT", () => stop("SIGINT")),
    );
  });
  emit("monitor.started", { ...summary(), config: path });
  started = true;
  for (const detail of statusProblems) running.warn("status", detail);
  for (const [problem, detail] of running.startupWarnings()) running.warn(problem, detail);
  warn(loaded);
  if (stateDir === undefined && loaded.config.auth !== "off") {
    running.warn(
      "replay_marks",
      "no state directory (--state-dir): after a restart, datagrams captured before it can be replayed",
    );
  }
  // Ready only now: the UDP socket is bound, the config loaded, the signal handlers in place.
  notifier?.send("READY=1", `STATUS=${formatCounts(running.counts())}`, `MAINPID=${io.pid}`);
  if (watchdogMs !== undefined) ping();
  return stopped;
}
