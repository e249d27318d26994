// A capture's stream read in process: a BodyOut that keeps what is written (and can play a
// client that stops reading, or goes away), and the trace that the stream makes as `hb capture`
// writes it (the header the monitor sends at the end, then the rows).
import { parseCaptureEnd } from "../../src/actions.js";
import type { BodyOut, StreamedBody } from "../../src/monitor/http.js";
import { TRACE_COLUMNS, TRACE_MAGIC, parseTrace, type Trace } from "../../src/wire/trace.js";

export class CaptureOut implements BodyOut {
  text = "";
  ended = false;
  destroyed = false;
  /** While set, every write is taken but answers false (the client's buffer is full). */
  full = false;
  private drains: (() => void)[] = [];
  private closes: (() => void)[] = [];

  write(text: string): boolean {
    this.text += text;
    return !this.full;
  }
  end(): void {
    this.ended = true;
  }
  destroy(): void {
    this.destroyed = true;
    this.close();
  }
  onDrain(listener: () => void): void {
    this.drains.push(listener);
  }
  onClose(listener: () => void): void {
    this.closes.push(listener);
  }
  /** The client read what it was sent. */
  drain(): void {
    this.full = false;
    this.drains.splice(0).forEach((l) => l());
  }
  /** The client went away. */
  close(): void {
    if (!this.ended) this.closes.splice(0).forEach((l) => l());
  }
}

export interface CapturedFile {
  /** The file `hb capture` writes: the final header, then the rows. */
  file: string;
  trace: Trace;
  /** The header's `#` lines that are not fields (`truncated max_bytes`). */
  notes: string[];
  end: NonNullable<ReturnType<typeof parseCaptureEnd>>;
  /** The rows as [node, arrival] pairs. */
  rows: [string, number][];
}

/** The trace a finished stream holds; throws when the stream did not end as it should. */
export function capturedFile(stream: string): CapturedFile {
  const lines = stream.split("\n");
  if (lines.pop() !== "") throw new Error("the stream does not end with a newline");
  if (lines[0] !== TRACE_MAGIC) throw new Error(`the stream starts with ${lines[0]}`);
  const rowsFrom = lines.indexOf(TRACE_COLUMNS) + 1;
  const headerFrom = lines.indexOf(TRACE_MAGIC, 1);
  if (headerFrom < 0) throw new Error("no header at the end of the stream");
  const end = parseCaptureEnd(lines[lines.length - 1]!);
  if (end === null) throw new Error(`the stream ends with ${lines[lines.length - 1]}`);
  const header = lines.slice(headerFrom, lines.length - 1);
  const rows = lines.slice(rowsFrom, headerFrom);
  const file = [...header, ...rows].map((l) => `${l}\n`).join("");
  const trace = parseTrace(file);
  return {
    file,
    trace,
    notes: header
      .filter((l) => /^# [a-z_]+( |$)/.test(l))
      .map((l) => l.slice(2))
      .filter((l) => !/^(start_ms|end_ms|interval_ms|stall) /.test(l)),
    end,
    rows: Array.from(trace.node, (n, i) => [trace.nodes[n]!, trace.arrivalMs[i]!]),
  };
}

/** Starts the capture an accepted POST /capture returned, on a fresh CaptureOut. */
export function startOn(result: { ok: boolean; body?: unknown }): CaptureOut {
  if (!result.ok) throw new Error(`capture refused: ${JSON.stringify(result)}`);
  const out = new CaptureOut();
  (result.body as StreamedBody).start(out);
  return out;
}
