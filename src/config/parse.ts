// YAML text -> validated, defaulted, frozen Config. Every problem is reported with the file,
// line and column of the key at fault, all at once (not just the first). Unknown keys are errors.
// A value a node leaves out is derived from what that node does set (timeout = 10 x interval,
// late = timeout / 2); only what it derives from nothing comes from `defaults`. Checks that need
// every node (parents) are left out for one half of a file, whose merge makes them (split.ts).

import { LineCounter, isScalar, parseDocument, type Node, type Pair } from "yaml";
import { parseHostPort, type HostPort } from "../wire/address.js";
import { DEFAULT_INTERVAL_MS, DEFAULT_PORT, isId, MAX_ID_BYTES, MAX_KEY_ID_BYTES } from "../wire/protocol.js";
import { CLUSTER_KEYS, UPSTREAM_KEYS, parseCluster, type ParsedCluster } from "./cluster.js";
import { DETECTOR_KEYS, parseDetector } from "./detector.js";
import { MAINTENANCE_KEYS, NO_MAINTENANCE, WINDOW_KEYS, parseMaintenance } from "./maintenance.js";
import { NOTIFY_KEYS, parseLabels, parseNotify } from "./notify.js";
import { NO_PARENTS, childrenOf, findCycles, parentsOf, readParents } from "./parents.js";
import { Reader, quote, type PartialThresholds } from "./reader.js";
import {
  DEFAULT_FORGET_AFTER_MS,
  DEFAULT_MAX_NODES,
  DEFAULT_RECEIVE_BUFFER_BYTES,
  DEFAULT_STATUS_PORT,
  TIMEOUT_INTERVALS,
  type AuthMode,
  type Config,
  type ConfigProblem,
  type KeySpec,
  type MaintenanceSpec,
  type NodeSpec,
  type ParseResult,
  type PhiSpec,
  type StatusAddress,
  type Thresholds,
  type UnknownNodes,
} from "./types.js";

/** The keys the config accepts at the top level, in `defaults` and in each node (in this order). */
export const TOP_KEYS: readonly string[] = [
  "listen",
  "status",
  "defaults",
  "startup_grace",
  "unknown_nodes",
  "max_nodes",
  "forget_after",
  "receive_buffer",
  "auth",
  "keys",
  "nodes",
  "notify",
  "cluster",
  "maintenance",
];
export const THRESHOLD_KEYS: readonly string[] = ["interval", "timeout", "late"];
export const DEFAULTS_KEYS: readonly string[] = [...THRESHOLD_KEYS, "detector", "parents"];
export const NODE_KEYS: readonly string[] = [
  ...THRESHOLD_KEYS,
  "detector",
  "paused",
  "keys",
  "labels",
  "parents",
];

/**
 * Every key the config accepts, as a path: `defaults.late`, `nodes.ID.paused`, `notify[].on`,
 * `cluster.upstream.key`. Maps of names (`keys`, `nodes`, `cluster.monitors`, labels) are one
 * key each. What the documentation lists (a test holds it to this).
 */
export const CONFIG_KEYS: readonly string[] = [
  ...TOP_KEYS,
  ...DEFAULTS_KEYS.map((k) => `defaults.${k}`),
  ...DETECTOR_KEYS.map((k) => `defaults.detector.${k}`),
  ...NODE_KEYS.map((k) => `nodes.ID.${k}`),
  ...DETECTOR_KEYS.map((k) => `nodes.ID.detector.${k}`),
  ...NOTIFY_KEYS.map((k) => `notify[].${k}`),
  ...CLUSTER_KEYS.map((k) => `cluster.${k}`),
  ...UPSTREAM_KEYS.map((k) => `cluster.upstream.${k}`),
  ...MAINTENANCE_KEYS.map((k) => `maintenance.${k}`),
  ...WINDOW_KEYS.map((k) => `maintenance.windows[].${k}`),
];

function resolve(own: PartialThresholds, inherited: Thresholds): Thresholds {
  const intervalMs = own.interval ?? inherited.intervalMs;
  const timeoutMs =
    own.timeout ?? (own.interval !== undefined ? TIMEOUT_INTERVALS * intervalMs : inherited.timeoutMs);
  const derivesLate = own.timeout !== undefined || own.interval !== undefined;
  const lateMs = own.late ?? (derivesLate ? Math.floor(timeoutMs / 2) : inherited.lateMs);
  const phi = own.phi !== undefined ? own.phi : inherited.phi;
  return { intervalMs, timeoutMs, lateMs, phi };
}

const BUILT_IN: Thresholds = {
  intervalMs: DEFAULT_INTERVAL_MS,
  timeoutMs: TIMEOUT_INTERVALS * DEFAULT_INTERVAL_MS,
  lateMs: (TIMEOUT_INTERVALS * DEFAULT_INTERVAL_MS) / 2,
  phi: null,
};

export interface ParseOptions {
  /**
   * `text` is one half of a file (config/split.ts): parents listed in the other half are not
   * problems here but `unresolved` in the result, for the merge to check with the cycles.
   */
  readonly half?: boolean;
}

export function parseConfig(text: string, file: string, options: ParseOptions = {}): ParseResult {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: false });
  const r = new Reader(text, lines);
  for (const error of doc.errors) {
    const pos = lines.linePos(error.pos[0]);
    r.problems.push({ line: pos.line, col: pos.col, message: error.message.split("\n")[0]! });
  }
  if (r.problems.length > 0) return { ok: false, problems: r.problems };

  let listen: HostPort = { host: "0.0.0.0", port: DEFAULT_PORT };
  let status: StatusAddress | null = { host: "127.0.0.1", port: DEFAULT_STATUS_PORT };
  const ownDefaults: PartialThresholds = {};
  let defaultsAt: Node | null = null;
  let startupGraceMs: number | undefined;
  let unknownNodes: UnknownNodes = "accept";
  let maxNodes = DEFAULT_MAX_NODES;
  let forgetAfterMs = DEFAULT_FORGET_AFTER_MS;
  let receiveBufferBytes = DEFAULT_RECEIVE_BUFFER_BYTES;
  let listenAt: Node | null = null;
  let auth: AuthMode | undefined;
  let authAt: Node | null = null;
  const keys: KeySpec[] = [];
  let nodesPair: Pair | undefined;
  let notifyPair: Pair | undefined;
  let clusterPair: Pair | undefined;
  let maintenance: MaintenanceSpec = NO_MAINTENANCE;
  let defaultParents: readonly string[] = NO_PARENTS;
  let defaultParentsAt: readonly Node[] = [];

  for (const [name, pair] of r.pairs(doc.contents, null, "the config", TOP_KEYS)) {
    switch (name) {
      case "listen":
        listen = r.address(pair, name, false) ?? listen;
        listenAt = pair.key as Node;
        break;
      case "max_nodes":
        maxNodes = r.integer(pair, name, 1) ?? maxNodes;
        break;
      case "forget_after":
        forgetAfterMs = r.duration(pair, name) ?? forgetAfterMs;
        break;
      case "receive_buffer":
        receiveBufferBytes = r.size(pair, name) ?? receiveBufferBytes;
        break;
      case "status": {
        const text = isScalar(pair.value) ? pair.value.value : undefined;
        if (typeof text === "string" && isSocketText(text)) {
          const parsed = parseStatusAddress(text);
          if (typeof parsed === "string") r.report(pair.value as Node, `status: ${parsed}`);
          else status = parsed;
          break;
        }
        const value = r.address(pair, name, true);
        if (value !== undefined) status = value;
        break;
      }
      case "defaults":
        defaultsAt = pair.key as Node;
        for (const [key, keyPair] of r.pairs(pair.value, defaultsAt, "defaults", DEFAULTS_KEYS)) {
          if (key === "parents") {
            const { ids, at } = readParents(r, keyPair, "defaults.parents", null);
            defaultParents = Object.freeze(ids);
            defaultParentsAt = at;
          } else if (key === "detector") {
            const phi = parseDetector(r, keyPair, "defaults");
            if (phi !== undefined) ownDefaults.phi = phi;
          } else r.threshold(ownDefaults, key as "interval" | "timeout" | "late", keyPair, "defaults");
        }
        break;
      case "startup_grace":
        startupGraceMs = r.duration(pair, name);
        break;
      case "unknown_nodes":
        unknownNodes = r.oneOf(pair, name, ["accept", "ignore"] as const) ?? unknownNodes;
        break;
      case "auth":
        auth = r.oneOf(pair, name, ["off", "optional", "required"] as const);
        authAt = pair.key as Node;
        break;
      case "keys":
        for (const [id, keyPair] of r.pairs(pair.value, pair.key as Node, "keys")) {
          const keyNode = keyPair.key as Node;
          if (!isId(id, MAX_KEY_ID_BYTES)) {
            r.report(keyNode, `key id ${quote(id)} must be 1-${MAX_KEY_ID_BYTES} of [A-Za-z0-9._-]`);
            continue;
          }
          const path = r.string(keyPair, `keys.${id}`);
          const pos = lines.linePos(keyNode.range![0]);
          if (path !== undefined) keys.push({ id, path, line: pos.line, col: pos.col });
        }
        break;
      case "nodes":
        nodesPair = pair;
        break;
      case "notify":
        notifyPair = pair;
        break;
      case "cluster":
        clusterPair = pair;
        break;
      case "maintenance":
        maintenance = parseMaintenance(r, pair);
        break;
    }
  }

  const defaults = resolve(ownDefaults, BUILT_IN);
  r.checkThresholds(defaults, null, defaultsAt, "defaults");

  const nodes = new Map<string, NodeSpec>();
  const keyIds = new Set(keys.map((k) => k.id));
  const notify = notifyPair === undefined ? [] : parseNotify(r, notifyPair, keyIds);
  // A key that signs webhooks is known to their receivers: no node may sign heartbeats with it.
  const signingKeys = new Set(
    notify.flatMap((o) => (o.kind === "webhook" && o.signWith !== null ? [o.signWith] : [])),
  );
  // Likewise the key of the monitors' own heartbeats: only a monitor may sign with it.
  const cluster: ParsedCluster | undefined =
    clusterPair === undefined ? undefined : parseCluster(r, clusterPair);
  if (cluster !== undefined) {
    const { key } = cluster.spec;
    if (!keyIds.has(key)) r.report(cluster.at.key, `cluster.key: ${quote(key)} is not a key under keys`);
    else if (signingKeys.has(key))
      r.report(
        cluster.at.key,
        `cluster.key: ${quote(key)} signs webhooks; the monitors need a key of their own`,
      );
    signingKeys.add(key);
    const upstreamKey = cluster.spec.upstream?.key;
    if (upstreamKey != null && !keyIds.has(upstreamKey))
      r.report(cluster.at.upstreamKey, `cluster.upstream.key: ${quote(upstreamKey)} is not a key under keys`);
  }
  if (auth !== undefined && auth !== "off" && !keys.some((k) => !signingKeys.has(k.id)))
    r.report(
      authAt,
      `auth: ${auth} needs at least one key under keys${signingKeys.size > 0 ? " that no webhook signs with" : ""}`,
    );
  // A fleet's nodes mostly share a few label sets and parent lists: one object each.
  const labelSets = new Map<string, Readonly<Record<string, string>>>();
  const parentLists = new Map<string, readonly string[]>();
  // Detector settings too, starting with the defaults': the monitor groups nodes by these objects.
  const phiSpecs = new Map<string, PhiSpec>(
    defaults.phi === null ? [] : [[JSON.stringify(defaults.phi), defaults.phi]],
  );
  /** Where the parents of each node that lists its own are written. */
  const ownParentsAt = new Map<string, readonly Node[]>();
  if (nodesPair !== undefined) {
    for (const [id, pair] of r.pairs(nodesPair.value, nodesPair.key as Node, "nodes")) {
      const keyNode = pair.key as Node;
      if (!isId(id)) {
        r.report(
          keyNode,
          `node id ${quote(id)} must be 1-${MAX_ID_BYTES} of [A-Za-z0-9._-], starting alphanumeric`,
        );
        continue;
      }
      const what = `nodes.${id}`;
      const own: PartialThresholds = {};
      let paused = false;
      let nodeKeys: Set<string> | null = null;
      let labels: Readonly<Record<string, string>> | null = null;
      let ownParents: readonly string[] | undefined;
      for (const [field, fieldPair] of r.pairs(pair.value, keyNode, what, NODE_KEYS)) {
        if (field === "interval" || field === "timeout" || field === "late") {
          r.threshold(own, field, fieldPair, what);
        } else if (field === "detector") {
          const phi = parseDetector(r, fieldPair, what);
          if (phi === null) own.phi = null;
          else if (phi !== undefined) {
            const key = JSON.stringify(phi);
            own.phi = phiSpecs.get(key) ?? phi;
            phiSpecs.set(key, own.phi);
          }
        } else if (field === "paused") {
          const value = fieldPair.value as Node | null;
          if (isScalar(value) && typeof value.value === "boolean") paused = value.value;
          else r.report(value ?? (fieldPair.key as Node), `${what}.paused must be true or false`);
        } else if (field === "keys") {
          // `keys` has been read already: nodes are handled after every top-level key.
          nodeKeys = new Set();
          for (const { id: keyId, at } of r.idList(fieldPair, `${what}.keys`)) {
            if (signingKeys.has(keyId))
              r.report(
                at,
                `${what}.keys: ${quote(keyId)} is the monitors' or a webhook's; a node needs a key of its own`,
              );
            else if (keyIds.has(keyId)) nodeKeys.add(keyId);
            else r.report(at, `${what}.keys: ${quote(keyId)} is not a key under keys`);
          }
        } else if (field === "labels") {
          const own = parseLabels(r, fieldPair, `${what}.labels`);
          if (own !== null) {
            const key = JSON.stringify(own);
            labels = labelSets.get(key) ?? own;
            labelSets.set(key, labels);
          }
        } else if (field === "parents") {
          const { ids, at } = readParents(r, fieldPair, `${what}.parents`, id);
          const key = ids.join(",");
          ownParents = parentLists.get(key) ?? Object.freeze(ids);
          parentLists.set(key, ownParents);
          ownParentsAt.set(id, at);
        }
      }
      const thresholds = resolve(own, defaults);
      r.checkThresholds(thresholds, own, keyNode, what);
      const parents = parentsOf(id, ownParents, defaultParents);
      nodes.set(id, Object.freeze({ id, ...thresholds, paused, keys: nodeKeys, labels, parents }));
    }
  }

  for (const [id, at] of cluster?.at.monitors ?? [])
    if (nodes.has(id))
      r.report(at, `cluster.monitors: ${quote(id)} is also a node under nodes; ids must differ`);

  // Parents are listed nodes; in one half of a file, those of the other half are left to the merge.
  const unresolved = new Set<string>();
  const unknownParent = (id: string, at: Node, list: string): void => {
    if (nodes.has(id)) return;
    if (options.half === true) unresolved.add(id);
    else r.report(at, `${list}: unknown parent ${quote(id)} (not a node under nodes)`);
  };
  defaultParents.forEach((id, i) => unknownParent(id, defaultParentsAt[i]!, "defaults.parents"));
  for (const [child, at] of ownParentsAt)
    nodes.get(child)!.parents.forEach((id, i) => unknownParent(id, at[i]!, `nodes.${child}.parents`));
  if (options.half !== true)
    r.problems.push(
      ...findCycles(nodes, (child, index) =>
        r.position((ownParentsAt.get(child) ?? defaultParentsAt)[index]),
      ),
    );

  if (r.problems.length > 0)
    return { ok: false, problems: r.problems.sort((a, b) => a.line - b.line || a.col - b.col) };

  let largestTimeoutMs = defaults.timeoutMs;
  for (const node of nodes.values()) largestTimeoutMs = Math.max(largestTimeoutMs, node.timeoutMs);

  const config: Config = {
    file,
    listen,
    status,
    defaults: Object.freeze(defaults),
    startupGraceMs: startupGraceMs ?? 2 * largestTimeoutMs,
    unknownNodes,
    // Keys configured means authentication is wanted unless the operator says otherwise.
    auth: auth ?? (keys.some((k) => !signingKeys.has(k.id)) ? "required" : "off"),
    keys: Object.freeze(keys),
    nodes,
    maxNodes,
    forgetAfterMs,
    receiveBufferBytes,
    notify: Object.freeze(notify),
    cluster: cluster?.spec ?? null,
    children: childrenOf(nodes),
    maintenance,
  };
  const warnings: ConfigProblem[] = [];
  const exposed = exposureWarning(config);
  if (exposed !== null) {
    const pos = lines.linePos(listenAt?.range?.[0] ?? 0);
    warnings.push({ line: pos.line, col: pos.col, message: exposed });
  }
  const heavy = phiMemoryWarning(config);
  if (heavy !== null) {
    const pos = lines.linePos(defaultsAt?.range?.[0] ?? 0);
    warnings.push({ line: pos.line, col: pos.col, message: heavy });
  }
  return {
    ok: true,
    config: Object.freeze(config),
    warnings,
    ...(options.half === true ? { unresolved: [...unresolved] } : {}),
  };
}

/** Past this, the φ windows a config may fill are said to be large (each node keeps its own). */
export const PHI_MEMORY_WARNING_BYTES = 2 ** 30;

/**
 * A φ node keeps its last `window` intervals, 4 bytes each, and about 64 bytes besides: with the
 * defaults judged by φ, every unlisted node the monitor may take in (`max_nodes`) does.
 */
function phiMemoryWarning(config: Config): string | null {
  let bytes = 0;
  let nodes = 0;
  for (const node of config.nodes.values()) {
    if (node.phi === null) continue;
    bytes += node.phi.window * 4 + 64;
    nodes++;
  }
  const d = config.defaults.phi;
  if (d !== null && config.unknownNodes === "accept") {
    const unlisted = Math.max(0, config.maxNodes - config.nodes.size);
    bytes += unlisted * (d.window * 4 + 64);
    nodes += unlisted;
  }
  if (bytes <= PHI_MEMORY_WARNING_BYTES) return null;
  return `φ-accrual could keep ${(bytes / 2 ** 30).toFixed(1)} GiB of intervals (${nodes} nodes, each its last \`window\` of them at 4 bytes): a smaller window, or φ for fewer nodes`;
}

function isLoopback(host: string): boolean {
  return host === "::1" || host === "localhost" || /^127\./.test(host);
}

/** The warning for a monitor that anyone beyond this host can feed with unauthenticated datagrams. */
export function exposureWarning(config: Config): string | null {
  if (config.auth !== "off" || isLoopback(config.listen.host)) return null;
  return `listen: ${config.listen.host} is reachable beyond this host and auth is off: anyone who can send it a datagram can make any node look alive (set keys and auth: required)`;
}

/** Longest Unix socket path the kernel takes (sun_path less its terminating NUL). */
const MAX_SOCKET_PATH_BYTES = 107;

function isSocketText(text: string): boolean {
  return text.startsWith("/") || text.startsWith("unix:");
}

/** A status address: host:port, or a Unix socket as an absolute path or `unix:PATH`. */
export function parseStatusAddress(text: string): StatusAddress | string {
  if (!isSocketText(text)) return parseHostPort(text, { allowNames: false });
  const path = text.startsWith("unix:") ? text.slice("unix:".length) : text;
  if (!path.startsWith("/")) return `"${path}": a socket path must be absolute`;
  if (path.includes("\0") || Buffer.byteLength(path) > MAX_SOCKET_PATH_BYTES)
    return `"${path}": a socket path is at most ${MAX_SOCKET_PATH_BYTES} bytes`;
  return { path };
}
