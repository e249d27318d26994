// `hb capture` in the monitor: one capture at a time, each a stream of the trace it records
// (wire/trace.ts). The rows come from the recorder on the receive path (recorder.ts); here they
// are formatted and written off the hot path, a bounded number per turn of the event loop, every
// 100 ms or when a chunk fills. What it holds is bounded: the file by the request's maxBytes, the
// rows waiting for a slow reader by CAPTURE_LIMITS.maxHeldRows. Either bound ends the capture
// early, and the trace says so (`# truncated REASON`); no row is ever left out of the middle of one.

import {
  CAPTURE_ENDS,
  formatCaptureEnd,
  readCaptureRequest,
  type CaptureEnd,
  type CaptureRequest,
  type ResultOf,
} from "../actions.js";
import type { Clock, Timer } from "../clock.js";
import type { Config } from "../config/types.js";
import type { Emit } from "../events.js";
import { matches, parseSelector } from "../selectors.js";
import type { Datagram } from "../wire/protocol.js";
import { TRACE_COLUMNS, TRACE_MAGIC, formatHeader, formatMs, formatRow } from "../wire/trace.js";
import type { BodyOut, StreamedBody } from "./http.js";
import { Recorder } from "./recorder.js";

export interface CaptureLimits {
  /** Rows recorded and not yet written past which a capture stops (`slow_reader`). */
  readonly maxHeldRows: number;
  /** How often recorded rows are written while a capture runs. */
  readonly flushMs: number;
  /** Rows formatted per turn of the event loop. */
  readonly rowsPerTurn: number;
  /** After its end, a stream the client takes nothing of for this long is dropped. */
  readonly drainMs: number;
  /** When the monitor stops, how long a capture's last rows may take to go out. */
  readonly closeMs: number;
}

/** 262 144 rows held are 4 MiB (a time and a reference each): at 10 000 datagrams/s, 26 s of a stalled reader. */
export const CAPTURE_LIMITS: CaptureLimits = Object.freeze({
  maxHeldRows: 262_144,
  flushMs: 100,
  rowsPerTurn: 2048,
  drainMs: 10_000,
  closeMs: 2000,
});

export interface CaptureDeps {
  clock: Clock;
  emit: Emit;
  config: () => Config;
  /** The node table's slot for the node a datagram names, and the id it holds there. */
  slotOf: (dg: Datagram) => number;
  idAt: (slot: number) => string | undefined;
  /** Puts a recorder on the receive path (null: takes it off). */
  attach(recorder: Recorder | null): void;
  /** When the first datagram held back by a reload in progress arrived; null when none is. */
  heldSince(): number | null;
}

/** What the end of end_ms may add to the header over start_ms's length (digits and decimals). */
const END_SLACK = 16;
/** The longest note a header may get: the estimate of its size counts it. */
const LONGEST_NOTE = `truncated ${CAPTURE_ENDS.reduce((a, b) => (b.length > a.length ? b : a))}`;

/** ".001" … ".999", and "" for 0: the decimals formatMs writes for each whole number of µs. */
const MICROS = Array.from({ length: 1000 }, (_, us) =>
  us === 0 ? "" : `.${String(us).padStart(3, "0")}`.replace(/0+$/, ""),
);
/** Beyond this, whole ms and µs may not be exact in a double: formatRow does it. */
const MAX_FAST_US = 2 ** 52;

/**
 * formatRow(id, at), without turning a fractional number into text (what most of a row's cost
 * was): the whole milliseconds are an integer's digits, the microseconds a string from a table.
 */
export function rowText(id: string, atMs: number): string {
  const us = Math.round(atMs * 1000);
  if (!(us >= 0 && us < MAX_FAST_US)) return formatRow(id, atMs);
  const ms = Math.floor(us / 1000);
  return `${id},${ms}${MICROS[us - ms * 1000]!}\n`;
}

function intervalLine(node: string, ms: number): string {
  return `# interval_ms ${node} ${formatMs(ms)}\n`;
}

function stallLine(fromMs: number, toMs: number): string {
  return `# stall ${formatMs(fromMs)} ${formatMs(toMs)}\n`;
}

/** One capture: started when its response starts, ended by its time, a bound, the client or the monitor's stop. */
class Capture implements StreamedBody {
  readonly contentType = "text/plain; charset=utf-8";
  private out: BodyOut | null = null;
  private recorder: Recorder | null = null;
  startMs = 0;
  private endMs = 0;
  /** Why recording stopped; null while it runs. */
  private reason: CaptureEnd | null = null;
  /** The stream is over: ended, or dropped. */
  private closed = false;
  private blocked = false;
  private flushQueued = false;
  private endTimer: Timer | undefined;
  private flushTimer: Timer | undefined;
  private drainTimer: Timer | undefined;
  /** Set by a flush that met the size bound: the arrival of the first row that did not fit. */
  private overflowAt: number | null = null;
  rows = 0;
  private rowBytes = 0;
  /** An upper bound on the header's size, as it will be written at the end. */
  private headerBytes = 0;
  private intervalMs = 0;
  private readonly nodes = new Set<string>();
  private readonly intervals = new Map<string, number>();
  private readonly stalls: [number, number][] = [];
  private readonly flushNow = (): void => this.flush();
  readonly finished: Promise<void>;
  private resolveFinished: () => void = () => undefined;

  constructor(
    readonly request: CaptureRequest,
    private readonly deps: CaptureDeps,
    private readonly limits: CaptureLimits,
    private readonly onEnd: () => void,
  ) {
    this.finished = new Promise((resolve) => (this.resolveFinished = resolve));
  }

  start(out: BodyOut): void {
    const { clock, config, emit } = this.deps;
    const { request, limits } = this;
    this.out = out;
    this.startMs = clock.monoMs();
    this.intervalMs = config().defaults.intervalMs;
    const empty = {
      startMs: this.startMs,
      endMs: this.startMs,
      intervalMs: this.intervalMs,
      stalls: [],
      crashes: new Map<string, number>(),
    };
    this.headerBytes = formatHeader({ ...empty, intervals: new Map() }, [LONGEST_NOTE]).length + END_SLACK;
    let match: ((id: string) => boolean) | null = null;
    if (request.node !== null) {
      const selector = parseSelector(request.node);
      if (typeof selector !== "string") match = (id) => matches(selector, id, null);
    }
    this.recorder = new Recorder(this.startMs, {
      slotOf: this.deps.slotOf,
      idAt: this.deps.idAt,
      match,
      maxRows: limits.maxHeldRows,
      onChunk: () => this.flushSoon(),
      onFull: (atMs) => this.stop("slow_reader", atMs),
    });
    out.onClose(() => this.gone());
    this.deps.attach(this.recorder);
    const { seconds, node, maxBytes, author } = request;
    emit("capture.started", { seconds, node, maxBytes, author });
    out.write(
      `${TRACE_MAGIC}\n# start_ms ${formatMs(this.startMs)}\n# interval_ms ${formatMs(this.intervalMs)}\n${TRACE_COLUMNS}\n`,
    );
    this.endTimer = clock.setTimeout(() => this.stop("done"), request.seconds * 1000);
    this.next();
  }

  /** The monitor could not run from `fromMs` to `toMs` (monitor.stalled). */
  stalled(fromMs: number, toMs: number): void {
    if (this.reason !== null || this.out === null || toMs < this.startMs) return;
    const from = Math.max(fromMs, this.startMs);
    this.stalls.push([from, toMs]);
    this.headerBytes += stallLine(from, toMs).length;
  }

  /**
   * Recording ends, at `atMs` (default now; or, while a reload holds datagrams back, when the
   * first of them arrived, since they are taken in after it); what was recorded is written.
   */
  stop(reason: CaptureEnd, atMs?: number): void {
    if (this.reason !== null || this.recorder === null) return;
    const { clock } = this.deps;
    this.reason = reason;
    this.endMs = atMs ?? Math.min(clock.monoMs(), this.deps.heldSince() ?? Number.POSITIVE_INFINITY);
    this.deps.attach(null);
    this.recorder.end();
    if (this.endTimer !== undefined) clock.clearTimeout(this.endTimer);
    if (this.flushTimer !== undefined) clock.clearTimeout(this.flushTimer);
    this.endTimer = this.flushTimer = undefined;
    if (reason === "client_gone") return this.finish(false);
    if (this.blocked) this.armDrain();
    this.flushSoon();
  }

  /** The client went away: nothing more is written. */
  private gone(): void {
    if (this.closed) return;
    if (this.reason === null) return this.stop("client_gone");
    this.reason = "client_gone";
    this.finish(false);
  }

  private flushSoon(): void {
    if (this.flushQueued || this.closed) return;
    this.flushQueued = true;
    this.deps.clock.setImmediate(this.flushNow);
  }

  /** Formats and writes up to rowsPerTurn rows, within the size bound. */
  private flush(): void {
    this.flushQueued = false;
    const { out, recorder } = this;
    if (out === null || recorder === null || this.closed || this.blocked) return;
    const { maxBytes } = this.request;
    const config = this.deps.config();
    let text = "";
    recorder.take(this.limits.rowsPerTurn, (id, at, firstInSlot) => {
      const row = rowText(id, at);
      const first = firstInSlot && !this.nodes.has(id);
      const interval = first ? (config.nodes.get(id)?.intervalMs ?? config.defaults.intervalMs) : 0;
      const extra = first && interval !== this.intervalMs ? intervalLine(id, interval).length : 0;
      if (this.headerBytes + extra + this.rowBytes + row.length > maxBytes) {
        this.overflowAt = at;
        return false;
      }
      if (first) this.nodes.add(id);
      if (extra > 0) {
        this.intervals.set(id, interval);
        this.headerBytes += extra;
      }
      this.rowBytes += row.length;
      this.rows++;
      text += row;
      return true;
    });
    if (text !== "" && !out.write(text)) this.block();
    if (this.overflowAt !== null) {
      this.stop("max_bytes", this.overflowAt);
      recorder.discard();
    }
    this.next();
  }

  /** What comes after a flush: more rows this turn, the next flush, or the end. */
  private next(): void {
    if (this.closed || this.blocked) return;
    if ((this.recorder?.held ?? 0) > 0) return this.flushSoon();
    if (this.reason !== null) return this.finish(true);
    this.flushTimer ??= this.deps.clock.setTimeout(() => {
      this.flushTimer = undefined;
      this.flush();
    }, this.limits.flushMs);
  }

  /** The client's buffer is full: rows wait (the recorder bounds them) until it drains. */
  private block(): void {
    this.blocked = true;
    this.out!.onDrain(() => {
      this.blocked = false;
      if (this.drainTimer !== undefined) this.deps.clock.clearTimeout(this.drainTimer);
      this.drainTimer = undefined;
      this.flush();
    });
    if (this.reason !== null) this.armDrain();
  }

  private armDrain(): void {
    if (this.drainTimer !== undefined) return;
    this.drainTimer = this.deps.clock.setTimeout(() => this.drop(), this.limits.drainMs);
  }

  /** The client does not take the rest: its connection is dropped, and the trace was not delivered. */
  drop(): void {
    if (this.closed) return;
    this.stop("slow_reader");
    this.reason = "slow_reader";
    this.finish(false);
    this.out?.destroy();
  }

  /** The header, now that the end is known, and the end marker; or nothing when the client is gone. */
  private finish(write: boolean): void {
    if (this.closed) return;
    this.closed = true;
    const { clock, emit } = this.deps;
    for (const timer of [this.endTimer, this.flushTimer, this.drainTimer])
      if (timer !== undefined) clock.clearTimeout(timer);
    this.recorder?.discard();
    const reason = this.reason ?? "client_gone";
    const endMs = this.endMs;
    let bytes = this.rowBytes;
    if (write && this.out !== null) {
      const stalls = this.stalls
        .filter(([from]) => from <= endMs)
        .map(([from, to]): [number, number] => [from, Math.min(to, endMs)]);
      const header = formatHeader(
        {
          startMs: this.startMs,
          endMs,
          intervalMs: this.intervalMs,
          intervals: this.intervals,
          stalls,
          // A monitor knows no crash: it saw silence, which a replay judges.
          crashes: new Map(),
        },
        reason === "done" ? [] : [`truncated ${reason}`],
      );
      bytes += header.length;
      this.out.write(header + formatCaptureEnd(reason, this.rows, bytes));
      this.out.end();
    }
    emit("capture.ended", {
      seconds: this.request.seconds,
      node: this.request.node,
      author: this.request.author,
      reason,
      rows: this.rows,
      nodes: this.nodes.size,
      bytes,
      capturedMs: Math.round(Math.max(0, endMs - this.startMs)),
    });
    this.onEnd();
    this.resolveFinished();
  }
}

/** The monitor's captures: at most one at a time. */
export class Captures {
  private current: Capture | null = null;
  private stopping = false;
  private rowsBefore = 0;

  constructor(
    private readonly deps: CaptureDeps,
    private readonly limits: CaptureLimits = CAPTURE_LIMITS,
  ) {}

  /** POST /capture: the capture's stream, or why not. */
  start(body: unknown): ResultOf<"capture"> {
    if (this.stopping) return { ok: false, status: 503, error: "the monitor is stopping" };
    const request = readCaptureRequest(body);
    if (typeof request === "string") return { ok: false, status: 400, error: request };
    const running = this.current;
    if (running !== null) {
      const ranS = Math.round((this.deps.clock.monoMs() - running.startMs) / 1000);
      return {
        ok: false,
        status: 409,
        error: `a capture is running already (${running.request.seconds} s, started ${ranS} s ago): one at a time`,
      };
    }
    const capture: Capture = new Capture(request, this.deps, this.limits, () => {
      this.rowsBefore += capture.rows;
      if (this.current === capture) this.current = null;
    });
    this.current = capture;
    return { ok: true, body: capture };
  }

  /** Rows written by every capture since the monitor started. */
  get rows(): number {
    return this.rowsBefore + (this.current?.rows ?? 0);
  }

  get running(): boolean {
    return this.current !== null;
  }

  stalled(fromMs: number, toMs: number): void {
    this.current?.stalled(fromMs, toMs);
  }

  /** The monitor stops: a capture running ends now, its trace written whole if the client takes it in time. */
  async close(): Promise<void> {
    this.stopping = true;
    const capture = this.current;
    if (capture === null) return;
    capture.stop("monitor_stopping");
    let timer: Timer | undefined;
    await Promise.race([
      capture.finished,
      new Promise<void>((resolve) => (timer = this.deps.clock.setTimeout(resolve, this.limits.closeMs))),
    ]);
    if (timer !== undefined) this.deps.clock.clearTimeout(timer);
    capture.drop();
  }
}
