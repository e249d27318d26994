// Parsing a large config on two threads: the text is cut into two halves at a node entry, each
// half keeping every line (the other half's node entries left blank, so that lines and columns
// stay those of the file), each parsed by parse.ts on its own, and the two configs merged. Only
// when both halves are valid, no node is in both, and the parents hold across them (each listed
// in one half or the other, no cycle): anything else is parsed whole, so that problems are
// reported exactly as for one thread.

import { childrenOf, findCycles } from "./parents.js";
import type { Config, NodeSpec } from "./types.js";

/** A block `nodes:` at the top level (not a flow mapping on the same line). */
const NODES_LINE = /^nodes:[ \t]*(#.*)?$/m;
/**
 * Anchors and aliases could tie the two halves together: such a file is parsed whole. Either
 * starts a node, after a space, a flow indicator or the start of a line; a `*` inside a word or
 * a quoted string (a glob, `web-*`) is neither.
 */
const ANCHOR_OR_ALIAS = /(?:^|[\s,[{])[&*]/m;

function indentOf(line: string): number {
  let i = 0;
  while (line.charCodeAt(i) === 32) i++;
  return i;
}

/** Two texts of the same lines, each with half of the node entries blank; null: parse it whole. */
export function splitNodes(text: string): [string, string] | null {
  if (ANCHOR_OR_ALIAS.test(text)) return null;
  const found = NODES_LINE.exec(text);
  if (found === null) return null;
  const lines = text.split("\n");
  const nodesLine = text.slice(0, found.index).split("\n").length - 1;
  // The entries: from the first line of the mapping to the next line at column 0.
  const entries: number[] = [];
  let indent = -1;
  let end = lines.length;
  for (let i = nodesLine + 1; i < lines.length; i++) {
    const line = lines[i]!;
    const at = indentOf(line);
    if (at === line.length || line[at] === "#" || line[at] === "\r") continue;
    if (at === 0) {
      end = i;
      break;
    }
    if (indent === -1) indent = at;
    if (at === indent) entries.push(i);
    else if (at < indent) return null;
  }
  if (entries.length < 2) return null;
  const middle = entries[entries.length >> 1]!;
  const blank = (from: number, to: number): string =>
    [...lines.slice(0, from), ...new Array<string>(to - from).fill(""), ...lines.slice(to)].join("\n");
  return [blank(middle, end), blank(entries[0]!, middle)];
}

/**
 * The config of the whole file from those of its two halves, and the parents that each half
 * names without listing (parseConfig's `unresolved`); null when a node is in both, such a parent
 * is in neither, or the dependencies make a cycle.
 */
export function mergeHalves(first: Config, second: Config, unresolved: Iterable<string> = []): Config | null {
  const nodes = new Map<string, NodeSpec>(first.nodes);
  for (const [id, node] of second.nodes) {
    if (nodes.has(id)) return null;
    nodes.set(id, node);
  }
  for (const id of unresolved) if (!nodes.has(id)) return null;
  if (findCycles(nodes).length > 0) return null;
  // The values derived from every node: 2 x the largest timeout (unless set), and the children.
  const startupGraceMs = Math.max(first.startupGraceMs, second.startupGraceMs);
  return Object.freeze({ ...first, startupGraceMs, nodes, children: childrenOf(nodes) });
}
