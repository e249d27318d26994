// `hb status`: ask the monitor's status endpoint and print who is alive, as a table or JSON.
// Exit 0 when no node is late or down, 1 when any is, 69 when the monitor cannot be reached.

import { flagOrEnv, parseFlags, usageError } from "./args.js";
import { DEFAULT_STATUS_URL, fetchStatus, statusUrlOf } from "./status-client.js";
import { formatAgo, formatDuration } from "./duration.js";
import { ExitCode } from "./errors.js";
import type { Io } from "./io.js";
import type { StatusDocument } from "./monitor.js";

export const STATUS_USAGE = `usage: hb status [--json] [--url URL | --config PATH]

  --url URL      the monitor's status endpoint (env HB_STATUS_URL; default http://127.0.0.1:26723/status)
  --config PATH  use the status address this monitor config names
  --json         print the monitor's JSON document instead of a table`;

export function renderTable(doc: StatusDocument): string {
  const header = ["NODE", "STATE", "LAST HEARD", "TIMEOUT", "LOSS", "RESTARTS", "FROM"];
  const rows = doc.nodes.map((n) => [
    n.node + (n.expected ? "" : " (unlisted)"),
    n.state,
    n.silentMs === null ? "never" : `${formatAgo(n.silentMs)} ago`,
    formatDuration(n.timeoutMs),
    `${n.lossPct.toFixed(1)}%`,
    String(n.restarts),
    n.from ?? "-",
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => c.padEnd(widths[i]!))
      .join("  ")
      .trimEnd();
  const c = doc.counts;
  const summary = `${c.up} up, ${c.late} late, ${c.down} down, ${c.left} left, ${c.new} new, ${c.paused} paused`;
  return [line(header), ...rows.map(line), "", summary].join("\n") + "\n";
}

export function exitCodeFor(doc: StatusDocument): number {
  return doc.counts.late > 0 || doc.counts.down > 0 ? ExitCode.NOT_ALL_UP : ExitCode.OK;
}

export async function statusCommand(args: readonly string[], io: Io): Promise<number> {
  const { values } = parseFlags(
    args,
    { json: { type: "boolean" }, url: { type: "string" }, config: { type: "string" } },
    STATUS_USAGE,
  );
  const configPath = typeof values.config === "string" ? values.config : undefined;
  const url =
    flagOrEnv(values.url, io.env, "HB_STATUS_URL") ??
    (configPath === undefined ? DEFAULT_STATUS_URL : await statusUrlOf(configPath));
  if (url === null) throw usageError(`${configPath}: the status endpoint is off`, STATUS_USAGE);
  const doc = await fetchStatus(url);
  io.stdout.write(values.json === true ? JSON.stringify(doc, null, 2) + "\n" : renderTable(doc));
  return exitCodeFor(doc);
}
