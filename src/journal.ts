// Event lines without a logger library. The line is the one the monitor's pino writes (log.ts):
// {"level":"warn","time":<epoch ms>,"event":"...",<the event's fields, in order>}; `hb node`, on
// every host of a fleet, writes it with JSON.stringify instead of paying pino's memory. Under
// journald (JOURNAL_STREAM names stdout's device and inode) each line starts with its syslog
// priority, which makes `journalctl -p warning` select what needs attention: `<3>` error, `<4>`
// warning, `<6>` info.

import { fstatSync } from "node:fs";
import { EVENT_LEVELS, type Emit, type EventFields, type EventName, type Level } from "./events.js";

const PRIORITY: Readonly<Record<Level, string>> = { error: "<3>", warn: "<4>", info: "<6>" };

export interface Writer {
  write(line: string): void;
}

export interface EventLogOptions {
  out: Writer;
  /** stdout is the journal's stream: start each line with its syslog priority. */
  journal: boolean;
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

/** What a line of `level` starts with: its syslog priority under journald, nothing elsewhere. */
export function linePrefix(level: Level, journal: boolean): string {
  return journal ? PRIORITY[level] : "";
}

/** One event as a line, byte for byte as the monitor's pino writes it. */
export function eventLine<E extends EventName>(event: E, fields: EventFields[E], journal: boolean): string {
  const level = EVENT_LEVELS[event];
  return `${linePrefix(level, journal)}${JSON.stringify({ level, time: Date.now(), event, ...fields })}\n`;
}

/** An Emit that writes event lines without loading a logger (the node's; the monitor's is log.ts). */
export function createLineLog(options: EventLogOptions): Emit {
  return (event, fields) => options.out.write(eventLine(event, fields, options.journal));
}

/** The `log.dropped` line, for a writer that had to drop lines its reader could not take. */
export function droppedLinesNote(journal: boolean): (lines: number) => string {
  return (lines) => eventLine("log.dropped", { lines }, journal);
}
