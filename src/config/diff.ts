// What changed between two configs, as short lines for `config.reloaded` events and `hb reload`,
// so that an operator sees exactly what a reload did.

import { formatDuration } from "../duration.js";
import { formatHostPort, type HostPort } from "../wire/address.js";
import type { Config, NodeSpec, Thresholds } from "./types.js";

function addr(a: HostPort | null): string {
  return a === null ? "off" : formatHostPort(a);
}

function thresholds(t: Thresholds): string {
  return `interval ${formatDuration(t.intervalMs)}, late ${formatDuration(t.lateMs)}, timeout ${formatDuration(t.timeoutMs)}`;
}

function describe(node: NodeSpec): string {
  return `${thresholds(node)}${node.paused ? ", paused" : ""}`;
}

export function diffConfigs(before: Config, after: Config): string[] {
  const changes: string[] = [];
  const field = (name: string, a: string, b: string, note = ""): void => {
    if (a !== b) changes.push(`${name}: ${a} -> ${b}${note}`);
  };
  field("listen", addr(before.listen), addr(after.listen), " (takes effect on restart)");
  field("status", addr(before.status), addr(after.status), " (takes effect on restart)");
  field("defaults", thresholds(before.defaults), thresholds(after.defaults));
  field("startup_grace", formatDuration(before.startupGraceMs), formatDuration(after.startupGraceMs));
  field("unknown_nodes", before.unknownNodes, after.unknownNodes);
  field("auth", before.auth, after.auth);
  field(
    "keys",
    before.keys.map((k) => k.id).join(",") || "none",
    after.keys.map((k) => k.id).join(",") || "none",
  );
  for (const [id, node] of after.nodes) {
    const old = before.nodes.get(id);
    if (old === undefined) changes.push(`nodes.${id}: added (${describe(node)})`);
    else field(`nodes.${id}`, describe(old), describe(node));
  }
  for (const id of before.nodes.keys()) if (!after.nodes.has(id)) changes.push(`nodes.${id}: removed`);
  return changes;
}
