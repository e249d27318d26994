#!/usr/bin/env node
// The executable: builds the real clock, streams and signals, runs the CLI, sets the exit code.
import { systemClock } from "../clock.js";
import { run } from "../cli.js";
import { fdWriter } from "../fd-writer.js";
import { droppedLinesNote, stdoutIsJournal } from "../log.js";

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
