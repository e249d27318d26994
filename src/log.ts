// The only importer of pino. Events from the registry become one JSON line each, handed to the
// process's stdout writer (line-writer.ts: asynchronous, bounded, no worker threads). Under
// journald each line starts with its syslog priority (journal.ts).

import { pino, type DestinationStream } from "pino";
import { EVENT_LEVELS, type Emit } from "./events.js";
import { PRIORITY, type Writer } from "./journal.js";

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
