// What hb knows about journald without loading a logger: whether stdout is the stream systemd
// connected to the journal (JOURNAL_STREAM names stdout's device and inode), and the syslog
// priority prefix that makes `journalctl -p warning` select what needs attention: `<3>` error,
// `<4>` warning, `<6>` info. Every command's start-up reads this; only some load pino.

import { fstatSync } from "node:fs";
import { EVENT_LEVELS, type Level } from "./events.js";

export const PRIORITY: Readonly<Record<Level, string>> = { error: "<3>", warn: "<4>", info: "<6>" };

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

/** The `log.dropped` line, for a writer that had to drop lines its reader could not take. */
export function droppedLinesNote(journal: boolean): (lines: number) => string {
  return (lines) =>
    `${journal ? PRIORITY[EVENT_LEVELS["log.dropped"]] : ""}${JSON.stringify({ level: EVENT_LEVELS["log.dropped"], time: Date.now(), event: "log.dropped", lines })}\n`;
}
