// `hb status`: ask the monitor's status endpoint and print who is alive, as a table or JSON.
// Exit 0 when no node is late or down, 1 when any is, 69 when the monitor cannot be reached.
// The exit code comes from the counts, which cover every node whatever the filters list.

import { ExitCode } from "../errors.js";
import { STATES, type StateName } from "../states.js";
import type { StatusDocument } from "../monitor/status.js";
import { parseFlags, usageError } from "./flags.js";
import type { Io } from "./io.js";
import {
  DEFAULT_STATUS_URL,
  ENDPOINT_FLAGS,
  endpointFromFlags,
  fetchStatus,
  type StatusFilters,
} from "./status-client.js";
import { renderEvidence, renderTable, terminalJson } from "./status-table.js";

export const usage = `usage: hb status [--json] [--state S,S] [--node ID] [--limit N] [--url URL | --socket PATH | --config PATH]

  --url URL      the monitor's status endpoint (env HB_STATUS_URL; default ${DEFAULT_STATUS_URL}),
                 or unix:PATH for a Unix socket
  --socket PATH  the monitor's status endpoint is this Unix socket (env HB_STATUS_SOCKET)
  --config PATH  use the status address this monitor config names
  --state S,S    list only nodes in these states (new, up, late, down, left, paused)
  --node ID      list only this node (or several: a,b)
  --limit N      list at most N nodes
  --json         print the monitor's JSON document instead of a table`;

export function exitCodeFor(doc: StatusDocument): number {
  return doc.counts.late > 0 || doc.counts.down > 0 ? ExitCode.NOT_ALL_UP : ExitCode.OK;
}

export const flags = {
  json: { type: "boolean" },
  ...ENDPOINT_FLAGS,
  state: { type: "string" },
  node: { type: "string" },
  limit: { type: "string" },
} as const;

export async function run(args: readonly string[], io: Io): Promise<number> {
  const { values } = parseFlags(args, flags, usage);
  const filters: StatusFilters = {};
  if (typeof values.state === "string") {
    const unknown = values.state.split(",").find((s) => !(STATES as readonly string[]).includes(s));
    if (unknown !== undefined)
      throw usageError(`--state: "${unknown}" is not one of ${STATES.join(", ")}`, usage);
    filters.state = values.state;
  }
  if (typeof values.node === "string") filters.node = values.node;
  if (typeof values.limit === "string") {
    if (!/^\d{1,9}$/.test(values.limit))
      throw usageError(`--limit: "${values.limit}" is not a whole number`, usage);
    filters.limit = values.limit;
  }
  const endpoint = await endpointFromFlags(values, io.env);
  if (endpoint === null) throw usageError(`${String(values.config)}: the status endpoint is off`, usage);
  const doc = await fetchStatus(endpoint, filters);
  if (values.json === true) io.stdout.write(terminalJson(doc) + "\n");
  else {
    io.stdout.write(renderTable(doc, filters.node === undefined ? listable(doc, filters) : undefined));
    if (filters.node !== undefined) io.stdout.write("\n" + renderEvidence(doc));
  }
  return exitCodeFor(doc);
}

/** How many nodes the filters select, from the counts (which cover every node). */
function listable(doc: StatusDocument, filters: StatusFilters): number {
  const states = filters.state?.split(",") ?? STATES;
  return [...new Set(states)].reduce((sum, s) => sum + (doc.counts[s as StateName] ?? 0), 0);
}
