// The monitor's status document (GET /status, `hb status --json`), the filters it takes and the
// one-line summary of counts that systemd shows. The shape is an interface operators script
// against: fields are added, never renamed. The document is written a piece at a time, nodes in
// display order, so that a million nodes never hold the event loop in one go.

import type { ReloadState } from "../actions.js";
import type { ClusterView } from "./peer-views.js";
import { STATES, isState, type Counts, type StateName } from "../states.js";
import type { RejectReason } from "./admit.js";
import type { NodeOrder } from "./node-order.js";
import { compareIds, type NodeReader, type NodeView } from "./views.js";

export type { ReloadState, ReloadStatus } from "../actions.js";

export interface StatusDocument {
  version: string;
  pid: number;
  now: number;
  startedAt: number;
  listen: string;
  config: string;
  reload: ReloadState;
  receiveBuffer: { asked: number; granted: number };
  /** Datagrams the kernel dropped for this socket because its receive buffer was full. */
  kernelDrops: number | null;
  /** Every node, whatever the filters. */
  counts: Counts;
  datagrams: { received: number; accepted: number; rejected: Record<RejectReason, number> };
  /** The other monitors of the site and who speaks; null without a cluster. */
  cluster: ClusterView | null;
  /** The nodes the filters select, in display order; always the last field. */
  nodes: NodeView[];
}

/** Which nodes a request lists: `?state=down,late`, `?node=ID[,ID]`, `?limit=N`, `?nodes=0`. */
export interface NodeQuery {
  readonly states: ReadonlySet<StateName> | null;
  readonly ids: readonly string[] | null;
  readonly limit: number;
}

export const ALL_NODES: NodeQuery = { states: null, ids: null, limit: Number.POSITIVE_INFINITY };

/** The query a request's parameters ask for, or what is wrong with them. */
export function parseNodeQuery(params: URLSearchParams): NodeQuery | string {
  let states: Set<StateName> | null = null;
  for (const value of params.getAll("state")) {
    states ??= new Set();
    for (const name of value.split(",")) {
      if (!isState(name)) return `state: "${name}" is not one of ${STATES.join(", ")}`;
      states.add(name);
    }
  }
  const nodeValues = params.getAll("node");
  const ids =
    nodeValues.length === 0 ? null : nodeValues.flatMap((v) => v.split(",")).filter((v) => v !== "");
  let limit = Number.POSITIVE_INFINITY;
  const limits = params.getAll("limit");
  if (limits.length > 0) {
    const text = limits.at(-1)!;
    if (!/^\d{1,9}$/.test(text)) return `limit: "${text}" is not a whole number`;
    limit = Number(text);
  }
  if (params.getAll("nodes").includes("0")) limit = 0;
  return { states, ids, limit };
}

/** Nodes examined between two chances for the caller to give the event loop a turn. */
const SCAN_STEP = 2048;

/**
 * The views `query` selects, in display order, as of `nowMs`; null marks a point where the
 * caller may give the event loop a turn. A node forgotten meanwhile is left out.
 */
export function* selectNodes(
  reader: NodeReader,
  order: NodeOrder,
  query: NodeQuery,
  nowMs: number,
): Generator<NodeView | null, void> {
  let left = query.limit;
  if (left <= 0) return;
  const matches = (slot: number): boolean =>
    query.states === null || query.states.has(reader.state(slot, nowMs));
  if (query.ids !== null) {
    for (const id of [...new Set(query.ids)].sort(compareIds)) {
      const slot = reader.slotOf(id);
      if (slot === undefined || !matches(slot)) continue;
      yield reader.view(slot, nowMs);
      if (--left <= 0) return;
    }
    return;
  }
  const building = order.current();
  let step = building.next();
  for (; step.done !== true; step = building.next()) yield null;
  const { slots, ids } = step.value;
  for (let i = 0; i < slots.length; i++) {
    const slot = slots[i]!;
    if (reader.idAt(slot) === ids[i] && matches(slot)) {
      yield reader.view(slot, nowMs);
      if (--left <= 0) return;
    } else if (i % SCAN_STEP === 0) yield null;
  }
}

/** Characters of JSON gathered before a piece is handed on. */
const PIECE_CHARS = 64 * 1024;

/** The JSON text of `document` with `nodes` as its node list, a piece at a time ("" = a turn). */
export function* statusJson(
  document: StatusDocument,
  nodes: Iterator<NodeView | null, void>,
): Generator<string, void> {
  // `nodes` is the last field: the head is the document up to its list.
  const head = JSON.stringify({ ...document, nodes: [] });
  let piece = head.slice(0, -"[]}".length) + "[";
  let first = true;
  for (let next = nodes.next(); next.done !== true; next = nodes.next()) {
    const view = next.value;
    if (view !== null) {
      piece += (first ? "" : ",") + JSON.stringify(view);
      first = false;
    }
    if (view === null || piece.length >= PIECE_CHARS) {
      yield piece;
      piece = "";
    }
  }
  yield piece + "]}\n";
}

/** "12 up, 1 late, 2 down, 0 left" (plus new and paused when there are any). */
export function formatCounts(c: Counts): string {
  const extra = [c.new > 0 ? `, ${c.new} new` : "", c.paused > 0 ? `, ${c.paused} paused` : ""].join("");
  return `${c.up} up, ${c.late} late, ${c.down} down, ${c.left} left${extra}`;
}
