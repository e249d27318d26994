// Dependencies between listed nodes (`parents`): a node's own list or the defaults', read with
// positions; the checks that need every node (each parent listed, no cycle); and the lists
// turned around, each parent's children, so that the policy finds them at once. The checks take
// positions from their caller, so that the two halves of a large file can be checked once merged.

import type { Node, Pair } from "yaml";
import { isId } from "../wire/protocol.js";
import { quote, type Reader } from "./reader.js";
import type { ConfigProblem, NodeSpec } from "./types.js";

export const NO_PARENTS: readonly string[] = Object.freeze([]);

/** Where the `index`th parent of node `child` is written: in its own list, or in the defaults'. */
export type ParentsAt = (child: string, index: number) => { line: number; col: number };

/**
 * A `parents` list: node ids, each once, never `self` (the node whose list it is; null for the
 * defaults'). What is wrong is reported and left out.
 */
export function readParents(
  r: Reader,
  pair: Pair,
  what: string,
  self: string | null,
): { ids: string[]; at: Node[] } {
  const ids: string[] = [];
  const at: Node[] = [];
  for (const { name, at: item } of r.nameList(pair, what, "[sw-3, hv-7]")) {
    if (!isId(name)) r.report(item, `${what}: ${quote(name)} is not a node id`);
    else if (name === self) r.report(item, `${what}: a node cannot be its own parent`);
    else if (ids.includes(name)) r.report(item, `${what}: ${quote(name)} is listed twice`);
    else {
      ids.push(name);
      at.push(item);
    }
  }
  return { ids, at };
}

/**
 * A node's parents: its own list when it sets one (`??`: an empty list means none), else the
 * defaults'. A node named in the defaults' list does not take that list: `defaults.parents:
 * [sw]` means every other node depends on sw, and two default parents do not depend on each other.
 */
export function parentsOf(
  id: string,
  own: readonly string[] | undefined,
  defaults: readonly string[],
): readonly string[] {
  return own ?? (defaults.includes(id) ? NO_PARENTS : defaults);
}

/**
 * Every dependency cycle, as `dependency cycle: a -> b -> c -> a`, at the entry that closes it.
 * Without `at`, only whether there is one: the first is reported, at no position. Parents that
 * are not listed are passed over (they are reported where they are read).
 */
export function findCycles(nodes: ReadonlyMap<string, NodeSpec>, at?: ParentsAt): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const ON_PATH = 1;
  const DONE = 2;
  const state = new Map<string, number>();
  // Depth-first, with an explicit stack: a chain of 100 000 nodes must not overflow the call stack.
  const path: { id: string; parents: readonly string[]; next: number }[] = [];
  for (const [start, spec] of nodes) {
    if (state.has(start) || spec.parents.length === 0) continue;
    state.set(start, ON_PATH);
    path.push({ id: start, parents: spec.parents, next: 0 });
    while (path.length > 0) {
      const top = path[path.length - 1]!;
      if (top.next === top.parents.length) {
        state.set(top.id, DONE);
        path.pop();
        continue;
      }
      const index = top.next++;
      const parent = top.parents[index]!;
      const next = nodes.get(parent);
      if (next === undefined) continue;
      const seen = state.get(parent);
      if (seen === undefined) {
        state.set(parent, ON_PATH);
        path.push({ id: parent, parents: next.parents, next: 0 });
      } else if (seen === ON_PATH) {
        const chain = path.slice(path.findIndex((p) => p.id === parent)).map((p) => p.id);
        const message = `dependency cycle: ${shorten([...chain, parent]).join(" -> ")}`;
        if (at === undefined) return [{ line: 0, col: 0, message }];
        const { line, col } = at(top.id, index);
        problems.push({ line, col, message });
      }
    }
  }
  return problems;
}

/** Nodes of a cycle shown at most: a cycle through 100 000 nodes is one line of a reasonable length. */
const MAX_CHAIN_NODES = 12;

function shorten(chain: string[]): string[] {
  if (chain.length <= MAX_CHAIN_NODES) return chain;
  const ends = MAX_CHAIN_NODES / 2;
  return [...chain.slice(0, ends), `(${chain.length - 2 * ends} more)`, ...chain.slice(-ends)];
}

/** Each parent's children: the listed nodes that have it among their parents, sorted by id. */
export function childrenOf(nodes: ReadonlyMap<string, NodeSpec>): ReadonlyMap<string, readonly string[]> {
  const children = new Map<string, string[]>();
  for (const node of nodes.values()) {
    for (const parent of node.parents) {
      const list = children.get(parent);
      if (list === undefined) children.set(parent, [node.id]);
      else list.push(node.id);
    }
  }
  for (const list of children.values()) Object.freeze(list.sort());
  return children;
}
