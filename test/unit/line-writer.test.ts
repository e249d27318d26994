// The log writer on a blocking descriptor whose reader has stopped, as systemd's stream to a
// paused journald is: the event loop keeps running, memory stays bounded, nothing is reordered,
// what did not fit is counted in one `log.dropped` line, and a clean end writes what is queued.
import { execFileSync } from "node:child_process";
import { closeSync, constants, mkdtempSync, openSync, readSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { lineWriter } from "../../src/line-writer.js";

/** A FIFO whose write end is blocking (like a stream socket to journald), read only when asked. */
function stalledReader(): { writer: number; readAll: () => string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), "hb-fifo-"));
  const path = join(dir, "fifo");
  execFileSync("mkfifo", [path]);
  const reader = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  const writer = openSync(path, constants.O_WRONLY); // blocking, as systemd gives stdout
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
    cleanup() {
      closeSync(reader);
      try {
        closeSync(writer);
      } catch {
        // end() closed it already (a descriptor other than 1 and 2 belongs to the writer)
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const cleanups: (() => void)[] = [];
afterEach(() => cleanups.splice(0).forEach((f) => f()));
const tick = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 5));
const line = (i: number): string => `{"n":${i},"pad":"${"x".repeat(90)}"}\n`;

describe("the line writer", () => {
  it("keeps the event loop running while the reader of a blocking descriptor is stopped", async () => {
    const fifo = stalledReader();
    cleanups.push(fifo.cleanup);
    const out = lineWriter(fifo.writer);
    // Far more than the pipe holds (64 KiB): a writer that wrote synchronously would block here.
    for (let i = 0; i < 20_000; i++) out.write(line(i));
    let timerFired = false;
    setTimeout(() => (timerFired = true), 1);
    for (let i = 0; i < 100 && !timerFired; i++) await tick();
    expect(timerFired).toBe(true);
    expect(out.queuedBytes).toBeGreaterThan(1_000_000); // waiting in memory, in order
    let text = "";
    while (text.split("\n").length - 1 < 20_000) {
      text += fifo.readAll();
      await tick();
    }
    const numbers = text
      .trim()
      .split("\n")
      .map((l) => (JSON.parse(l) as { n: number }).n);
    expect(numbers).toEqual(Array.from({ length: 20_000 }, (_, i) => i));
  });

  it("bounds its memory, drops what does not fit, and reports the count once the reader is back", async () => {
    const fifo = stalledReader();
    cleanups.push(fifo.cleanup);
    const out = lineWriter(fifo.writer, {
      maxQueuedBytes: 256 * 1024,
      droppedNote: (lines) => `{"event":"log.dropped","lines":${lines}}\n`,
    });
    for (let i = 0; i < 10_000; i++) out.write(line(i));
    await tick();
    expect(out.queuedBytes).toBeLessThanOrEqual(256 * 1024);
    expect(out.droppedLines).toBeGreaterThan(5000);
    let text = "";
    while (!text.includes("log.dropped")) {
      text += fifo.readAll();
      await tick();
    }
    const lines = text
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { n?: number; lines?: number });
    const kept = lines.filter((l) => l.n !== undefined).map((l) => l.n!);
    const note = lines.at(-1)!;
    // What was kept is a prefix, in order, and the note counts exactly what was not.
    expect(kept).toEqual(Array.from({ length: kept.length }, (_, i) => i));
    expect(note.lines).toBe(10_000 - kept.length);
  });

  it("writes everything queued at a clean end, once the reader reads", async () => {
    const fifo = stalledReader();
    cleanups.push(fifo.cleanup);
    const out = lineWriter(fifo.writer);
    for (let i = 0; i < 5000; i++) out.write(line(i));
    const ended = out.end(10_000);
    let text = "";
    let done = false;
    void ended.then(() => (done = true));
    while (!done) {
      text += fifo.readAll();
      await tick();
    }
    text += fifo.readAll();
    expect(text.trim().split("\n")).toHaveLength(5000);
  });

  it("gives up at the end's timeout when the reader never comes back", async () => {
    const fifo = stalledReader();
    cleanups.push(() => {
      fifo.readAll(); // unblock the pool thread still writing, then close
      fifo.cleanup();
    });
    const out = lineWriter(fifo.writer);
    for (let i = 0; i < 5000; i++) out.write(line(i));
    let done = false;
    void out.end(200).then(() => (done = true));
    for (let i = 0; i < 400 && !done; i++) await tick();
    expect(done).toBe(true);
  });
});
