// The log writer on a blocking descriptor whose reader has stopped, as systemd's stream to a
// paused journald is: the event loop keeps running, memory stays bounded, nothing is reordered,
// what did not fit is counted in one `log.dropped` line, and a clean end writes what is queued.
// A non-blocking descriptor that is full is written again later; a reader that is gone ends it.
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { lineWriter, type LineWriter } from "../../src/line-writer.js";
import { stalledFifo as openStalledFifo, type StalledFifo } from "../support/fifo.js";

// After each test its FIFOs' readers are closed, so that a write still blocked in the thread pool
// ends (EPIPE); their write ends are closed only once every test has run, so that a writer a test
// left with a write in flight cannot find its descriptor's number reused by the next test's FIFO
// and write the rest of its line there.
const cleanups: (() => void)[] = [];
const fifos: StalledFifo[] = [];
afterEach(() => fifos.forEach((fifo) => fifo.closeReader()));
afterAll(() => cleanups.splice(0).forEach((f) => f()));
function stalledFifo(nonBlocking = false): StalledFifo {
  const fifo = openStalledFifo(nonBlocking);
  fifos.push(fifo);
  return fifo;
}
const tick = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 5));
const line = (i: number): string => `{"n":${i},"pad":"${"x".repeat(90)}"}\n`;

/** Reads until `count` lines have come, and gives their numbers in the order they came. */
async function readNumbers(fifo: StalledFifo, count: number): Promise<number[]> {
  let text = "";
  while (text.split("\n").length - 1 < count) {
    text += fifo.readAll();
    await tick();
  }
  return text
    .trim()
    .split("\n")
    .map((l) => (JSON.parse(l) as { n: number }).n);
}

/** Whether `out.end(timeoutMs)` has resolved within about two seconds. */
async function endsSoon(out: LineWriter, timeoutMs: number): Promise<boolean> {
  let done = false;
  void out.end(timeoutMs).then(() => (done = true));
  for (let i = 0; i < 400 && !done; i++) await tick();
  return done;
}

describe("the line writer", () => {
  it("keeps the event loop running while the reader of a blocking descriptor is stopped", async () => {
    const fifo = stalledFifo();
    cleanups.push(fifo.cleanup);
    const out = lineWriter(fifo.writer);
    // Far more than the pipe holds (64 KiB): a writer that wrote synchronously would block here.
    for (let i = 0; i < 20_000; i++) out.write(line(i));
    let timerFired = false;
    setTimeout(() => (timerFired = true), 1);
    for (let i = 0; i < 100 && !timerFired; i++) await tick();
    expect(timerFired).toBe(true);
    expect(out.queuedBytes).toBeGreaterThan(1_000_000); // waiting in memory, in order
    expect(await readNumbers(fifo, 20_000)).toEqual(Array.from({ length: 20_000 }, (_, i) => i));
  });

  it("bounds its memory, drops what does not fit, and reports the count once the reader is back", async () => {
    const fifo = stalledFifo();
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
    const fifo = stalledFifo();
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
    const fifo = stalledFifo();
    cleanups.push(() => {
      fifo.readAll(); // unblock the pool thread still writing, then close
      fifo.cleanup();
    });
    const out = lineWriter(fifo.writer);
    for (let i = 0; i < 5000; i++) out.write(line(i));
    expect(await endsSoon(out, 200)).toBe(true);
  });

  it("keeps writing, in order, to a non-blocking descriptor that refuses writes while full", async () => {
    const fifo = stalledFifo(true);
    cleanups.push(fifo.cleanup);
    const out = lineWriter(fifo.writer);
    for (let i = 0; i < 5000; i++) out.write(line(i)); // ~500 KiB: the pipe says EAGAIN at 64
    expect(await readNumbers(fifo, 5000)).toEqual(Array.from({ length: 5000 }, (_, i) => i));
    await out.end(1000);
    expect(out.queuedBytes).toBe(0);
  });

  it("lets lines go and ends at once when the reader is gone (EPIPE)", async () => {
    const fifo = stalledFifo();
    cleanups.push(fifo.cleanup);
    fifo.closeReader();
    const out = lineWriter(fifo.writer);
    for (let i = 0; i < 5000; i++) out.write(line(i));
    expect(await endsSoon(out, 60_000)).toBe(true); // long before its timeout
    expect(out.queuedBytes).toBe(0);
  });
});
