#!/usr/bin/env node
// The executable: builds the real clock, streams and signals, runs the CLI, sets the exit code.
import { systemClock } from "../clock.js";
import { run } from "../cli.js";
import { fdWriter, stdoutIsJournal } from "../log.js";

const io = {
  stdout: fdWriter(1),
  stderr: fdWriter(2),
  env: process.env,
  clock: systemClock,
  journal: stdoutIsJournal(),
  onSignal: (signal: NodeJS.Signals, handler: () => void) => (
    process.on(signal, handler),
    () => void process.off(signal, handler)
  ),
  self: [process.execPath, ...process.execArgv, process.argv[1]!],
  pid: process.pid,
  kill: (pid: number, signal: NodeJS.Signals) => void process.kill(pid, signal),
};
process.exitCode = await run(process.argv.slice(2), io);
