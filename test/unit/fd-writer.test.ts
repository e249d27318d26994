import { execFileSync, spawn } from "node:child_process";
import { closeSync, constants, mkdtempSync, openSync, readFileSync, readSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { fdWriter } from "../../src/fd-writer.js";

// A FIFO opened non-blocking at both ends: a log reader that can fall behind.
function pipe(): { reader: number; writer: number; drainAll: () => string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), "hb-fifo-"));
  const path = join(dir, "fifo");
  execFileSync("mkfifo", [path]);
  const reader = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  const writer = openSync(path, constants.O_WRONLY | constants.O_NONBLOCK);
  const chunk = Buffer.alloc(65536);
  return {
    reader,
    writer,
    drainAll() {
      let out = "";
      for (;;) {
        try {
          const n = readSync(reader, chunk);
          if (n === 0) return out;
          out += chunk.toString("utf8", 0, n);
        } catch {
          return out;
        }
      }
    },
    cleanup() {
      closeSync(reader);
      closeSync(writer);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const until = async (check: () => boolean): Promise<void> => {
  while (!check()) await new Promise((r) => setTimeout(r, 2));
};

let cleanups: (() => void)[] = [];
afterEach(() => {
  cleanups.forEach((c) => c());
  cleanups = [];
});

describe("the log writer", () => {
  it("never blocks on a full pipe, and delivers every line in order once the reader catches up", async () => {
    const p = pipe();
    cleanups.push(p.cleanup);
    const w = fdWriter(p.writer);
    const lines = Array.from({ length: 5000 }, (_, i) => `{"n":${i},"pad":"${"x".repeat(100)}"}\n`);
    for (const line of lines) w.write(line); // ~560 KB into a 64 KB pipe: returns at once
    expect(w.queuedBytes).toBeGreaterThan(0);
    let received = "";
    await until(() => {
      received += p.drainAll();
      return w.queuedBytes === 0 && received.length === lines.join("").length;
    });
    expect(received).toBe(lines.join(""));
  });

  it("bounds its queue: lines past the bound are counted and reported once the reader catches up", async () => {
    const p = pipe();
    cleanups.push(p.cleanup);
    const w = fdWriter(p.writer, { maxQueuedBytes: 10_000, droppedNote: (n) => `dropped ${n}\n` });
    for (let i = 0; i < 2000; i++) w.write(`${String(i).padStart(99, "0")}\n`);
    expect(w.queuedBytes).toBeLessThanOrEqual(10_000);
    expect(w.droppedLines).toBeGreaterThan(0);
    const dropped = w.droppedLines;
    let received = "";
    await until(() => {
      received += p.drainAll();
      return received.endsWith(`dropped ${dropped}\n`);
    });
    const numbers = received.trim().split("\n").slice(0, -1).map(Number);
    expect(numbers).toEqual([...numbers].sort((a, b) => a - b)); // in order, none duplicated
    expect(numbers.length + dropped).toBe(2000);
  });

  it("flushes everything queued before exit, waiting for a reader in another process", async () => {
    const dir = mkdtempSync(join(tmpdir(), "hb-fifo-"));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const fifo = join(dir, "fifo");
    const out = join(dir, "out");
    execFileSync("mkfifo", [fifo]);
    const cat = spawn("sh", ["-c", `sleep 0.2; cat '${fifo}' > '${out}'`]);
    const exited = new Promise((resolve) => cat.once("exit", resolve));
    let fd = -1;
    while (fd < 0) {
      try {
        fd = openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK); // ENXIO until cat opens it
      } catch {
        await new Promise((r) => setTimeout(r, 5));
      }
    }
    const w = fdWriter(fd);
    const lines = Array.from({ length: 3000 }, (_, i) => `${String(i).padStart(199, "0")}\n`);
    for (const line of lines) w.write(line); // 600 KB: most of it queues
    expect(w.queuedBytes).toBeGreaterThan(0);
    w.flushSync(10_000);
    expect(w.queuedBytes).toBe(0);
    closeSync(fd);
    await exited;
    expect(readFileSync(out, "utf8")).toBe(lines.join(""));
  });
});
