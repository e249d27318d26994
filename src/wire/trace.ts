// The trace format: when each datagram arrived, per node, on one monotonic clock in milliseconds.
// `hb capture` writes it from a running monitor, `hb replay` and `hb tune` read it, and any tool
// can make one (docs/evidence.md). Plain CSV with a few `#` header lines:
//
//   # hb-trace 1
//   # start_ms 0
//   # end_ms 600000
//   # interval_ms 1000
//   # interval_ms web-1 500          (a node whose interval differs from the trace's)
//   # stall 120000 121500            (the monitor could not run in this span)
//   # crash web-1 300000.5           (optional: web-1's process died then, sending nothing after)
//   node,arrival_ms
//   web-1,12.5
//
// Rows come in arrival order (never decreasing), every arrival within [start, end].

import { isId } from "./protocol.js";

export const TRACE_MAGIC = "# hb-trace 1";
export const TRACE_COLUMNS = "node,arrival_ms";

export interface TraceHeader {
  /** When recording began and ended, on the trace's clock. */
  readonly startMs: number;
  readonly endMs: number;
  /** The interval the nodes were told to send at. */
  readonly intervalMs: number;
  /** Nodes whose interval differs from `intervalMs`. */
  readonly intervals: ReadonlyMap<string, number>;
  /** Spans in which the monitor could not run: what arrived then was read at the span's end. */
  readonly stalls: readonly (readonly [fromMs: number, toMs: number])[];
  /**
   * Nodes known to have crashed, and when (a generated trace, a test's schedule): such a node
   * sent nothing after, though what it sent just before may still arrive.
   */
  readonly crashes: ReadonlyMap<string, number>;
}

export interface Trace extends TraceHeader {
  /** Node ids, in order of first arrival. */
  readonly nodes: readonly string[];
  /** Per row, the node's index in `nodes`, and its arrival. */
  readonly node: Uint32Array;
  readonly arrivalMs: Float64Array;
}

export class TraceError extends Error {
  constructor(
    readonly line: number,
    /** What is wrong with that line. */
    readonly reason: string,
  ) {
    super(`line ${line}: ${reason}`);
  }
}

/** A time as the trace writes it: milliseconds, to the microsecond, without trailing zeros. */
export function formatMs(ms: number): string {
  return String(Math.round(ms * 1000) / 1000);
}

/**
 * The header lines, each ending in "\n", through the column line; `notes` go in as `# NOTE`
 * lines after the fields (a reader skips what it does not know: `truncated max_bytes`).
 */
export function formatHeader(header: TraceHeader, notes: readonly string[] = []): string {
  const lines = [
    TRACE_MAGIC,
    `# start_ms ${formatMs(header.startMs)}`,
    `# end_ms ${formatMs(header.endMs)}`,
    `# interval_ms ${formatMs(header.intervalMs)}`,
  ];
  for (const [node, ms] of header.intervals) lines.push(`# interval_ms ${node} ${formatMs(ms)}`);
  for (const [from, to] of header.stalls) lines.push(`# stall ${formatMs(from)} ${formatMs(to)}`);
  for (const [node, ms] of header.crashes) lines.push(`# crash ${node} ${formatMs(ms)}`);
  for (const note of notes) lines.push(`# ${note}`);
  lines.push(TRACE_COLUMNS);
  return lines.join("\n") + "\n";
}

export function formatRow(node: string, arrivalMs: number): string {
  return `${node},${formatMs(arrivalMs)}\n`;
}

/** A whole trace as text (the generator and tests; `hb capture` writes rows as they come). */
export function formatTrace(trace: Trace): string {
  const rows: string[] = [formatHeader(trace)];
  for (let i = 0; i < trace.node.length; i++)
    rows.push(formatRow(trace.nodes[trace.node[i]!]!, trace.arrivalMs[i]!));
  return rows.join("");
}

const NUMBER = /^-?\d+(\.\d+)?$/;

function number(text: string | undefined, line: number, what: string): number {
  if (text === undefined || !NUMBER.test(text))
    throw new TraceError(line, `${what} must be a number of ms, not ${JSON.stringify(text ?? "")}`);
  return Number(text);
}

/** Reads a trace; a malformed one is a TraceError naming its first bad line. */
export function parseTrace(text: string): Trace {
  const lines = text.split("\n");
  if (lines[lines.length - 1] === "") lines.pop();
  if (lines[0]?.trimEnd() !== TRACE_MAGIC)
    throw new TraceError(1, `not an hb trace: the first line must be "${TRACE_MAGIC}"`);
  let startMs: number | undefined;
  let endMs: number | undefined;
  let intervalMs: number | undefined;
  const intervals = new Map<string, number>();
  const stalls: [number, number][] = [];
  const crashes = new Map<string, number>();
  let k = 1;
  for (; k < lines.length; k++) {
    const line = lines[k]!.trimEnd();
    const n = k + 1;
    if (line === TRACE_COLUMNS) break;
    if (!line.startsWith("#")) throw new TraceError(n, `expected a "#" header line or "${TRACE_COLUMNS}"`);
    const words = line.slice(1).trim().split(/\s+/);
    switch (words[0]) {
      case "start_ms":
        startMs = number(words[1], n, "start_ms");
        break;
      case "end_ms":
        endMs = number(words[1], n, "end_ms");
        break;
      case "interval_ms":
        if (words.length === 2) intervalMs = number(words[1], n, "interval_ms");
        else {
          if (!isId(words[1]!)) throw new TraceError(n, `bad node id ${JSON.stringify(words[1])}`);
          intervals.set(words[1]!, number(words[2], n, "interval_ms"));
        }
        break;
      case "stall": {
        const from = number(words[1], n, "a stall's start");
        const to = number(words[2], n, "a stall's end");
        if (to < from) throw new TraceError(n, "a stall ends before it starts");
        stalls.push([from, to]);
        break;
      }
      case "crash": {
        if (words[1] === undefined || !isId(words[1]))
          throw new TraceError(n, `bad node id ${JSON.stringify(words[1] ?? "")}`);
        if (crashes.has(words[1])) throw new TraceError(n, `a second crash of ${words[1]}`);
        crashes.set(words[1], number(words[2], n, "a crash's time"));
        break;
      }
      default:
        // Other comments are the writer's notes: kept out of the way, not refused.
        break;
    }
  }
  if (k === lines.length) throw new TraceError(k, `no "${TRACE_COLUMNS}" line`);
  if (startMs === undefined) throw new TraceError(k + 1, "no start_ms in the header");
  if (endMs === undefined) throw new TraceError(k + 1, "no end_ms in the header");
  if (intervalMs === undefined || intervalMs <= 0)
    throw new TraceError(k + 1, "no interval_ms above 0 in the header");
  if (endMs < startMs) throw new TraceError(k + 1, "end_ms is before start_ms");
  for (const ms of intervals.values())
    if (ms <= 0) throw new TraceError(k + 1, "an interval_ms must be above 0");
  for (const [node, ms] of crashes)
    if (ms < startMs || ms > endMs) throw new TraceError(k + 1, `the crash of ${node} is outside the trace`);

  const rows = lines.length - k - 1;
  const node = new Uint32Array(rows);
  const arrivalMs = new Float64Array(rows);
  const nodes: string[] = [];
  const index = new Map<string, number>();
  let last = startMs;
  let count = 0;
  for (k++; k < lines.length; k++) {
    const line = lines[k]!.trimEnd();
    const n = k + 1;
    if (line === "" || line.startsWith("#")) continue;
    const comma = line.indexOf(",");
    const id = comma < 0 ? line : line.slice(0, comma);
    if (!isId(id)) throw new TraceError(n, `bad node id ${JSON.stringify(id)}`);
    const at = number(comma < 0 ? undefined : line.slice(comma + 1), n, "arrival_ms");
    if (at < last)
      throw new TraceError(n, `arrivals must not go back in time (${formatMs(at)} after ${formatMs(last)})`);
    if (at > endMs) throw new TraceError(n, `an arrival after end_ms (${formatMs(at)})`);
    last = at;
    let i = index.get(id);
    if (i === undefined) {
      index.set(id, (i = nodes.length));
      nodes.push(id);
    }
    node[count] = i;
    arrivalMs[count++] = at;
  }
  return {
    startMs,
    endMs,
    intervalMs,
    intervals,
    stalls,
    crashes,
    nodes,
    node: node.subarray(0, count),
    arrivalMs: arrivalMs.subarray(0, count),
  };
}

/** A node's interval in `trace`. */
export function intervalOf(trace: TraceHeader, node: string): number {
  return trace.intervals.get(node) ?? trace.intervalMs;
}
