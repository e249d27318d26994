// `hb reload`: what ExecReload= runs. Sends SIGHUP to the monitor and waits until the monitor's
// status shows that reload was handled, so that `systemctl reload hb-monitor` returns when the
// new config is in force, and fails (exit 78, with the errors) when the new config was rejected.

import { DEFAULT_CONFIG_PATH } from "../config/load.js";
import { ExitCode, HbError } from "../errors.js";
import { durationFlag, flagOrEnv, parseFlags, usageError } from "./flags.js";
import type { Io } from "./io.js";
import { fetchStatus, statusUrlOf } from "./status-client.js";

export const usage = `usage: hb reload [--config PATH] [--url URL] [--pid PID] [--timeout 10s]

  --config PATH  find the status endpoint in this config (env HB_CONFIG; default ${DEFAULT_CONFIG_PATH})
  --url URL      the monitor's status endpoint (env HB_STATUS_URL), instead of --config
  --pid PID      the monitor's process id (default: as its status endpoint reports it)
  --timeout D    how long to wait for the monitor to finish reloading (default 10s)`;

const POLL_MS = 50;

export async function run(args: readonly string[], io: Io): Promise<number> {
  const { values } = parseFlags(
    args,
    {
      config: { type: "string" },
      url: { type: "string" },
      pid: { type: "string" },
      timeout: { type: "string" },
    },
    usage,
  );
  const pidFlag = flagOrEnv(values.pid, io.env, "HB_PID");
  if (pidFlag !== undefined && !/^[1-9]\d*$/.test(pidFlag))
    throw usageError(`--pid: "${pidFlag}" is not a process id`, usage);
  const timeoutMs = durationFlag(
    typeof values.timeout === "string" ? values.timeout : "10s",
    "--timeout",
    usage,
  );
  const url =
    flagOrEnv(values.url, io.env, "HB_STATUS_URL") ??
    (await statusUrlOf(flagOrEnv(values.config, io.env, "HB_CONFIG") ?? DEFAULT_CONFIG_PATH));

  if (url === null) {
    if (pidFlag === undefined) throw usageError("the status endpoint is off: give --pid", usage);
    io.kill(Number(pidFlag), "SIGHUP");
    io.stderr.write("hb reload: signalled; the status endpoint is off, so not waiting for the result\n");
    return ExitCode.OK;
  }
  const before = await fetchStatus(url);
  io.kill(pidFlag === undefined ? before.pid : Number(pidFlag), "SIGHUP");
  const deadline = io.clock.monoMs() + timeoutMs;
  for (;;) {
    await new Promise<void>((resolve) => io.clock.setTimeout(resolve, POLL_MS));
    const after = await fetchStatus(url);
    if (after.reload.generation > before.reload.generation) {
      if (after.reload.ok === true) {
        io.stdout.write(
          after.reload.changes.length === 0
            ? "reloaded: no changes\n"
            : `reloaded:\n  ${after.reload.changes.join("\n  ")}\n`,
        );
        return ExitCode.OK;
      }
      throw new HbError("HB_ERR_CONFIG", "the monitor rejected the new config and keeps the old one", {
        details: after.reload.errors,
      });
    }
    if (io.clock.monoMs() > deadline) {
      throw new HbError(
        "HB_ERR_STATUS_UNAVAILABLE",
        `the monitor did not report the reload within ${timeoutMs} ms`,
      );
    }
  }
}
