// Lines to stdout or stderr that never stall the event loop. Every write is an asynchronous
// fs.write, which runs on libuv's thread pool: a blocking descriptor whose reader stopped
// (systemd's stream to a paused journald) holds one pool thread, never the loop that reads or
// sends heartbeats. One write at a time keeps the order; lines wait in memory up to a bound, lines
// past it are counted and reported in one `log.dropped` line once the reader catches up. Built on
// node:fs alone (as sonic-boom is), so that `hb node` loads no library to write its lines.

import { write } from "node:fs";
import type { Writer } from "./journal.js";

export const MAX_QUEUED_BYTES = 64 * 1024 * 1024;
/** At a clean stop, how long to wait for a slow reader before giving up on what is queued. */
export const END_TIMEOUT_MS = 5000;
/** Waiting lines are joined into writes of up to this size: fewer trips to the thread pool. */
const MAX_WRITE_BYTES = 16 * 1024;
/** A non-blocking descriptor that is full (EAGAIN) is tried again after this long. */
const RETRY_FULL_MS = 100;

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
  const maxQueuedBytes = options.maxQueuedBytes ?? MAX_QUEUED_BYTES;
  const chunks: string[] = []; // waiting lines, oldest first, joined up to MAX_WRITE_BYTES
  let lastChunkBytes = 0;
  let queued = 0; // bytes waiting or being written
  let dropped = 0;
  let writing = false;
  let ended = false;
  let abandoned = false; // end() gave up: nothing more is written, even if the reader comes back
  let onDrained: (() => void) | undefined;

  function enqueue(line: string): boolean {
    const bytes = Buffer.byteLength(line);
    if (queued + bytes > maxQueuedBytes) return false;
    queued += bytes;
    if (chunks.length > 0 && lastChunkBytes + bytes <= MAX_WRITE_BYTES) {
      chunks[chunks.length - 1] += line;
      lastChunkBytes += bytes;
    } else {
      chunks.push(line);
      lastChunkBytes = bytes;
    }
    if (!writing) writeNext();
    return true;
  }

  function writeNext(): void {
    const chunk = chunks.shift();
    writing = chunk !== undefined;
    if (chunk !== undefined) return send(Buffer.from(chunk));
    if (dropped > 0 && options.droppedNote !== undefined && !ended) {
      const note = options.droppedNote(dropped);
      dropped = 0;
      enqueue(note); // the reader has caught up: say what it missed
    } else onDrained?.();
  }

  function send(bytes: Buffer): void {
    write(fd, bytes, 0, bytes.length, null, (err, n) => {
      if (abandoned) return;
      if (err?.code === "EAGAIN" || err?.code === "EBUSY") {
        setTimeout(() => send(bytes), RETRY_FULL_MS);
        return;
      }
      // Any other error: the reader is gone (EPIPE) or the descriptor is broken, and there is no
      // one left to tell; the chunk is let go.
      const written = err === null ? n : bytes.length;
      queued -= written;
      if (written < bytes.length) send(bytes.subarray(written));
      else writeNext();
    });
  }

  return {
    write(line: string): void {
      if (!ended && !enqueue(line)) dropped++;
    },
    end(timeoutMs = END_TIMEOUT_MS): Promise<void> {
      if (ended) return Promise.resolve();
      ended = true;
      if (!writing) return Promise.resolve();
      return new Promise((resolve) => {
        const timer = setTimeout(() => {
          abandoned = true;
          chunks.length = 0;
          queued = 0;
          resolve();
        }, timeoutMs);
        onDrained = () => {
          clearTimeout(timer);
          resolve();
        };
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
