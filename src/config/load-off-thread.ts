// Loading a config on worker threads (config/load-worker.ts). For a reload, without blocking the
// caller's event loop: the worker reads, parses and validates the file, and this thread rebuilds
// the frozen Config in slices and reads the key files asynchronously. At start, a large config
// is parsed in two halves at once, one here and one in a worker (config/split.ts).

import { setImmediate as nextTurn } from "node:timers/promises";
import { Worker } from "node:worker_threads";
import { HbError } from "../errors.js";
import { VERSION } from "../version.js";
import { CONFIG_JOB, type WorkerJob, type WorkerReply } from "./load-worker.js";
import { loadFiles, parseOrThrow, readConfigText, type LoadedConfig } from "./load.js";
import { parseConfig } from "./parse.js";
import { mergeHalves, splitNodes } from "./split.js";
import { decodeConfig } from "./transfer.js";
import { formatProblem, type Config } from "./types.js";

/** Nodes rebuilt per turn of the loop: a few milliseconds of work each. */
const NODES_PER_TURN = 5000;

/**
 * `entry` is hb's own entry file, which serves config jobs on worker threads (config/load-worker.ts).
 * `detached`: the worker does not keep the process alive (a monitor stopping mid-reload).
 */
function parseInWorker(entry: URL, job: WorkerJob, detached: boolean): Promise<WorkerReply> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(entry, {
      workerData: { [CONFIG_JOB]: { ...job, version: VERSION } },
      // A reload needs nothing from the parent's stdio; the monitor's stdout is its event log.
      stdout: true,
      stderr: true,
    });
    if (detached) worker.unref();
    let reply: WorkerReply | undefined;
    worker.once("message", (message: WorkerReply) => (reply = message));
    worker.once("error", reject);
    worker.once("exit", (code) => {
      if (reply !== undefined) resolve(reply);
      else reject(new Error(`the config reader thread exited (code ${code}) without an answer`));
    });
  });
}

/**
 * Loads `path`; nodes equal to those of `current` are kept as the same objects. `pause` is
 * awaited between slices of rebuilding (by default, a turn of the loop).
 */
export async function loadConfigOffThread(
  entry: URL,
  path: string,
  current?: Config,
  pause: () => Promise<void> = () => nextTurn(),
): Promise<LoadedConfig> {
  const reply = await parseInWorker(entry, { path, background: true }, true);
  if (!reply.ok) throw new HbError(reply.code, reply.message, { details: reply.details });
  const config = await decodeConfig(reply.data, NODES_PER_TURN, pause, current?.nodes);
  const hookProblems: string[] = [];
  const keyring = await loadFiles(config, path, hookProblems);
  return { config, keyring, warnings: reply.warnings, hookProblems };
}

/** Below this, starting a worker costs more than it saves. */
const SPLIT_MIN_CHARS = 256 * 1024;

/**
 * Reads, parses and validates a config, and its key files: a large one on two threads (this
 * one, which is blocked meanwhile, and a worker), with the same result as loadConfig.
 */
export async function loadConfigOnTwoThreads(entry: URL, path: string): Promise<LoadedConfig> {
  const text = await readConfigText(path);
  const halves = text.length < SPLIT_MIN_CHARS ? null : splitNodes(text);
  let config: Config | null = null;
  let warnings: string[] = [];
  if (halves !== null) {
    const other = parseInWorker(entry, { path, text: halves[1] }, false).catch(() => null);
    const first = parseConfig(halves[0], path, { half: true });
    const second = await other;
    if (first.ok && second?.ok === true) {
      // No node is in both halves of a merge: the first's nodes only lend their φ settings.
      const rest = await decodeConfig(
        second.data,
        Number.POSITIVE_INFINITY,
        () => Promise.resolve(),
        first.config.nodes,
      );
      config = mergeHalves(first.config, rest, [...(first.unresolved ?? []), ...second.unresolved]);
      warnings = [...new Set([...first.warnings.map((w) => formatProblem(path, w)), ...second.warnings])];
    }
  }
  // One thread, whenever the halves cannot stand for the whole: the problems come out as usual.
  if (config === null) ({ config, warnings } = parseOrThrow(text, path));
  const hookProblems: string[] = [];
  const keyring = await loadFiles(config, path, hookProblems);
  return { config, keyring, warnings, hookProblems };
}
