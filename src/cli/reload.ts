// `hb reload`: what ExecReload= runs. Sends SIGHUP to the monitor and waits until the monitor's
// status shows that reload was handled, so that `systemctl reload hb-monitor` returns when the
// new config is in force, and fails (exit 78, with the errors) when the new config was rejected.
// Whoever answers on the status port may not be the monitor: only a process that /proc shows to
// be this hb's `monitor` command (and the --pid/$MAINPID one, when given) is ever signalled.

import { readFileSync, realpathSync } from "node:fs";
import { isAbsolute, join } from "node:path";
import { DEFAULT_CONFIG_PATH } from "../config/load.js";
import { ExitCode, HbError } from "../errors.js";
import { durationFlag, flagOrEnv, parseFlags, usageError } from "./flags.js";
import type { Io } from "./io.js";
import { ENDPOINT_FLAGS, endpointFromFlags, fetchReloadStatus } from "./status-client.js";
import { escapeControls } from "./status-table.js";

export const usage = `usage: hb reload [--config PATH] [--url URL | --socket PATH] [--pid PID] [--timeout 10s]

  --config PATH  find the status endpoint in this config (env HB_CONFIG; default ${DEFAULT_CONFIG_PATH})
  --url URL      the monitor's status endpoint (env HB_STATUS_URL), instead of --config
  --socket PATH  the monitor's status endpoint is this Unix socket (env HB_STATUS_SOCKET)
  --pid PID      the monitor's process id (env HB_PID; systemd: $MAINPID); the status endpoint
                 must report the same one
  --timeout D    how long to wait for the monitor to finish reloading (default 10s)`;

const POLL_MS = 50;

function realpathOr(path: string): string | null {
  try {
    return realpathSync(path);
  } catch {
    return null;
  }
}

/**
 * Why `pid` is not a running `hb monitor` of this same hb, or null when it is: its command line
 * has this hb's script (compared by real path, relative ones from the process's own directory)
 * followed by `monitor`.
 */
export function notOurMonitor(pid: number, self: readonly string[]): string | null {
  if (!Number.isSafeInteger(pid) || pid <= 1) return `${pid} is not a monitor's process id`;
  let argv: string[];
  try {
    argv = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
  } catch {
    return `process ${pid} does not exist`;
  }
  const script = realpathOr(self.at(-1) ?? "");
  if (script === null) return "cannot find this hb's own script";
  for (let i = 1; i + 1 < argv.length; i++) {
    if (argv[i + 1] !== "monitor") continue;
    const arg = argv[i]!;
    if (realpathOr(isAbsolute(arg) ? arg : join(`/proc/${pid}/cwd`, arg)) === script) return null;
  }
  return `process ${pid} is not an hb monitor`;
}

export const flags = {
  ...ENDPOINT_FLAGS,
  pid: { type: "string" },
  timeout: { type: "string" },
} as const;

export async function run(args: readonly string[], io: Io): Promise<number> {
  const { values } = parseFlags(args, flags, usage);
  const pidFlag = flagOrEnv(values.pid, io.env, "HB_PID");
  if (pidFlag !== undefined && !/^[1-9]\d{0,9}$/.test(pidFlag))
    throw usageError(`--pid: "${pidFlag}" is not a process id`, usage);
  const timeoutMs = durationFlag(
    typeof values.timeout === "string" ? values.timeout : "10s",
    "--timeout",
    usage,
  );
  const endpoint = await endpointFromFlags(
    values,
    io.env,
    flagOrEnv(undefined, io.env, "HB_CONFIG") ?? DEFAULT_CONFIG_PATH,
  );

  // A pid given with --pid is the caller's word (systemd's $MAINPID, or an operator's): it is
  // signalled as long as it is a process id. A pid learnt from the status endpoint could come
  // from whoever bound that port first, so it must be shown by /proc to be an hb monitor. (Under
  // systemd the check could not be made anyway: ProtectProc= hides the monitor from ExecReload.)
  const signal = (pid: number): void => {
    const problem =
      pidFlag !== undefined && pid === Number(pidFlag)
        ? pid > 1
          ? null
          : `${pid} is not a monitor's process id`
        : notOurMonitor(pid, io.self);
    if (problem !== null) throw new HbError("HB_ERR_NOT_MONITOR", `not signalled: ${problem}`);
    io.kill(pid, "SIGHUP");
  };
  if (endpoint === null) {
    if (pidFlag === undefined) throw usageError("the status endpoint is off: give --pid", usage);
    signal(Number(pidFlag));
    io.stderr.write("hb reload: signalled; the status endpoint is off, so not waiting for the result\n");
    return ExitCode.OK;
  }
  const before = await fetchReloadStatus(endpoint);
  if (pidFlag !== undefined && before.pid !== Number(pidFlag)) {
    throw new HbError(
      "HB_ERR_NOT_MONITOR",
      `not signalled: the status endpoint reports process ${escapeControls(String(before.pid))}, not the monitor's ${pidFlag}`,
    );
  }
  signal(before.pid);
  const deadline = io.clock.monoMs() + timeoutMs;
  for (;;) {
    await new Promise<void>((resolve) => io.clock.setTimeout(resolve, POLL_MS));
    const after = await fetchReloadStatus(endpoint);
    if (after.reload.generation > before.reload.generation) {
      const lines = (list: unknown[]): string[] => list.map((line) => escapeControls(String(line)));
      if (after.reload.ok === true) {
        io.stdout.write(
          after.reload.changes.length === 0
            ? "reloaded: no changes\n"
            : `reloaded:\n  ${lines(after.reload.changes).join("\n  ")}\n`,
        );
        return ExitCode.OK;
      }
      throw new HbError("HB_ERR_CONFIG", "the monitor rejected the new config and keeps the old one", {
        details: lines(after.reload.errors),
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
