// The monitor's event log, and the only importer of pino. Events from the registry become one
// JSON line each, handed to the process's stdout writer (line-writer.ts: asynchronous, bounded,
// no worker threads). `hb node` writes the same lines without pino (journal.ts's createLineLog,
// which test/unit/log.test.ts holds to these byte for byte).

import { pino } from "pino";
import { EVENT_LEVELS, type Emit } from "./events.js";
import { linePrefix, type EventLogOptions } from "./journal.js";

/** An Emit that writes registry events as JSON lines through pino. */
export function createEventLog(options: EventLogOptions): Emit {
  // pino hands its destination the finished line synchronously, inside the logging call, so the
  // prefix for that call's level is set just before it.
  let prefix = "";
  const logger = pino(
    {
      base: null,
      messageKey: "msg",
      formatters: { level: (label) => ({ level: label }) },
    },
    { write: (line: string) => options.out.write(prefix + line) },
  );
  return (event, fields) => {
    const level = EVENT_LEVELS[event];
    prefix = linePrefix(level, options.journal);
    logger[level]({ event, ...fields });
  };
}
