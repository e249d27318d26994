// The `cluster:` section: the monitors of a site that watch each other with hb's own heartbeats,
// in rank order, with their thresholds, who speaks, and the key their heartbeats are signed with.
// Read with positions like the rest of the config; parse.ts checks it against nodes and keys.

import { isMap, type Node, type Pair } from "yaml";
import { formatDuration } from "../duration.js";
import { parseHostPort, type HostPort } from "../wire/address.js";
import { MAX_ID_BYTES, isId } from "../wire/protocol.js";
import type { Reader } from "./reader.js";
import { quote } from "./reader.js";
import type { ClusterSpec } from "./types.js";

export const CLUSTER_KEYS: readonly string[] = [
  "self",
  "monitors",
  "interval",
  "timeout",
  "late",
  "speak",
  "key",
  "settle",
  "upstream",
];
export const UPSTREAM_KEYS: readonly string[] = ["monitor", "id", "key"];
export const DEFAULT_PEER_INTERVAL_MS = 1000;
/** A peer's timeout when none is set: this many intervals (a monitor is a node that matters). */
export const PEER_TIMEOUT_INTERVALS = 5;

export interface ParsedCluster {
  readonly spec: ClusterSpec;
  /** Where each monitor id and the key are written, for problems found against the rest. */
  readonly at: {
    readonly section: Node;
    readonly key: Node | null;
    readonly monitors: ReadonlyMap<string, Node>;
    readonly upstreamKey: Node | null;
  };
}

export function parseCluster(r: Reader, pair: Pair): ParsedCluster | undefined {
  const section = pair.key as Node;
  if (!isMap(pair.value)) {
    r.report((pair.value as Node | null) ?? section, "cluster must be a mapping with monitors and key");
    return undefined;
  }
  const fields = new Map(r.pairs(pair.value, section, "cluster", CLUSTER_KEYS));
  let self: string | null = null;
  const selfPair = fields.get("self");
  if (selfPair !== undefined) {
    const text = r.string(selfPair, "cluster.self");
    if (text !== undefined && !isId(text))
      r.report(
        selfPair.value as Node,
        `cluster.self ${quote(text)} must be 1-${MAX_ID_BYTES} of [A-Za-z0-9._-]`,
      );
    else if (text !== undefined) self = text;
  }
  const monitors: { id: string; address: HostPort }[] = [];
  const monitorsAt = new Map<string, Node>();
  const monitorsPair = fields.get("monitors");
  if (monitorsPair === undefined)
    r.report(section, "cluster needs monitors: every monitor of the site, id: host:port");
  else {
    for (const [id, monitorPair] of r.pairs(
      monitorsPair.value,
      monitorsPair.key as Node,
      "cluster.monitors",
    )) {
      const at = monitorPair.key as Node;
      if (!isId(id)) {
        r.report(at, `cluster.monitors: ${quote(id)} must be 1-${MAX_ID_BYTES} of [A-Za-z0-9._-]`);
        continue;
      }
      const text = r.string(monitorPair, `cluster.monitors.${id}`);
      if (text === undefined) continue;
      const address = parseHostPort(text, { allowNames: false });
      if (typeof address === "string")
        r.report(monitorPair.value as Node, `cluster.monitors.${id}: ${address}`);
      else {
        monitors.push({ id, address });
        monitorsAt.set(id, at);
      }
    }
    if (monitors.length < 2 && r.problems.length === 0)
      r.report(monitorsPair.key as Node, "cluster.monitors: a cluster has at least two monitors");
  }
  if (self !== null && monitors.length > 0 && !monitorsAt.has(self))
    r.report(selfPair!.value as Node, `cluster.self: ${quote(self)} is not one of cluster.monitors`);
  const duration = (name: string): number | undefined => {
    const p = fields.get(name);
    return p === undefined ? undefined : r.duration(p, `cluster.${name}`);
  };
  const intervalMs = duration("interval") ?? DEFAULT_PEER_INTERVAL_MS;
  const timeoutMs = duration("timeout") ?? PEER_TIMEOUT_INTERVALS * intervalMs;
  const lateMs = duration("late") ?? Math.floor(timeoutMs / 2);
  if (timeoutMs <= 2 * intervalMs)
    r.report(
      section,
      `cluster: timeout (${formatDuration(timeoutMs)}) must be more than 2 x interval (${formatDuration(intervalMs)})`,
    );
  if (lateMs >= timeoutMs)
    r.report(
      section,
      `cluster: late (${formatDuration(lateMs)}) must be less than timeout (${formatDuration(timeoutMs)})`,
    );
  const speakPair = fields.get("speak");
  const speak =
    (speakPair === undefined ? undefined : r.oneOf(speakPair, "cluster.speak", ["leader", "all"] as const)) ??
    "leader";
  const keyPair = fields.get("key");
  const key = keyPair === undefined ? undefined : r.string(keyPair, "cluster.key");
  if (keyPair === undefined)
    r.report(
      section,
      "cluster needs key: the key id peer heartbeats are signed with (peer traffic is always authenticated)",
    );
  const settleMs = duration("settle") ?? timeoutMs;
  const upstream = parseUpstream(r, fields.get("upstream"));
  if (key === undefined) return undefined;
  return {
    spec: Object.freeze({
      self,
      monitors: Object.freeze(monitors),
      intervalMs,
      lateMs,
      timeoutMs,
      speak,
      key,
      settleMs,
      upstream: upstream?.spec ?? null,
    }),
    at: {
      section,
      key: (keyPair?.value as Node | null) ?? null,
      monitors: monitorsAt,
      upstreamKey: upstream?.keyAt ?? null,
    },
  };
}

/** `cluster.upstream`: the hb monitor this site beats to, as one of its nodes. */
function parseUpstream(
  r: Reader,
  pair: Pair | undefined,
): { spec: NonNullable<ClusterSpec["upstream"]>; keyAt: Node | null } | undefined {
  if (pair === undefined) return undefined;
  const fields = new Map(r.pairs(pair.value, pair.key as Node, "cluster.upstream", UPSTREAM_KEYS));
  const monitorPair = fields.get("monitor");
  const idPair = fields.get("id");
  if (monitorPair === undefined || idPair === undefined) {
    r.report(
      pair.key as Node,
      "cluster.upstream needs monitor (host:port) and id (this site's node id there)",
    );
    return undefined;
  }
  const text = r.string(monitorPair, "cluster.upstream.monitor");
  const monitor = text === undefined ? undefined : parseHostPort(text, { allowNames: false });
  if (typeof monitor === "string")
    r.report(monitorPair.value as Node, `cluster.upstream.monitor: ${monitor}`);
  const id = r.string(idPair, "cluster.upstream.id");
  if (id !== undefined && !isId(id))
    r.report(
      idPair.value as Node,
      `cluster.upstream.id ${quote(id)} must be 1-${MAX_ID_BYTES} of [A-Za-z0-9._-]`,
    );
  const keyPair = fields.get("key");
  const key = keyPair === undefined ? null : (r.string(keyPair, "cluster.upstream.key") ?? null);
  if (monitor === undefined || typeof monitor === "string" || id === undefined) return undefined;
  return { spec: Object.freeze({ monitor, id, key }), keyAt: (keyPair?.value as Node | null) ?? null };
}
