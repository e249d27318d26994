// A FIFO standing in for a stdout whose reader has stopped (systemd's stream to a paused
// journald): read only when asked; its write end blocking, as systemd gives stdout, or
// non-blocking (EAGAIN when full), as a terminal or a pipe may be.
import { execFileSync } from "node:child_process";
import { closeSync, constants, mkdtempSync, openSync, readSync, rmSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface StalledFifo {
  writer: number;
  /** What the reader can read now, without waiting. */
  readAll: () => string;
  /** Writes `line` until the FIFO is full (shorter than PIPE_BUF, it goes in whole or not at all). */
  fill: (line: string) => void;
  closeReader: () => void;
  closeWriter: () => void;
  /** Closes what is still open, and removes the FIFO. */
  cleanup: () => void;
}

export function stalledFifo(nonBlocking = false): StalledFifo {
  const dir = mkdtempSync(join(tmpdir(), "hb-fifo-"));
  const path = join(dir, "fifo");
  execFileSync("mkfifo", [path]);
  // Only descriptors still ours are closed: a number closed twice may by then be someone else's.
  const open = new Set<number>();
  const openFd = (flags: number): number => {
    const fd = openSync(path, flags);
    open.add(fd);
    return fd;
  };
  const close = (fd: number): void => {
    if (open.delete(fd)) closeSync(fd);
  };
  const reader = openFd(constants.O_RDONLY | constants.O_NONBLOCK);
  const writer = openFd(constants.O_WRONLY | (nonBlocking ? constants.O_NONBLOCK : 0));
  const chunk = Buffer.alloc(65536);
  return {
    writer,
    readAll() {
      let out = "";
      for (;;) {
        try {
          const n = readSync(reader, chunk);
          if (n === 0) return out;
          out += chunk.toString("utf8", 0, n);
        } catch {
          return out; // EAGAIN: nothing more for now
        }
      }
    },
    fill(line) {
      const filler = openFd(constants.O_WRONLY | constants.O_NONBLOCK);
      try {
        for (;;) writeSync(filler, line);
      } catch {
        // EAGAIN: full
      } finally {
        close(filler);
      }
    },
    closeReader: () => close(reader),
    closeWriter: () => close(writer),
    cleanup() {
      open.forEach(close);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
