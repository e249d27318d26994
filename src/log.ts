// The only importer of pino. Events from the registry become one JSON line each on stdout,
// written synchronously (systemd collects stdout; no worker threads). When stdout is the journal
// (JOURNAL_STREAM names stdout's device and inode), each line starts with its syslog priority,
// `<3>` error, `<4>` warning, `<6>` info, so `journalctl -p warning` selects what needs attention.

import { fstatSync } from "node:fs";
import { pino, type DestinationStream } from "pino";
import { EVENT_LEVELS, type Emit, type Level } from "./events.js";

const PRIORITY: Record<Level, string> = { error: "<3>", warn: "<4>", info: "<6>" };

export interface Writer {
  write(line: string): void;
}

/** True when fd 1 is the stream that systemd connected to the journal. */
export function stdoutIsJournal(env: NodeJS.ProcessEnv = process.env): boolean {
  const match = /^(\d+):(\d+)$/.exec(env.JOURNAL_STREAM ?? "");
  if (match === null) return false;
  try {
    const stat = fstatSync(1, { bigint: true });
    return stat.dev === BigInt(match[1]!) && stat.ino === BigInt(match[2]!);
  } catch {
    return false;
  }
}

function prefixed(out: Writer): DestinationStream {
  return {
    write(line: string): void {
      // Lines start with {"level":"<label>" (see formatters below).
      const level = line.startsWith('{"level":"error"')
        ? "error"
        : line.startsWith('{"level":"warn"')
          ? "warn"
          : "info";
      out.write(PRIORITY[level] + line);
    },
  };
}

export interface LoggerOptions {
  out: Writer;
  journal: boolean;
}

/** An Emit that writes registry events as JSON lines. */
export function createEventLog(options: LoggerOptions): Emit {
  const logger = pino(
    {
      base: null,
      messageKey: "msg",
      formatters: { level: (label) => ({ level: label }) },
    },
    options.journal ? prefixed(options.out) : options.out,
  );
  return (event, fields) => {
    logger[EVENT_LEVELS[event]]({ event, ...fields });
  };
}

/** The `log.dropped` line, for a writer that had to drop lines its reader could not take. */
export function droppedLinesNote(journal: boolean): (lines: number) => string {
  return (lines) =>
    `${journal ? PRIORITY[EVENT_LEVELS["log.dropped"]] : ""}${JSON.stringify({ level: EVENT_LEVELS["log.dropped"], time: Date.now(), event: "log.dropped", lines })}\n`;
}
