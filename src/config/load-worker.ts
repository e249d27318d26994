// The thread that reads and parses a config for a reload, so that a large file never stalls the
// monitor's loop, or parses one half of a large config while the starting thread parses the
// other (config/split.ts). It posts back the config as transferable data (config/transfer.ts),
// or the error as plain fields. Started by config/load-off-thread.ts.

import { parentPort, workerData } from "node:worker_threads";
import { HbError } from "../errors.js";
import { parseOrThrow, readConfigText } from "./load.js";
import { encodeConfig, transferList } from "./transfer.js";
import type { WorkerJob, WorkerReply } from "./load-off-thread.js";

const { path, text } = workerData as WorkerJob;
let reply: WorkerReply;
let transfer: ArrayBuffer[] = [];
try {
  const { config, warnings } = parseOrThrow(text ?? (await readConfigText(path)), path);
  const data = encodeConfig(config);
  reply = { ok: true, data, warnings };
  transfer = transferList(data);
} catch (err) {
  reply =
    err instanceof HbError
      ? { ok: false, code: err.code, message: err.message, details: [...err.details] }
      : { ok: false, code: "HB_ERR_INTERNAL", message: (err as Error).stack ?? String(err), details: [] };
}
parentPort!.postMessage(reply, transfer);
