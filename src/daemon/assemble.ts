// A running monitor, put together from a loaded config and what it needs from outside (clock,
// socket, journal, state directory): the Monitor, the notify outputs that its events feed, the
// status server that serves its documents and the operator's actions, and reloads. `hb monitor`
// runs one under signals and systemd; tests build one in process on a fake clock and socket.

import { hostname } from "node:os";
import type { Clock } from "../clock.js";
import type { LoadedConfig } from "../config/load.js";
import { formatStatusAddress, type StatusAddress } from "../config/types.js";
import type { Emit, EventName } from "../events.js";
import { StatusServer } from "../monitor/http.js";
import { Metrics } from "../monitor/metrics.js";
import { Monitor } from "../monitor/monitor.js";
import { StateDir } from "../monitor/state-dir.js";
import { Notify, type NotifyDeps } from "../notify/notify.js";
import { POLICY_FILE, PolicyLayer } from "../policy/layer.js";
import { PAGED_RULE, readPaged, type Paged } from "../policy/policy.js";
import { WINDOW_RULE, readWindow, windowRecord } from "../policy/windows.js";
import { VERSION } from "../version.js";
import { formatHostPort } from "../wire/address.js";
import { familyOf, type DatagramSocket } from "../wire/udp.js";
import { Reloads } from "./reloads.js";

export interface AssemblyDeps {
  clock: Clock;
  /** The journal: every event is written here, then offered to the notify outputs. */
  log: Emit;
  /** The heartbeat socket, for the config's address family. */
  socket(family: "udp4" | "udp6"): DatagramSocket;
  pid: number;
  /** Where replay marks survive restarts; undefined: nowhere. */
  stateDir: string | undefined;
  /** This monitor's id in `cluster.monitors` when the config has no `cluster.self`. */
  monitorId: string;
  /** The config file, which each reload reads again on a worker thread started on `entry`. */
  configPath: string;
  entry: URL;
  /** What the command line changes in every config loaded, the first and each reload's. */
  adjust?: (loaded: LoadedConfig) => void;
  /** Told of every event once it is written (systemd's status line). */
  onEvent?: (event: EventName) => void;
  /** Told when a reload starts, and when its outcome is recorded (not when a stop cuts it short). */
  onReload?: (phase: "start" | "done") => void;
  /** Reads the kernel's drop counter for a local UDP port (default: /proc/net/udp). */
  kernelDrops?: (port: number) => number | null;
  /** Makes each `notify:` entry's output; by default the one of its kind. */
  makeOutput?: NotifyDeps["makeOutput"];
}

/** A monitor put together: `bind` opens it, `start` announces it. */
export interface AssembledMonitor {
  readonly monitor: Monitor;
  readonly notify: Notify;
  readonly policy: PolicyLayer;
  /** The bound UDP address, host:port ("" until bound). */
  readonly listen: string;
  /** The bound status address, as configured until bound (`off` when there is none). */
  readonly status: string;
  /** Binds the heartbeat socket and the status endpoint, and takes in the config's outputs. */
  bind(): Promise<void>;
  /** Writes `monitor.started`, then what there is to warn of at start. */
  start(): void;
  /** Re-reads the config; while one runs, the calls made meanwhile are served by one next reload. */
  reload(): Promise<void>;
  /** Writes `monitor.stopping`, cuts a reload short, and closes the socket, endpoint and outputs. */
  stop(signal: string): Promise<void>;
}

/** The status endpoint's base URL as others can reach it (links in alerts); null for a Unix socket. */
function statusUrl(configured: StatusAddress | null, bound: string): string | null {
  if (configured === null || "path" in configured) return null;
  const port = /:(\d+)$/.exec(bound)?.[1] ?? String(configured.port);
  const host = configured.host === "0.0.0.0" || configured.host === "::" ? hostname() : configured.host;
  return `http://${host.includes(":") ? `[${host}]` : host}:${port}`;
}

/** Builds the parts, and opens nothing: events can only come once `bind` has run. */
export function assembleMonitor(loaded: LoadedConfig, deps: AssemblyDeps): AssembledMonitor {
  deps.adjust?.(loaded);
  loaded.monitorId = deps.monitorId;
  const config = loaded.config;
  // Every event goes to the journal, then to the notify outputs that carry it (none until the
  // config's outputs are taken in below).
  const notify = new Notify({
    clock: deps.clock,
    log: deps.log,
    monitor: config.cluster?.self ?? deps.monitorId,
    forEachNode: (from, max, visit) => monitor.forEachNode(from, max, visit),
    ...(config.cluster !== null
      ? {
          cluster: {
            speaking: () => monitor.peers?.speaking() ?? true,
            peerFacts: (peer: string) => monitor.peers?.facts(peer) ?? null,
            downPeers: () => monitor.peers?.downPeers() ?? [],
          },
        }
      : {}),
    facts: (node) => monitor.facts(node),
    isDown: (node) => monitor.isDown(node),
    statusUrl: () => statusUrl(config.status, statusAddress),
    ...(deps.makeOutput === undefined ? {} : { makeOutput: deps.makeOutput }),
  });
  const emit: Emit = (event, fields) => {
    notify.emit(event, fields);
    deps.onEvent?.(event);
  };
  const stateDir = deps.stateDir === undefined ? undefined : new StateDir(deps.stateDir);
  const monitor = new Monitor(loaded, {
    clock: deps.clock,
    emit,
    socket: deps.socket(familyOf(config.listen.host)),
    pid: deps.pid,
    stateDir,
    onSpeaking: (speaking) => notify.speakingChanged(speaking),
    ...(deps.kernelDrops === undefined ? {} : { kernelDrops: deps.kernelDrops }),
  });
  // Between the events and the outputs: what pages. Its windows and pages are read before the
  // socket is bound (bind below), so that a restart never pages what a window covers.
  let current = config;
  // In a cluster the windows and the pages are maps the monitors keep alike (monitor/replica.ts).
  const peers = monitor.peers;
  const shared =
    peers === null
      ? undefined
      : {
          windows: peers.replica("maint", {
            ...WINDOW_RULE,
            encode: windowRecord,
            decode: readWindow,
          }),
          paged: peers.replica("paged", { ...PAGED_RULE, encode: (p: Paged) => p, decode: readPaged }),
        };
  const policy = new PolicyLayer({
    clock: deps.clock,
    emit,
    config: () => current,
    monitor: notify.monitor,
    file: stateDir?.file(POLICY_FILE) ?? null,
    state: (node) => monitor.stateOf(node),
    facts: (node) => monitor.facts(node),
    forEachNode: (from, max, visit) => monitor.forEachNode(from, max, visit),
    offer: (event, fields) => notify.offerLater(event, fields),
    ...(shared === undefined
      ? {}
      : {
          shared,
          fits: (w) => shared.windows.fits(w.id, windowRecord({ ...w, endedAt: w.endsAt, rev: 999_999 })),
        }),
  });
  notify.policy = policy.policy;
  monitor.annotate = (node, state) => policy.policy.annotate(node, state);
  let listen = "";
  let statusAddress = formatStatusAddress(config.status);
  // A status address that cannot be bound is retried with backoff: detection is the job. What
  // happens before `monitor.started` is told after it.
  let started = false;
  const statusProblems: string[] = [];
  const statusProblem = (detail: string): void => {
    if (started) monitor.warn("status", detail);
    else statusProblems.push(detail);
  };
  const source = {
    statusBody: monitor.statusBody.bind(monitor),
    reloadStatus: monitor.reloadStatus.bind(monitor),
    forget: monitor.forget.bind(monitor),
    notifyTest: (output: string) => notify.test(output),
    maintList: () => policy.maint.list(),
    maintAdd: (_arg: string, body: unknown) => policy.maint.add(body),
    maintExtend: (_arg: string, body: unknown) => policy.maint.extend(body),
    maintEnd: (_arg: string, body: unknown) => policy.maint.end(body),
    capture: monitor.capture.bind(monitor),
  };
  const statusServer =
    config.status === null
      ? undefined
      : new StatusServer(
          source,
          new Metrics(monitor, notify, {
            suppressed: () => policy.suppressed(),
            nodesInMaintenance: () => policy.nodesInMaintenance(),
            windows: () => policy.windowCounts(),
          }),
          {
            clock: deps.clock,
            datagramsRead: () => monitor.datagramCounters().received,
          },
        );

  const reloads = new Reloads(loaded, {
    ...deps,
    monitor,
    notify,
    onConfig: (next) => {
      current = next;
      policy.configure(next);
    },
  });
  const summary = () => ({ listen, status: statusAddress, nodes: monitor.nodeCount, version: VERSION });
  return {
    monitor,
    notify,
    policy,
    get listen() {
      return listen;
    },
    get status() {
      return statusAddress;
    },
    async bind(): Promise<void> {
      await policy.load();
      listen = formatHostPort(await monitor.listen());
      if (statusServer !== undefined && config.status !== null) {
        statusAddress =
          (await statusServer.serve(
            config.status,
            (err, retryMs) => statusProblem(`${err.message}; retrying in ${retryMs} ms`),
            (bound) => statusProblem(`${bound} is listening now`),
          )) ?? statusAddress;
      }
      notify.configure(config.notify, loaded.keyring);
    },
    start(): void {
      emit("monitor.started", { ...summary(), config: deps.configPath });
      started = true;
      for (const detail of statusProblems) monitor.warn("status", detail);
      for (const [problem, detail] of monitor.startupWarnings()) monitor.warn(problem, detail);
      reloads.warn(loaded);
      if (deps.stateDir === undefined && config.auth !== "off") {
        monitor.warn(
          "replay_marks",
          "no state directory (--state-dir): after a restart, datagrams captured before it can be replayed",
        );
      }
    },
    reload: () => reloads.next(),
    async stop(signal: string): Promise<void> {
      reloads.stopping = true;
      emit("monitor.stopping", { ...summary(), signal });
      // A capture's trace goes out through the status server: finished before that closes.
      await monitor.endCapture();
      policy.stop();
      await Promise.all([
        monitor.close(),
        statusServer?.close(),
        notify.close(),
        policy.save().catch(() => undefined),
      ]);
    },
  };
}
