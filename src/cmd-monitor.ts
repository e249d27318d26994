// `hb monitor`: load the config, bind UDP and the status endpoint, report `monitor.started` with
// the bound addresses, then run until SIGTERM/SIGINT. SIGHUP re-reads the config: a valid file is
// swapped in atomically, an invalid one is rejected with one event and the old config stays.

import { formatHostPort } from "./address.js";
import { addressFlag, flagOrEnv, parseFlags } from "./args.js";
import { type Config } from "./config.js";
import { ExitCode, HbError } from "./errors.js";
import type { Emit } from "./events.js";
import type { Io } from "./io.js";
import { loadConfig } from "./load-config.js";
import { createEventLog } from "./log.js";
import { Monitor } from "./monitor.js";
import { StatusServer } from "./status-server.js";
import { familyOf, udpSocket } from "./transport.js";
import { VERSION } from "./version.js";

export const MONITOR_USAGE = `usage: hb monitor [--config PATH] [--listen HOST:PORT] [--status HOST:PORT|off]

  --config PATH   the monitor's config (env HB_CONFIG; default /etc/hb/heartbeat.yaml)
  --listen ADDR   override the config's UDP address, e.g. 127.0.0.1:0 (0 = any free port)
  --status ADDR   override the config's HTTP status address, or "off"`;

export const DEFAULT_CONFIG_PATH = "/etc/hb/heartbeat.yaml";

function withOverrides(config: Config, listen: string | undefined, status: string | undefined): Config {
  return Object.freeze({
    ...config,
    listen: listen === undefined ? config.listen : addressFlag(listen, "--listen", MONITOR_USAGE, false),
    status:
      status === undefined
        ? config.status
        : status === "off"
          ? null
          : addressFlag(status, "--status", MONITOR_USAGE, false),
  });
}

export async function monitorCommand(args: readonly string[], io: Io): Promise<number> {
  const { values } = parseFlags(
    args,
    { config: { type: "string" }, listen: { type: "string" }, status: { type: "string" } },
    MONITOR_USAGE,
  );
  const path = flagOrEnv(values.config, io.env, "HB_CONFIG") ?? DEFAULT_CONFIG_PATH;
  const listenFlag = flagOrEnv(values.listen, io.env, "HB_LISTEN");
  const statusFlag = flagOrEnv(values.status, io.env, "HB_STATUS");
  const loaded = await loadConfig(path);
  loaded.config = withOverrides(loaded.config, listenFlag, statusFlag);
  const emit: Emit = createEventLog({ out: io.stdout, journal: io.journal });

  const socket = udpSocket(familyOf(loaded.config.listen.host));
  const monitor = new Monitor(loaded, { clock: io.clock, emit, socket });
  const listen = await monitor.listen();
  let statusServer: StatusServer | undefined;
  let statusAddress = "off";
  if (loaded.config.status !== null) {
    statusServer = new StatusServer(monitor);
    try {
      statusAddress = formatHostPort(await statusServer.listen(loaded.config.status));
    } catch (err) {
      await monitor.close();
      throw err;
    }
  }
  const summary = () => ({
    listen: formatHostPort(listen),
    status: statusAddress,
    nodes: monitor.nodeCount,
    version: VERSION,
  });

  let reloading = Promise.resolve();
  const reload = async (): Promise<void> => {
    try {
      const next = await loadConfig(path);
      next.config = withOverrides(next.config, listenFlag, statusFlag);
      monitor.reload(next);
    } catch (err) {
      const errors =
        err instanceof HbError && err.details.length > 0 ? [...err.details] : [(err as Error).message];
      emit("config.rejected", { errors });
    }
  };

  // Signal handlers go in before anything announces that the monitor is up: a SIGHUP sent the
  // moment monitor.started appears must reload, not hit the default action and kill us.
  const stopped = new Promise<number>((resolve) => {
    const unsubscribe: (() => void)[] = [];
    const stop = (signal: string): void => {
      unsubscribe.forEach((off) => off());
      emit("monitor.stopping", { ...summary(), signal });
      void Promise.all([monitor.close(), statusServer?.close()]).then(() => resolve(ExitCode.OK));
    };
    unsubscribe.push(
      io.onSignal("SIGHUP", () => {
        reloading = reloading.then(reload);
      }),
      io.onSignal("SIGTERM", () => stop("SIGTERM")),
      io.onSignal("SIGINT", () => stop("SIGINT")),
    );
  });
  emit("monitor.started", { ...summary(), config: path });
  return stopped;
}
