// `hb forget NODE`: the monitor drops one node's replay mark and history, without a restart, for
// an operator who finds a node held back by a forged or stale datagram (or wants a retired node
// gone). A listed node starts over as never heard; an unlisted one is no longer tracked.
// Exit 0 when it was forgotten, 1 when the monitor knows no such node, 69 when unreachable.

import { ExitCode } from "../errors.js";
import { MAX_ID_BYTES, isId } from "../wire/protocol.js";
import { parseFlags, usageError } from "./flags.js";
import type { Io } from "./io.js";
import { DEFAULT_STATUS_URL, ENDPOINT_FLAGS, endpointFromFlags, forgetNode } from "./status-client.js";

export const usage = `usage: hb forget NODE [--url URL | --socket PATH | --config PATH]

  Clears NODE's replay mark and history in the running monitor.
  --url URL      the monitor's status endpoint (env HB_STATUS_URL; default ${DEFAULT_STATUS_URL})
  --socket PATH  the monitor's status endpoint is this Unix socket (env HB_STATUS_SOCKET)
  --config PATH  use the status address this monitor config names`;

export const flags = ENDPOINT_FLAGS;

export async function run(args: readonly string[], io: Io): Promise<number> {
  const { values, positionals } = parseFlags(args, flags, usage, true);
  const [node, ...rest] = positionals;
  if (node === undefined || rest.length > 0) throw usageError("give exactly one node id", usage);
  if (!isId(node))
    throw usageError(`"${node}" is not a node id (1-${MAX_ID_BYTES} of [A-Za-z0-9._-])`, usage);
  const endpoint = await endpointFromFlags(values, io.env);
  if (endpoint === null) throw usageError(`${String(values.config)}: the status endpoint is off`, usage);
  if (await forgetNode(endpoint, node)) {
    io.stdout.write(`forgot ${node}\n`);
    return ExitCode.OK;
  }
  io.stderr.write(`hb forget: the monitor knows no node "${node}"\n`);
  return ExitCode.NOT_ALL_UP;
}
