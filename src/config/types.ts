// The shape of a validated config: what the monitor is told to expect and how to judge it, with
// the built-in defaults. Data only: config/parse.ts builds it from YAML, config/load.ts adds the
// key files, and the monitor reads it. Every object of this shape is frozen.

import { formatDuration } from "../duration.js";
import { formatHostPort, type HostPort } from "../wire/address.js";

export const DEFAULT_STATUS_PORT = 26723;
export const DEFAULT_MAX_NODES = 100_000;
export const DEFAULT_FORGET_AFTER_MS = 3_600_000;
export const DEFAULT_RECEIVE_BUFFER_BYTES = 8 * 1024 * 1024;
/** A node's timeout when nothing sets it: this many intervals. */
export const TIMEOUT_INTERVALS = 10;
/** The longest a maintenance window (`hb maint`) may last when `maintenance.max_duration` is not set. */
export const DEFAULT_MAX_MAINTENANCE_MS = 7 * 86_400_000;

/** A Unix socket for the status endpoint (`status: /run/hb/status.sock` or `unix:PATH`). */
export interface SocketPath {
  readonly path: string;
}

export type StatusAddress = HostPort | SocketPath;

export type UnknownNodes = "accept" | "ignore";
export type AuthMode = "off" | "optional" | "required";

export interface Thresholds {
  readonly intervalMs: number;
  readonly timeoutMs: number;
  readonly lateMs: number;
  /**
   * `detector: { kind: phi, ... }`: the φ-accrual detector judges the node, with `late` and
   * `timeout` as its upper bounds; null: the fixed thresholds alone (`kind: fixed`, the default).
   */
  readonly phi: PhiSpec | null;
}

/**
 * The φ-accrual detector's settings (Hayashibara et al.; the semantics of Akka's and Pekko's
 * PhiAccrualFailureDetector): suspicion φ grows with the silence, measured against the mean and
 * standard deviation of the node's last `window` inter-arrival times.
 */
export interface PhiSpec {
  /** Down once φ reaches this (or at `timeout`, if that comes first). */
  readonly threshold: number;
  /** Late once φ reaches this (or at `late`); below `threshold`. */
  readonly lateThreshold: number;
  /** The standard deviation is never taken as smaller than this. */
  readonly minStdMs: number;
  /** Added to the mean: silence this much longer than usual raises no suspicion. */
  readonly acceptablePauseMs: number;
  /** How many of the last inter-arrival times are kept (at least 2). */
  readonly window: number;
}

export const DEFAULT_PHI: PhiSpec = Object.freeze({
  threshold: 8,
  lateThreshold: 3,
  minStdMs: 100,
  acceptablePauseMs: 0,
  window: 1000,
});

export interface NodeSpec extends Thresholds {
  readonly id: string;
  readonly paused: boolean;
  /** The key ids this node may sign with; null: any key in the keyring. */
  readonly keys: ReadonlySet<string> | null;
  /** Travel with every notice about the node (`nodes.ID.labels`); null when it has none. */
  readonly labels: Readonly<Record<string, string>> | null;
  /**
   * The listed nodes this one depends on (`nodes.ID.parents`, else `defaults.parents`): while one
   * of them is down, flapping or just back, this node's down does not page. Empty when none.
   */
  readonly parents: readonly string[];
}

export interface KeySpec {
  readonly id: string;
  /** As written in the config; relative paths are relative to the config file. */
  readonly path: string;
  readonly line: number;
  readonly col: number;
}

export interface Config {
  readonly file: string;
  readonly listen: HostPort;
  readonly status: StatusAddress | null;
  readonly defaults: Thresholds;
  readonly startupGraceMs: number;
  readonly unknownNodes: UnknownNodes;
  readonly auth: AuthMode;
  readonly keys: readonly KeySpec[];
  readonly nodes: ReadonlyMap<string, NodeSpec>;
  /** Most nodes tracked at once; unlisted senders beyond it are refused. */
  readonly maxNodes: number;
  /** Unlisted nodes down or left this long are forgotten. */
  readonly forgetAfterMs: number;
  /** The UDP receive buffer asked of the kernel. */
  readonly receiveBufferBytes: number;
  /** Where notices go besides the journal. */
  readonly notify: readonly NotifySpec[];
  /** The monitors of the site, when there are several. */
  readonly cluster: ClusterSpec | null;
  /** For each node that is a parent, the listed nodes that have it among their parents, by id. */
  readonly children: ReadonlyMap<string, readonly string[]>;
  readonly maintenance: MaintenanceSpec;
}

/** `maintenance:`: the bound on runtime windows, and the recurring windows. */
export interface MaintenanceSpec {
  /** The longest a window made with `hb maint` may last. */
  readonly maxDurationMs: number;
  readonly windows: readonly RecurringWindowSpec[];
}

/** A window that comes back on a schedule (`maintenance.windows`). */
export interface RecurringWindowSpec {
  readonly name: string;
  /** Selector texts (see selectors.ts), each checked with parseSelector. */
  readonly match: readonly string[];
  /** As written; config/schedule.ts's parseSchedule reads it. */
  readonly schedule: string;
  /** The IANA time zone the schedule is read in. */
  readonly timezone: string;
  readonly line: number;
  readonly col: number;
}

/** What every notify output has, whatever it delivers to. */
export interface NotifyCommon {
  readonly name: string;
  /** The events it carries; null: the default set (see notify/events.ts). */
  readonly on: ReadonlySet<string> | null;
  /** One delivery's time limit (a hook is killed, a request aborted). */
  readonly timeoutMs: number;
  /** Most notices waiting for it; past that the oldest are dropped (counted, reported). */
  readonly queue: number;
  /** Most attempts of one delivery when it may succeed later (EX_TEMPFAIL, network, 5xx). */
  readonly attempts: number;
  readonly line: number;
  readonly col: number;
}

export interface ExecOutputSpec extends NotifyCommon {
  readonly kind: "exec";
  /** The hook and its arguments, run without a shell; argv[0] is an absolute path. */
  readonly argv: readonly string[];
}

export interface WebhookOutputSpec extends NotifyCommon {
  readonly kind: "webhook";
  readonly url: string;
  /** hb: the notices as JSON; alertmanager: Alertmanager's webhook payload (version "4"). */
  readonly format: "hb" | "alertmanager";
  /** A key id of `keys`: each request carries an HMAC-SHA-256 signature made with it. */
  readonly signWith: string | null;
}

export interface AlertmanagerOutputSpec extends NotifyCommon {
  readonly kind: "alertmanager";
  /** Base URLs of every Alertmanager of the site; each gets every alert. */
  readonly urls: readonly string[];
  /** How often firing alerts (and recently resolved ones) are sent again. */
  readonly resendMs: number;
  /** Base of each alert's generatorURL (the node's status); null: derived from `status`. */
  readonly generatorUrl: string | null;
}

export type NotifySpec = ExecOutputSpec | WebhookOutputSpec | AlertmanagerOutputSpec;

export interface ConfigProblem {
  readonly line: number;
  readonly col: number;
  readonly message: string;
}

export type ParseResult =
  | {
      ok: true;
      config: Config;
      warnings: ConfigProblem[];
      /** Parsing one half of a file: the parents it names that it does not list. */
      unresolved?: string[];
    }
  | { ok: false; problems: ConfigProblem[] };

export function formatProblem(file: string, problem: ConfigProblem): string {
  return `${file}:${problem.line}:${problem.col}: ${problem.message}`;
}

/** "127.0.0.1:26723", "unix:/run/hb/status.sock" or "off". */
export function formatStatusAddress(address: StatusAddress | null): string {
  if (address === null) return "off";
  return "path" in address ? `unix:${address.path}` : formatHostPort(address);
}

/** "fixed", or "phi (threshold 8, late_threshold 3, min_std 100ms, acceptable_pause 0ms, window 1000)". */
export function formatDetector(phi: PhiSpec | null): string {
  if (phi === null) return "fixed";
  return `phi (threshold ${phi.threshold}, late_threshold ${phi.lateThreshold}, min_std ${formatDuration(phi.minStdMs)}, acceptable_pause ${formatDuration(phi.acceptablePauseMs)}, window ${phi.window})`;
}

/** Monitors of one site that watch each other (`cluster:`). */
export interface ClusterSpec {
  /** This monitor's id; null: given at start (--id, HB_MONITOR_ID), else the host name. */
  readonly self: string | null;
  /** Every monitor of the site, in rank order: the first one up speaks (speak: leader). */
  readonly monitors: readonly { readonly id: string; readonly address: HostPort }[];
  /** Peer heartbeats: how often, and when a silent peer is late and down. */
  readonly intervalMs: number;
  readonly lateMs: number;
  readonly timeoutMs: number;
  /** leader: the lowest-ranked monitor up in this one's view runs the outputs; all: every one does. */
  readonly speak: "leader" | "all";
  /** The key id peer heartbeats are signed with (always: peer traffic is authenticated). */
  readonly key: string;
  /** A monitor just started speaks only once it has heard its peers or this long has passed. */
  readonly settleMs: number;
  /** The leader also beats, as node `id`, to an upstream hb monitor: the site is one of its nodes. */
  readonly upstream: { readonly monitor: HostPort; readonly id: string; readonly key: string | null } | null;
}
