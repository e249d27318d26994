// A Config as data that crosses to another thread cheaply. Structured cloning 100 000 node
// objects costs the receiving thread most of a second; a few strings and typed arrays cost it
// nothing, and the receiver rebuilds the nodes in slices small enough to keep its loop free.

import { NO_PARENTS } from "./parents.js";
import type { Config, NodeSpec, PhiSpec } from "./types.js";

/** Node ids and key ids never hold this (see ID_PATTERN in wire/protocol.ts). */
const SEPARATOR = "\n";
/** A node's `keys` when it may sign with any key of the keyring (null in NodeSpec). */
const ANY_KEY = "*";
/** interval, timeout and late: one row of `thresholds` per node. */
const THRESHOLD_COLUMNS = 3;

export interface ConfigData {
  /** Every field but `nodes` and `children`: small, plain, structured-clonable. */
  readonly rest: Omit<Config, "nodes" | "children">;
  readonly ids: string;
  readonly thresholds: Float64Array;
  readonly paused: Uint8Array;
  /** Per node, its key ids joined by ","; "" when no node restricts its keys. */
  readonly keys: string;
  /** The distinct label sets, as JSON; "" when no node has labels. */
  readonly labelSets: string;
  /** Per node, 1 + its label set's index in `labelSets`, 0 for none. */
  readonly labels: Uint32Array;
  /** Per node, its parents joined by ","; "" when no node has any. */
  readonly parents: string;
  /** Per parent, `parent=child,child...`: as sorted as in the config, so not sorted again. */
  readonly children: string;
  /** The distinct φ detector settings, as JSON; "" when no node has any. */
  readonly phiSpecs: string;
  /** Per node, 1 + its φ settings' index in `phiSpecs`, 0 for the fixed detector. */
  readonly phi: Uint32Array;
}

export function encodeConfig(config: Config): ConfigData {
  const { nodes, children, ...rest } = config;
  const thresholds = new Float64Array(nodes.size * THRESHOLD_COLUMNS);
  const paused = new Uint8Array(nodes.size);
  const keys: string[] = [];
  let anyRestricted = false;
  const labels = new Uint32Array(nodes.size);
  // Label sets are shared objects (parse.ts): one entry each, found by identity.
  const labelSets = new Map<Readonly<Record<string, string>>, number>();
  const parents: string[] = [];
  let anyParents = false;
  const phi = new Uint32Array(nodes.size);
  const phiSpecs = new Map<string, number>();
  let i = 0;
  for (const node of nodes.values()) {
    thresholds[i * THRESHOLD_COLUMNS] = node.intervalMs;
    thresholds[i * THRESHOLD_COLUMNS + 1] = node.timeoutMs;
    thresholds[i * THRESHOLD_COLUMNS + 2] = node.lateMs;
    paused[i] = node.paused ? 1 : 0;
    keys.push(node.keys === null ? ANY_KEY : [...node.keys].join(","));
    if (node.keys !== null) anyRestricted = true;
    if (node.labels !== null) {
      let set = labelSets.get(node.labels);
      if (set === undefined) labelSets.set(node.labels, (set = labelSets.size + 1));
      labels[i] = set;
    }
    parents.push(node.parents.join(","));
    if (node.parents.length > 0) anyParents = true;
    if (node.phi !== null) {
      const text = JSON.stringify(node.phi);
      let spec = phiSpecs.get(text);
      if (spec === undefined) phiSpecs.set(text, (spec = phiSpecs.size + 1));
      phi[i] = spec;
    }
    i++;
  }
  return {
    rest,
    ids: [...nodes.keys()].join(SEPARATOR),
    thresholds,
    paused,
    keys: anyRestricted ? keys.join(SEPARATOR) : "",
    labelSets: labelSets.size === 0 ? "" : JSON.stringify([...labelSets.keys()]),
    labels,
    parents: anyParents ? parents.join(SEPARATOR) : "",
    children: [...children].map(([parent, list]) => `${parent}=${list.join(",")}`).join(SEPARATOR),
    phiSpecs: phiSpecs.size === 0 ? "" : `[${[...phiSpecs.keys()].join(",")}]`,
    phi,
  };
}

/** The buffers to transfer (not copy) with `data`. */
export function transferList(data: ConfigData): ArrayBuffer[] {
  return [
    data.thresholds.buffer as ArrayBuffer,
    data.paused.buffer as ArrayBuffer,
    data.labels.buffer as ArrayBuffer,
    data.phi.buffer as ArrayBuffer,
  ];
}

/**
 * Rebuilds a frozen Config, `sliceSize` nodes at a time, calling `pause` between slices. A node
 * equal to one of `previous` is that same object, so that what compares configs afterwards
 * (the reload diff) passes over the unchanged nodes by identity.
 */
export async function decodeConfig(
  data: ConfigData,
  sliceSize: number,
  pause: () => Promise<void>,
  previous?: ReadonlyMap<string, NodeSpec>,
): Promise<Config> {
  const ids = data.ids === "" ? [] : data.ids.split(SEPARATOR);
  const keys = data.keys === "" ? null : data.keys.split(SEPARATOR);
  const labelSets = (data.labelSets === "" ? [] : JSON.parse(data.labelSets)) as Record<string, string>[];
  labelSets.forEach((set) => Object.freeze(set));
  const parents = data.parents === "" ? null : data.parents.split(SEPARATOR);
  const phiSpecs = (data.phiSpecs === "" ? [] : JSON.parse(data.phiSpecs)) as PhiSpec[];
  phiSpecs.forEach((spec) => Object.freeze(spec));
  // Nodes mostly share a few parent lists (the defaults'): one array each.
  const parentLists = new Map<string, readonly string[]>([["", NO_PARENTS]]);
  const nodes = new Map<string, NodeSpec>();
  for (let start = 0; start < ids.length; start += sliceSize) {
    if (start > 0) await pause();
    const end = Math.min(ids.length, start + sliceSize);
    for (let i = start; i < end; i++) {
      const id = ids[i]!;
      const own = keys?.[i] ?? ANY_KEY;
      const written = parents?.[i] ?? "";
      let parentList = parentLists.get(written);
      if (parentList === undefined)
        parentLists.set(written, (parentList = Object.freeze(written.split(","))));
      const node: NodeSpec = {
        id,
        intervalMs: data.thresholds[i * THRESHOLD_COLUMNS]!,
        timeoutMs: data.thresholds[i * THRESHOLD_COLUMNS + 1]!,
        lateMs: data.thresholds[i * THRESHOLD_COLUMNS + 2]!,
        phi: data.phi[i] === 0 ? null : phiSpecs[data.phi[i]! - 1]!,
        paused: data.paused[i] === 1,
        keys: own === ANY_KEY ? null : new Set(own === "" ? [] : own.split(",")),
        labels: data.labels[i] === 0 ? null : labelSets[data.labels[i]! - 1]!,
        parents: parentList,
      };
      const old = previous?.get(id);
      nodes.set(id, old !== undefined && sameFields(old, node) ? old : Object.freeze(node));
    }
  }
  const children = new Map<string, readonly string[]>();
  for (const entry of data.children === "" ? [] : data.children.split(SEPARATOR)) {
    const eq = entry.indexOf("=");
    children.set(entry.slice(0, eq), Object.freeze(entry.slice(eq + 1).split(",")));
  }
  return Object.freeze({ ...deepFreeze(data.rest), nodes, children });
}

function sameFields(a: NodeSpec, b: NodeSpec): boolean {
  const x = a as unknown as Readonly<Record<string, unknown>>;
  const y = b as unknown as Readonly<Record<string, unknown>>;
  for (const f in y) {
    const u = x[f];
    const v = y[f];
    if (u === v) continue;
    if (
      (f === "labels" || f === "phi") &&
      u !== null &&
      v !== null &&
      JSON.stringify(u) === JSON.stringify(v)
    )
      continue;
    if (Array.isArray(u) && Array.isArray(v) && u.length === v.length && u.every((x, j) => x === v[j]))
      continue;
    if (!(u instanceof Set && v instanceof Set && u.size === v.size)) return false;
    for (const item of u) if (!v.has(item)) return false;
  }
  for (const f in x) if (!(f in y)) return false;
  return true;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === "object" && value !== null && !Object.isFrozen(value)) {
    for (const field of Object.values(value)) deepFreeze(field);
    Object.freeze(value);
  }
  return value;
}
