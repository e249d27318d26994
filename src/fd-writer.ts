// Lines to a file descriptor without stalling the event loop: written at once when the
// descriptor takes them (nothing lost if the process dies); when it would block (EAGAIN, or a
// partial write) the rest waits in order in memory, retried every millisecond. The queue is
// bounded; lines past it are counted and the count written once it drains, so a slow log reader
// costs memory, never liveness judgements.

import { writeSync } from "node:fs";

export const MAX_QUEUED_BYTES = 64 * 1024 * 1024;
const RETRY_MS = 1;

export interface FdWriter {
  write(line: string): void;
  /** Writes everything queued, waiting for the descriptor if it must (at exit). */
  flushSync(timeoutMs?: number): void;
  readonly queuedBytes: number;
  readonly droppedLines: number;
}

function wouldBlock(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return code === "EAGAIN" || code === "EWOULDBLOCK";
}

export interface FdWriterOptions {
  maxQueuedBytes?: number;
  /** The line that reports `lines` dropped lines, written once the queue drains. */
  droppedNote?: (lines: number) => string;
}

export function fdWriter(fd: number, options: FdWriterOptions = {}): FdWriter {
  const maxQueuedBytes = options.maxQueuedBytes ?? MAX_QUEUED_BYTES;
  const queue: Buffer[] = [];
  let queuedBytes = 0;
  let dropped = 0;
  let timer: NodeJS.Timeout | undefined;

  /** Writes from the head of the queue until it is empty or the descriptor would block. */
  const drain = (): boolean => {
    while (queue.length > 0) {
      const head = queue[0]!;
      let written: number;
      try {
        written = writeSync(fd, head);
      } catch (err) {
        if (wouldBlock(err)) return false;
        // The reader is gone (EPIPE) or the descriptor is broken: nothing more can be written.
        queue.length = 0;
        queuedBytes = 0;
        return true;
      }
      queuedBytes -= written;
      if (written < head.length) queue[0] = head.subarray(written);
      else queue.shift();
    }
    if (dropped > 0 && options.droppedNote !== undefined) {
      const note = options.droppedNote(dropped);
      dropped = 0;
      enqueue(Buffer.from(note));
      return drain();
    }
    return true;
  };

  const schedule = (): void => {
    if (timer !== undefined) return;
    timer = setTimeout(() => {
      timer = undefined;
      if (!drain()) schedule();
    }, RETRY_MS);
  };

  const enqueue = (chunk: Buffer): void => {
    queue.push(chunk);
    queuedBytes += chunk.length;
  };

  return {
    write(line: string): void {
      const chunk = Buffer.from(line);
      if (queue.length > 0) {
        if (queuedBytes + chunk.length > maxQueuedBytes) dropped++;
        else enqueue(chunk);
        return;
      }
      enqueue(chunk);
      if (!drain()) schedule();
    },
    flushSync(timeoutMs = 2000): void {
      const deadline = Date.now() + timeoutMs;
      while (!drain() && Date.now() < deadline) {
        // Busy-wait only at exit, and only for as long as the reader is behind.
      }
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
    },
    get queuedBytes() {
      return queuedBytes;
    },
    get droppedLines() {
      return dropped;
    },
  };
}
