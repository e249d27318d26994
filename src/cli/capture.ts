// `hb capture --seconds N --out FILE`: the running monitor records the arrival of every datagram
// its detector accepts, for N seconds, and streams the rows here (docs/evidence.md). They go to a
// temporary file beside FILE as they come; at the end FILE is written whole (the header, with the
// real end, then the rows) and renamed into place: it is complete, or absent. A one-line summary
// goes to stderr. Exit 0 done (also when the capture stopped early: the trace says why), 1 the
// monitor refused (one capture at a time) or the command was interrupted, 64 bad usage, 69 the
// monitor is unreachable or stopping, or cut the stream short, 73 FILE cannot be created.

import { open, rename, rm, stat, type FileHandle } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import {
  DEFAULT_CAPTURE_MAX_BYTES,
  MAX_CAPTURE_MAX_BYTES,
  MAX_CAPTURE_SECONDS,
  MIN_CAPTURE_MAX_BYTES,
  parseCaptureEnd,
  type CaptureEnd,
} from "../actions.js";
import { ExitCode, HbError } from "../errors.js";
import { parseSelector } from "../selectors.js";
import { formatSize, parseSize } from "../size.js";
import { TRACE_COLUMNS, TRACE_MAGIC, TraceError, parseTrace } from "../wire/trace.js";
import { parseFlags, usageError } from "./flags.js";
import type { Io } from "./io.js";
import { askStream, DEFAULT_STATUS_URL, ENDPOINT_FLAGS, endpointFromFlags } from "./status-client.js";

export const usage = `usage: hb capture --seconds N --out FILE [--node GLOB] [--max-bytes SIZE]
                  [--url URL | --socket PATH | --config PATH]

  Records when each node datagram the running monitor accepts arrives, by its monotonic clock,
  for N seconds, as a trace (the input of hb replay and hb tune).
  --seconds N      how long: 1 to ${MAX_CAPTURE_SECONDS}
  --out FILE       the trace file, written whole at the end ("-": standard output)
  --node GLOB      only the nodes this id or glob matches (web-*, db-?)
  --max-bytes SIZE the file's bound (default ${formatSize(DEFAULT_CAPTURE_MAX_BYTES)}): the capture stops early at it
  --url URL        the monitor's status endpoint (env HB_STATUS_URL; default ${DEFAULT_STATUS_URL})
  --socket PATH    the monitor's status endpoint is this Unix socket (env HB_STATUS_SOCKET)
  --config PATH    use the status address this monitor config names`;

export const flags = {
  seconds: { type: "string" },
  out: { type: "string" },
  node: { type: "string" },
  "max-bytes": { type: "string" },
  ...ENDPOINT_FLAGS,
} as const;

/** A trace on standard output is written on while less than this waits for its reader. */
const MAX_STDOUT_QUEUED_BYTES = 4 * 1024 * 1024;
const STDOUT_WAIT_MS = 10;
/** The monitor may be quiet this long past the capture's end before the stream is given up. */
const IDLE_MARGIN_MS = 30_000;

const STOPPED_EARLY: Readonly<Record<Exclude<CaptureEnd, "done">, string>> = {
  max_bytes: "it reached --max-bytes",
  slow_reader: "this command did not read fast enough",
  client_gone: "the connection was lost",
  monitor_stopping: "the monitor stopped",
};

/** 12034 -> "12 034". */
function grouped(n: number): string {
  return String(n).replace(/\B(?=(\d{3})+$)/g, " ");
}

function humanBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 ** 2) return `${Math.round(bytes / 1024)} KiB`;
  return `${(bytes / 1024 ** 2).toFixed(1)} MiB`;
}

function cantCreate(path: string, err: unknown): never {
  throw new HbError(
    "HB_ERR_WRITE",
    `cannot create ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`,
    { cause: err },
  );
}

/** A file beside `path` (in the temporary directory for standard output), created here, not found. */
async function createBeside(
  path: string,
  suffix: string,
  io: Io,
): Promise<{ path: string; file: FileHandle }> {
  const dir = path === "-" ? tmpdir() : dirname(path);
  const name = join(dir, `.${path === "-" ? "hb-capture" : basename(path)}.${io.pid}.${suffix}`);
  try {
    return { path: name, file: await open(name, "wx", 0o644) };
  } catch (err) {
    return cantCreate(name, err);
  }
}

/** FILE can be replaced by a file: it is one, or nothing is there yet. */
async function replaceable(path: string): Promise<void> {
  if (path === "-") return;
  const found = await stat(path).catch(() => null);
  if (found !== null && !found.isFile()) cantCreate(path, new Error("not a regular file"));
}

interface Received {
  /** The trace's header, as the monitor wrote it at the end. */
  header: string;
  reason: CaptureEnd;
  rows: number;
  nodes: number;
  bytes: number;
}

/** Reads the stream: its head, the rows (to `rows`), the trace's header and the end marker. */
async function receive(
  stream: AsyncIterable<Buffer | string>,
  rows: { path: string; file: FileHandle },
  where: string,
): Promise<Received> {
  const cut = (why: string): HbError =>
    new HbError("HB_ERR_STATUS_UNAVAILABLE", `${where}: the capture's stream ${why}`);
  let phase: "magic" | "head" | "rows" | "header" | "end" | "over" = "magic";
  let partial = "";
  let header = "";
  let rowCount = 0;
  let rowBytes = 0;
  let end: ReturnType<typeof parseCaptureEnd> = null;
  const nodes = new Set<string>();
  for await (const chunk of stream) {
    const lines = (partial + chunk.toString()).split("\n");
    partial = lines.pop()!;
    let text = "";
    for (const line of lines) {
      switch (phase) {
        case "magic":
          if (line !== TRACE_MAGIC) throw cut("is not an hb trace");
          phase = "head";
          break;
        case "head":
          if (line === TRACE_COLUMNS) phase = "rows";
          break;
        case "rows":
          if (line === TRACE_MAGIC) {
            header = `${line}\n`;
            phase = "header";
          } else if (!line.startsWith("#")) {
            text += `${line}\n`;
            rowCount++;
            nodes.add(line.slice(0, line.indexOf(",")));
          }
          break;
        case "header":
          header += `${line}\n`;
          if (line === TRACE_COLUMNS) phase = "end";
          break;
        case "end":
          end = parseCaptureEnd(line);
          if (end === null) throw cut(`ended with ${JSON.stringify(line.slice(0, 80))}`);
          phase = "over";
          break;
        case "over":
          throw cut("went on after its end");
      }
    }
    if (text !== "") {
      rowBytes += text.length;
      await rows.file.write(text).catch((err: unknown) => cantCreate(rows.path, err));
    }
  }
  if (end === null) throw cut("was cut short");
  if (end.rows !== rowCount || end.bytes !== rowBytes + header.length)
    throw cut(
      `does not add up (${rowCount} rows of ${end.rows}, ${rowBytes + header.length} bytes of ${end.bytes})`,
    );
  return { header, reason: end.reason, rows: rowCount, nodes: nodes.size, bytes: end.bytes };
}

/**
 * FILE, whole: the header, then the rows, in a file beside it that is synced and renamed into
 * place. Standard output is written to as it is, as fast as its reader takes it.
 */
async function writeWhole(out: string, header: string, rowsPath: string, io: Io, temporaries: string[]) {
  const whole = out === "-" ? null : await createBeside(out, "tmp", io);
  if (whole !== null) temporaries.push(whole.path);
  const write = async (data: string): Promise<void> => {
    if (whole !== null) return void (await whole.file.write(data));
    io.stdout.write(data);
    while ((io.stdout.queuedBytes ?? 0) > MAX_STDOUT_QUEUED_BYTES)
      await new Promise<void>((resolve) => io.clock.setTimeout(resolve, STDOUT_WAIT_MS));
  };
  try {
    await write(header);
    const rows = await open(rowsPath, "r");
    try {
      // The rows are ASCII: a chunk ends on a whole character.
      for await (const chunk of rows.createReadStream({ autoClose: false })) await write(String(chunk));
    } finally {
      await rows.close();
    }
    if (whole !== null) await whole.file.sync();
  } catch (err) {
    cantCreate(whole?.path ?? out, err);
  } finally {
    await whole?.file.close();
  }
  if (whole !== null) await rename(whole.path, out).catch((err: unknown) => cantCreate(out, err));
  // All of it is taken before the command ends (the process gives a slow reader only seconds then).
  while ((io.stdout.queuedBytes ?? 0) > 0)
    await new Promise<void>((resolve) => io.clock.setTimeout(resolve, STDOUT_WAIT_MS));
}

function interrupted(io: Io): number {
  io.stderr.write("hb capture: interrupted; nothing written\n");
  return ExitCode.NOT_ALL_UP;
}

export async function run(args: readonly string[], io: Io): Promise<number> {
  const { values } = parseFlags(args, flags, usage);
  const secondsText = typeof values.seconds === "string" ? values.seconds : undefined;
  if (secondsText === undefined) throw usageError("--seconds is required", usage);
  const seconds = /^\d+$/.test(secondsText) ? Number(secondsText) : Number.NaN;
  if (!(seconds >= 1 && seconds <= MAX_CAPTURE_SECONDS))
    throw usageError(
      `--seconds: "${secondsText}" is not a whole number from 1 to ${MAX_CAPTURE_SECONDS}`,
      usage,
    );
  const out = typeof values.out === "string" ? values.out : undefined;
  if (out === undefined || out === "") throw usageError('--out is required (a file, or "-")', usage);
  const node = typeof values.node === "string" ? values.node : null;
  if (node !== null) {
    const selector = parseSelector(node);
    if (typeof selector === "string" || selector.kind === "label")
      throw usageError(`--node: "${node}" is not a node id or a glob over ids (web-*, db-?)`, usage);
  }
  let maxBytes = DEFAULT_CAPTURE_MAX_BYTES;
  if (typeof values["max-bytes"] === "string") {
    const text = values["max-bytes"];
    maxBytes = parseSize(text) ?? Number.NaN;
    if (!(maxBytes >= MIN_CAPTURE_MAX_BYTES && maxBytes <= MAX_CAPTURE_MAX_BYTES))
      throw usageError(
        `--max-bytes: "${text}" is not a size from ${formatSize(MIN_CAPTURE_MAX_BYTES)} to ${formatSize(MAX_CAPTURE_MAX_BYTES)} (64MiB, 1GiB, 500000)`,
        usage,
      );
  }
  const endpoint = await endpointFromFlags(values, io.env);
  if (endpoint === null) throw usageError(`${String(values.config)}: the status endpoint is off`, usage);

  // Where the rows go first: a capture whose trace could not be kept is not started.
  await replaceable(out);
  const rows = await createBeside(out, "rows", io);
  const temporaries = [rows.path];
  let rowsOpen = true;
  // Interrupted, the command leaves nothing behind; the monitor ends the capture (client_gone).
  const interrupt = new AbortController();
  const unsubscribe = (["SIGINT", "SIGTERM"] as const).map((signal) =>
    io.onSignal(signal, () => interrupt.abort()),
  );
  try {
    const reply = await askStream(
      endpoint,
      "capture",
      { seconds, node, maxBytes, author: io.env.SUDO_USER ?? io.env.USER ?? io.env.LOGNAME ?? "" },
      seconds * 1000 + IDLE_MARGIN_MS,
      interrupt.signal,
    ).catch((err: unknown) => {
      if (interrupt.signal.aborted) return null;
      throw err;
    });
    if (reply === null) return interrupted(io);
    if ("answer" in reply) {
      const { status, error } = reply.answer;
      io.stderr.write(`hb capture: ${error}\n`);
      if (status === 400) return ExitCode.USAGE;
      return status === 503 ? ExitCode.UNAVAILABLE : ExitCode.NOT_ALL_UP;
    }
    let received: Received;
    try {
      received = await receive(reply.stream, rows, endpoint.socketPath ?? endpoint.url.href);
    } catch (err) {
      if (interrupt.signal.aborted) return interrupted(io);
      if (err instanceof HbError) throw err;
      throw new HbError("HB_ERR_STATUS_UNAVAILABLE", `the capture's stream broke off: ${String(err)}`, {
        cause: err,
      });
    }
    await rows.file.close();
    rowsOpen = false;
    let trace;
    try {
      trace = parseTrace(received.header);
    } catch (err) {
      throw new HbError(
        "HB_ERR_STATUS_UNAVAILABLE",
        `the monitor's trace header is not valid: ${err instanceof TraceError ? err.message : String(err)}`,
      );
    }
    await writeWhole(out, received.header, rows.path, io, temporaries);
    const shownAs = out === "-" ? "stdout" : out;
    const tookS = ((trace.endMs - trace.startMs) / 1000).toFixed(1);
    io.stderr.write(
      `captured ${grouped(received.rows)} arrivals of ${grouped(received.nodes)} node${received.nodes === 1 ? "" : "s"} in ${tookS} s → ${shownAs} (${humanBytes(received.bytes)})` +
        (received.reason === "done"
          ? "\n"
          : `; stopped early: ${STOPPED_EARLY[received.reason]} (${received.reason})\n`),
    );
    return ExitCode.OK;
  } finally {
    unsubscribe.forEach((off) => off());
    if (rowsOpen) await rows.file.close();
    await Promise.all(temporaries.map((path) => rm(path, { force: true })));
  }
}
