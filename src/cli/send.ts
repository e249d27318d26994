// `hb send`: one heartbeat (or, with --leave, a planned-stop notice) to every monitor, then
// exit; for cron jobs and scripts. It loads the encoder and a socket, nothing else.

import { ExitCode } from "../errors.js";
import { Sender } from "../node/sender.js";
import { DEFAULT_INTERVAL_MS, Kind } from "../wire/protocol.js";
import { udpSocket } from "../wire/udp.js";
import { parseFlags } from "./flags.js";
import type { Io } from "./io.js";
import { SENDER_FLAGS, senderOptions } from "./sender-flags.js";

export const usage = `usage: hb send --id ID --monitor HOST:PORT [--monitor ...] [--leave] [--key-file F] [--key-id ID]

  Sends one heartbeat (or, with --leave, a planned-stop notice) and exits.`;

export const flags = { ...SENDER_FLAGS, leave: { type: "boolean" } } as const;

export async function run(args: readonly string[], io: Io): Promise<number> {
  const { values } = parseFlags(args, flags, usage);
  const common = await senderOptions(values, io, usage);
  const failures: string[] = [];
  const sender = new Sender(
    // One-shot senders share incarnation 0 and use the wall clock as their sequence, so that
    // successive runs (each a new process) count as one incarnation moving forward; flagged
    // unnumbered, because the milliseconds between two runs are not lost datagrams.
    { ...common, intervalMs: DEFAULT_INTERVAL_MS, incarnation: 0, unnumbered: true },
    {
      clock: io.clock,
      emit: (event, fields) => {
        if (event === "sender.failed")
          failures.push(`${(fields as { monitor: string }).monitor}: ${(fields as { error: string }).error}`);
      },
      socket: udpSocket,
    },
  );
  sender.startSequenceAt(io.clock.wallMs());
  await sender.sendAll(values.leave === true ? Kind.LEAVE : Kind.BEAT);
  await sender.stop("exit", false);
  for (const failure of failures) io.stderr.write(`hb send: ${failure}\n`);
  return failures.length === common.monitors.length ? ExitCode.UNAVAILABLE : ExitCode.OK;
}
