// What a command may touch of the outside world, injected by bin/hb.ts (the only file that
// touches `process`), so that commands can be run and tested in-process.

import type { Clock } from "../clock.js";
import type { Writer } from "../journal.js";

export interface Io {
  /** `queuedBytes`: what is written and not yet taken by the reader (a command writing much waits on it). */
  stdout: Writer & { readonly queuedBytes?: number };
  stderr: Writer;
  env: Readonly<Record<string, string | undefined>>;
  clock: Clock;
  /** stdout is connected to the journal: prefix lines with syslog priorities. */
  journal: boolean;
  onSignal(signal: NodeJS.Signals, handler: () => void): () => void;
  /** The command line that runs this same hb (for commands that start other hb processes). */
  self: readonly string[];
  /** hb's own entry file, on which worker threads start (config/load-off-thread.ts). */
  entry: URL;
  pid: number;
  kill(pid: number, signal: NodeJS.Signals): void;
}
