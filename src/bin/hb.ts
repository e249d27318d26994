#!/usr/bin/env node
// The executable and composition root: the only file that touches `process`. It builds the real
// clock, output streams and signal hooks, runs the CLI with them and sets the exit code.
import { run } from "../cli/main.js";
import { systemClock } from "../clock.js";
import { fdWriter } from "../fd-writer.js";
import { droppedLinesNote, stdoutIsJournal } from "../journal.js";

const journal = stdoutIsJournal();
const stdout = fdWriter(1, { droppedNote: droppedLinesNote(journal) });
const stderr = fdWriter(2);
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
  pid: process.pid,
  kill: (pid: number, signal: NodeJS.Signals) => void process.kill(pid, signal),
};
process.exitCode = await run(process.argv.slice(2), io);
stdout.flushSync();
stderr.flushSync();
