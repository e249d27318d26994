// `hb notify test NAME`: the running monitor sends a notice marked as a test through one of its
// outputs, at once and once, and says how it went; the same line goes to its journal. So an
// operator can check the paging path (the hook inside the hardened unit, the webhook's
// signature, the Alertmanager route) before it is needed. Exit 0 when it was delivered, 1 when
// it failed, 64 when the monitor has no such output, 69 when the monitor cannot be reached.

import { ExitCode } from "../errors.js";
import { ID_PATTERN } from "../wire/protocol.js";
import { parseFlags, usageError } from "./flags.js";
import type { Io } from "./io.js";
import { DEFAULT_STATUS_URL, ENDPOINT_FLAGS, endpointFromFlags, notifyTest } from "./status-client.js";

export const usage = `usage: hb notify test NAME [--url URL | --socket PATH | --config PATH]

  Sends a notice marked as a test through the monitor's output NAME (under notify: in its config).
  --url URL      the monitor's status endpoint (env HB_STATUS_URL; default ${DEFAULT_STATUS_URL})
  --socket PATH  the monitor's status endpoint is this Unix socket (env HB_STATUS_SOCKET)
  --config PATH  use the status address this monitor config names`;

export const flags = ENDPOINT_FLAGS;

export async function run(args: readonly string[], io: Io): Promise<number> {
  const { values, positionals } = parseFlags(args, flags, usage, true);
  const [action, output, ...rest] = positionals;
  if (action !== "test")
    throw usageError(`unknown action ${JSON.stringify(action ?? "")}: the action is "test"`, usage);
  if (output === undefined || rest.length > 0) throw usageError("give exactly one output name", usage);
  if (!ID_PATTERN.test(output)) throw usageError(`"${output}" is not an output name`, usage);
  const endpoint = await endpointFromFlags(values, io.env);
  if (endpoint === null) throw usageError(`${String(values.config)}: the status endpoint is off`, usage);
  const answer = await notifyTest(endpoint, output);
  if (answer === null) {
    io.stderr.write(`hb notify: the monitor has no output named "${output}"\n`);
    return ExitCode.USAGE;
  }
  if (answer.ok) {
    io.stdout.write(`${output}: test notice delivered\n`);
    return ExitCode.OK;
  }
  io.stderr.write(
    `hb notify: ${output}: ${answer.reason ?? "failed"}${answer.detail ? `: ${answer.detail}` : ""}\n`,
  );
  return ExitCode.NOT_ALL_UP;
}
