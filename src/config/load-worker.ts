// The thread that reads and parses a config for a reload, so that a large file never stalls the
// monitor's loop, or parses one half of a large config while the starting thread parses the
// other (config/split.ts). It posts back the config as transferable data (config/transfer.ts),
// or the error as plain fields. Started by config/load-off-thread.ts on hb's own entry file
// (the bundle is one file), which hands a worker thread to serveConfigJob.

import { readlinkSync } from "node:fs";
import { setPriority } from "node:os";
import { parentPort, workerData } from "node:worker_threads";
import { HbError, type ErrorCode } from "../errors.js";
import { parseOrThrow, readConfigText } from "./load.js";
import { VERSION } from "../version.js";
import { encodeConfig, transferList, type ConfigData } from "./transfer.js";

export interface WorkerJob {
  path: string;
  /** The text to parse (one half of the file, see parseConfig's `half`); without it, the worker reads `path`. */
  text?: string;
  /** A reload's: the thread runs at the lowest priority, behind the monitor's own. */
  background?: boolean;
}

export type WorkerReply =
  | { ok: true; data: ConfigData; warnings: string[]; unresolved: string[] }
  | { ok: false; code: ErrorCode; message: string; details: string[] };

/** Marks the workerData of a config job, so that the entry file knows what the thread is for. */
export const CONFIG_JOB = "hbConfigJob";

/**
 * Runs the job in this worker thread's workerData and posts the reply to the parent. The thread
 * runs the entry file as it is on disk now: after a package upgrade, and until the monitor is
 * restarted, that may be another version than the parent's, whose reply the parent could misread.
 */
export async function serveConfigJob(): Promise<void> {
  const { path, text, background, version } = (
    workerData as Record<typeof CONFIG_JOB, WorkerJob & { version: string }>
  )[CONFIG_JOB];
  if (background === true) yieldToDetection();
  let reply: WorkerReply;
  let transfer: ArrayBuffer[] = [];
  if (version !== VERSION) {
    reply = {
      ok: false,
      code: "HB_ERR_INTERNAL",
      message: `hb ${VERSION} is installed, and this process is hb ${version}: restart it to load a config (systemctl restart hb-monitor)`,
      details: [],
    };
    parentPort!.postMessage(reply);
    return;
  }
  try {
    const { config, warnings, unresolved } =
      text === undefined
        ? parseOrThrow(await readConfigText(path), path)
        : parseOrThrow(text, path, { half: true });
    const data = encodeConfig(config);
    reply = { ok: true, data, warnings, unresolved };
    transfer = transferList(data);
  } catch (err) {
    reply =
      err instanceof HbError
        ? { ok: false, code: err.code, message: err.message, details: [...err.details] }
        : { ok: false, code: "HB_ERR_INTERNAL", message: (err as Error).stack ?? String(err), details: [] };
  }
  parentPort!.postMessage(reply, transfer);
}

/**
 * Lowers this thread's priority to the least (nice 19): on Linux the nice value is per thread,
 * and /proc/thread-self names this one. A reload then takes the CPU only when detection does not
 * need it, also on one core or with the monitor confined to one. Best effort: where it cannot,
 * the reload simply competes as any thread does.
 */
function yieldToDetection(): void {
  try {
    setPriority(Number(readlinkSync("/proc/thread-self").split("/").at(-1)), 19);
  } catch {
    // not Linux, or /proc hidden: nothing to do
  }
}
