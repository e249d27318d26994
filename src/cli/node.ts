// `hb node`: the long-running sender that hb-node@.service runs. One datagram per interval to
// every monitor, a persisted incarnation so that a restart is told from a replay, and a `leave`
// on SIGTERM so that a planned stop is never reported as a failure. Its few event lines are
// written without pino (journal.ts): this process runs on every host, and its memory counts.

import { ExitCode } from "../errors.js";
import { createLineLog } from "../journal.js";
import { nextIncarnation } from "../node/incarnation.js";
import { Sender } from "../node/sender.js";
import { DEFAULT_INTERVAL_MS } from "../wire/protocol.js";
import { udpSocket } from "../wire/udp.js";
import { durationFlag, flagOrEnv, parseFlags, stateDirFlag } from "./flags.js";
import type { Io } from "./io.js";
import { SENDER_FLAGS, senderOptions } from "./sender-flags.js";

export const usage = `usage: hb node --id ID --monitor HOST:PORT [--monitor HOST:PORT ...] [--interval 1s]
               [--key-file F] [--key-id ID] [--state-dir DIR]

  --id ID          this node's id (env HB_NODE_ID)
  --monitor ADDR   a monitor to send to; repeat for several (env HB_MONITOR, comma-separated)
  --interval D     time between heartbeats (env HB_INTERVAL; default 1s)
  --key-file F     sign heartbeats with the key in F (env HB_KEY_FILE)
  --key-id ID      the key's id in the monitor's keyring (env HB_KEY_ID; default: F's file name)
  --state-dir DIR  where the incarnation counter is kept (env HB_STATE_DIR or STATE_DIRECTORY)`;

export const flags = {
  ...SENDER_FLAGS,
  interval: { type: "string" },
  "state-dir": { type: "string" },
} as const;

export async function run(args: readonly string[], io: Io): Promise<number> {
  const { values } = parseFlags(args, flags, usage);
  const common = await senderOptions(values, io, usage);
  const intervalText = flagOrEnv(values.interval, io.env, "HB_INTERVAL");
  const intervalMs =
    intervalText === undefined ? DEFAULT_INTERVAL_MS : durationFlag(intervalText, "--interval", usage);
  const stateDir = stateDirFlag(values["state-dir"], io.env);
  const emit = createLineLog({ out: io.stdout, journal: io.journal });
  const { incarnation, repaired } = await nextIncarnation(common.nodeId, stateDir, io.clock.wallMs());
  if (repaired !== null) {
    emit("sender.warning", { node: common.nodeId, problem: "incarnation_file_repaired", detail: repaired });
  }
  const sender = new Sender(
    { ...common, intervalMs, incarnation },
    { clock: io.clock, emit, socket: udpSocket },
  );
  // Handlers first: a SIGTERM right after the first beat must still send `leave`.
  const stopped = new Promise<number>((resolve) => {
    const offs: (() => void)[] = [];
    const stop = (signal: string): void => {
      offs.forEach((off) => off());
      void sender.stop(signal, true).then(() => resolve(ExitCode.OK));
    };
    offs.push(
      io.onSignal("SIGTERM", () => stop("SIGTERM")),
      io.onSignal("SIGINT", () => stop("SIGINT")),
    );
  });
  sender.start();
  return stopped;
}
