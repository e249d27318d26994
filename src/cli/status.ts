// `hb status`: ask the monitor's status endpoint and print who is alive, as a table or JSON.
// Exit 0 when no node is late or down, 1 when any is, 69 when the monitor cannot be reached.

import { ExitCode } from "../errors.js";
import type { StatusDocument } from "../monitor/status.js";
import { flagOrEnv, parseFlags, usageError } from "./flags.js";
import type { Io } from "./io.js";
import { DEFAULT_STATUS_URL, fetchStatus, statusUrlOf } from "./status-client.js";
import { renderTable } from "./status-table.js";

export const usage = `usage: hb status [--json] [--url URL | --config PATH]

  --url URL      the monitor's status endpoint (env HB_STATUS_URL; default http://127.0.0.1:26723/status)
  --config PATH  use the status address this monitor config names
  --json         print the monitor's JSON document instead of a table`;

export function exitCodeFor(doc: StatusDocument): number {
  return doc.counts.late > 0 || doc.counts.down > 0 ? ExitCode.NOT_ALL_UP : ExitCode.OK;
}

export async function run(args: readonly string[], io: Io): Promise<number> {
  const { values } = parseFlags(
    args,
    { json: { type: "boolean" }, url: { type: "string" }, config: { type: "string" } },
    usage,
  );
  const configPath = typeof values.config === "string" ? values.config : undefined;
  const url =
    flagOrEnv(values.url, io.env, "HB_STATUS_URL") ??
    (configPath === undefined ? DEFAULT_STATUS_URL : await statusUrlOf(configPath));
  if (url === null) throw usageError(`${configPath}: the status endpoint is off`, usage);
  const doc = await fetchStatus(url);
  io.stdout.write(values.json === true ? JSON.stringify(doc, null, 2) + "\n" : renderTable(doc));
  return exitCodeFor(doc);
}
