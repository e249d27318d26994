// `hb monitor`: the process around a monitor (daemon/assemble.ts puts the monitor together): flags
// and the config's first load, signals (SIGTERM/SIGINT stop it, SIGHUP reloads the config),
// systemd's readiness, status line and watchdog, and the exit code. Events go to stdout.

import { hostname } from "node:os";
import type { Timer } from "../clock.js";
import { DEFAULT_CONFIG_PATH, type LoadedConfig } from "../config/load.js";
import { loadConfigOnTwoThreads } from "../config/load-off-thread.js";
import { exposureWarning, parseStatusAddress } from "../config/parse.js";
import type { StatusAddress } from "../config/types.js";
import { assembleMonitor } from "../daemon/assemble.js";
import { ExitCode } from "../errors.js";
import { createEventLog } from "../log.js";
import { formatCounts } from "../monitor/status.js";
import { Notifier, watchdogIntervalMs } from "../systemd.js";
import { Throttle } from "../throttle.js";
import { udpSocket } from "../wire/udp.js";
import { addressFlag, flagOrEnv, parseFlags, stateDirFlag, usageError } from "./flags.js";
import type { Io } from "./io.js";

export const usage = `usage: hb monitor [--config PATH] [--listen HOST:PORT] [--status HOST:PORT|PATH|off] [--state-dir DIR] [--id ID]

  --config PATH   the monitor's config (env HB_CONFIG; default /etc/hb/heartbeat.yaml)
  --listen ADDR   override the config's UDP address, e.g. 127.0.0.1:0 (0 = any free port)
  --status ADDR   override the config's HTTP status address: HOST:PORT, a Unix socket path, or "off"
  --state-dir DIR where replay marks survive restarts (env HB_STATE_DIR or STATE_DIRECTORY)
  --id ID         this monitor's id in cluster.monitors when the config has no cluster.self
                  (env HB_MONITOR_ID; default the host name)`;

/** systemd's status line is refreshed at most this often. */
const STATUS_LINE_MS = 1000;

function statusFlag(text: string): StatusAddress {
  const parsed = parseStatusAddress(text);
  if (typeof parsed === "string") throw usageError(`--status: ${parsed}`, usage);
  return parsed;
}

/** The command line's addresses in place of the file's; a --listen address brings its own exposure warning. */
function withOverrides(loaded: LoadedConfig, listen: string | undefined, status: string | undefined): void {
  const config = loaded.config;
  loaded.config = Object.freeze({
    ...config,
    listen: listen === undefined ? config.listen : addressFlag(listen, "--listen", usage, false),
    status: status === undefined ? config.status : status === "off" ? null : statusFlag(status),
  });
  if (listen === undefined) return;
  const exposed = exposureWarning(loaded.config);
  loaded.warnings = exposed === null ? [] : [exposed];
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
  const notifier = Notifier.fromEnv(io.env);
  // Runs from a timer only, after `assembled` below exists (it opens nothing until bound).
  const statusLine = new Throttle(io.clock, STATUS_LINE_MS, () =>
    notifier?.status(formatCounts(assembled.monitor.counts())),
  );
  const assembled = assembleMonitor(loaded, {
    clock: io.clock,
    log: createEventLog({ out: io.stdout, journal: io.journal }),
    socket: udpSocket,
    pid: io.pid,
    stateDir,
    monitorId: flagOrEnv(values.id, io.env, "HB_MONITOR_ID") ?? hostname(),
    configPath: path,
    entry: io.entry,
    adjust: (loaded) => withOverrides(loaded, listenFlag, statusFlag),
    onEvent: (event) => {
      if (notifier !== null && (event.startsWith("node.") || event === "config.reloaded"))
        statusLine.trigger();
    },
    onReload: (phase) =>
      phase === "start"
        ? notifier?.send("RELOADING=1", `MONOTONIC_USEC=${Math.round(io.clock.monoMs() * 1000)}`)
        : notifier?.send("READY=1", `STATUS=${formatCounts(assembled.monitor.counts())}`),
  });
  await assembled.bind();

  // The watchdog is pinged from the loop that judges liveness, and only while the judging timer
  // is on time: a monitor whose loop hangs, or whose deadlines stopped firing, gets restarted.
  const watchdogMs = notifier === null ? undefined : watchdogIntervalMs(io.env, io.pid);
  let watchdog: Timer | undefined;
  const ping = (): void => {
    if (assembled.monitor.overdueMs() < (watchdogMs ?? 0)) notifier?.send("WATCHDOG=1");
    watchdog = io.clock.setTimeout(ping, watchdogMs ?? 0);
  };

  // Signal handlers go in before anything announces that the monitor is up: a SIGHUP sent the
  // moment monitor.started appears must reload, not hit the default action and kill us.
  const stopped = new Promise<number>((resolve) => {
    const unsubscribe: (() => void)[] = [];
    const stop = (signal: string): void => {
      unsubscribe.forEach((off) => off());
      notifier?.send("STOPPING=1");
      if (watchdog !== undefined) io.clock.clearTimeout(watchdog);
      statusLine.cancel();
      void Promise.all([assembled.stop(signal), notifier?.flush()]).then(() => resolve(ExitCode.OK));
    };
    unsubscribe.push(
      io.onSignal("SIGHUP", () => void assembled.reload()),
      io.onSignal("SIGTERM", () => stop("SIGTERM")),
      io.onSignal("SIGINT", () => stop("SIGINT")),
    );
  });
  assembled.start();
  // Ready only now: the UDP socket is bound, the config loaded, the signal handlers in place.
  notifier?.send("READY=1", `STATUS=${formatCounts(assembled.monitor.counts())}`, `MAINPID=${io.pid}`);
  if (watchdogMs !== undefined) ping();
  return stopped;
}
