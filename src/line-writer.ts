// Lines to stdout or stderr that never stall the event loop. Writes go through sonic-boom (the
// writer pino ships) in asynchronous mode: each write runs on libuv's thread pool, so a blocking
// descriptor whose reader stopped (systemd's stream to a paused journald) holds one pool thread,
// never the loop that reads heartbeats. Order is kept; the buffer is bounded, lines past it are
// counted and reported in one `log.dropped` line once the reader catches up.

import sonicBoom from "sonic-boom";
import type { Writer } from "./journal.js";

// sonic-boom is CommonJS: its module.exports is the class, which its types call a default export.
const SonicBoom = sonicBoom as unknown as typeof sonicBoom.default;

export const MAX_QUEUED_BYTES = 64 * 1024 * 1024;
/** At a clean stop, how long to wait for a slow reader before giving up on what is queued. */
export const END_TIMEOUT_MS = 5000;

export interface LineWriter extends Writer {
  /** Writes what is queued and resolves when it is written, or after `timeoutMs` at the latest. */
  end(timeoutMs?: number): Promise<void>;
  readonly queuedBytes: number;
  /** Lines dropped since the last `log.dropped` line. */
  readonly droppedLines: number;
}

export interface LineWriterOptions {
  maxQueuedBytes?: number;
  /** The line that reports `lines` dropped lines, written once the queue has drained. */
  droppedNote?: (lines: number) => string;
}

export function lineWriter(fd: number, options: LineWriterOptions = {}): LineWriter {
  const boom = new SonicBoom({ fd, sync: false, maxLength: options.maxQueuedBytes ?? MAX_QUEUED_BYTES });
  let dropped = 0;
  let queued = 0;
  let ended = false;
  boom.on("drop", () => void dropped++);
  boom.on("write", (bytes: number) => void (queued -= bytes));
  boom.on("drain", () => {
    if (dropped === 0 || options.droppedNote === undefined || ended) return;
    const note = options.droppedNote(dropped);
    dropped = 0;
    queued += Buffer.byteLength(note);
    boom.write(note);
  });
  // The reader is gone (EPIPE) or the descriptor is broken: there is no one left to tell.
  boom.on("error", () => {});
  return {
    write(line: string): void {
      if (ended) return;
      const before = dropped;
      boom.write(line);
      if (dropped === before) queued += Buffer.byteLength(line);
    },
    end(timeoutMs = END_TIMEOUT_MS): Promise<void> {
      if (ended) return Promise.resolve();
      ended = true;
      return new Promise((resolve) => {
        const timer = setTimeout(resolve, timeoutMs);
        boom.once("close", () => {
          clearTimeout(timer);
          resolve();
        });
        boom.end();
      });
    },
    get queuedBytes() {
      return queued;
    },
    get droppedLines() {
      return dropped;
    },
  };
}
