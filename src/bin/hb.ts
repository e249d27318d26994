#!/usr/bin/env node
// The executable and composition root: the only file that touches `process`. It builds the real
// clock, output streams and signal hooks, runs the CLI with them and sets the exit code. hb ships
// as one bundled file, so worker threads start on this file too: those serve a config job.
import { isMainThread } from "node:worker_threads";
import { run } from "../cli/main.js";
import { systemClock } from "../clock.js";
import { droppedLinesNote, stdoutIsJournal } from "../journal.js";
import { lineWriter } from "../line-writer.js";

if (isMainThread) {
  const journal = stdoutIsJournal();
  const stdout = lineWriter(1, { droppedNote: droppedLinesNote(journal) });
  const stderr = lineWriter(2);
  const io = {
    stdout,
    stderr,
    env: process.env,
    clock: systemClock,
    journal,
    onSignal: (signal: NodeJS.Signals, handler: () => void) => (
      process.on(signal, handler),
      () => void process.off(signal, handler)
    ),
    self: [process.execPath, ...process.execArgv, process.argv[1]!],
    entry: new URL(import.meta.url),
    pid: process.pid,
    kill: (pid: number, signal: NodeJS.Signals) => void process.kill(pid, signal),
  };
  const code = await run(process.argv.slice(2), io);
  await Promise.all([stdout.end(), stderr.end()]);
  // A write still blocked on a reader that never came back must not keep the process alive.
  process.exit(code);
} else {
  await (await import("../config/load-worker.js")).serveConfigJob();
}
