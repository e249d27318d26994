// The client side of the monitor's status endpoint: where it is (a URL, or the status address a
// config names), and fetching its document with a timeout and a clear error when it is not there.

import { HbError } from "../errors.js";
import type { StatusDocument } from "../monitor/status.js";
import { formatHostPort } from "../wire/address.js";

export const DEFAULT_STATUS_URL = "http://127.0.0.1:26723/status";
const TIMEOUT_MS = 5000;

export async function fetchStatus(url: string): Promise<StatusDocument> {
  let response: Response;
  try {
    response = await fetch(url, { signal: AbortSignal.timeout(TIMEOUT_MS) });
  } catch (err) {
    const cause = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message;
    throw new HbError("HB_ERR_STATUS_UNAVAILABLE", `cannot reach the monitor at ${url}: ${cause}`, {
      cause: err,
    });
  }
  if (!response.ok) throw new HbError("HB_ERR_STATUS_UNAVAILABLE", `${url} answered ${response.status}`);
  return (await response.json()) as StatusDocument;
}

/** The status URL a config file names, or null when it turns the endpoint off. */
export async function statusUrlOf(path: string): Promise<string | null> {
  // Loaded here, not up front: `hb status --url` needs no YAML parser.
  const [{ readConfigText }, { parseConfig }] = await Promise.all([
    import("../config/load.js"),
    import("../config/parse.js"),
  ]);
  const parsed = parseConfig(await readConfigText(path), path);
  // A config that does not parse still has to be reloaded (and rejected) by the monitor; its
  // status endpoint is then the default one.
  if (!parsed.ok) return DEFAULT_STATUS_URL;
  const status = parsed.config.status;
  return status === null ? null : `http://${formatHostPort(status)}/status`;
}
