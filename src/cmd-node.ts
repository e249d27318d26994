// `hb node` (the long-running sender that hb-node@.service runs) and `hb send` (one datagram,
// for cron jobs and scripts). Every flag has an HB_* environment variable; flags win.

import { createSecretKey } from "node:crypto";
import { basename } from "node:path";
import { addressFlag, durationFlag, flagOrEnv, parseFlags, usageError, stateDirFlag } from "./args.js";
import { DEFAULT_INTERVAL_MS } from "./config.js";
import { ExitCode, HbError } from "./errors.js";
import type { Io } from "./io.js";
import { nextIncarnation } from "./incarnation.js";
import { readKeyFile } from "./load-config.js";
import { createEventLog } from "./log.js";
import { ID_PATTERN, Kind, MAX_ID_BYTES, MAX_KEY_ID_BYTES, type SigningKey } from "./protocol.js";
import { Sender, type SenderOptions } from "./sender.js";
import { udpSocket } from "./transport.js";

export const NODE_USAGE = `usage: hb node --id ID --monitor HOST:PORT [--monitor HOST:PORT ...] [--interval 1s]
               [--key-file F] [--key-id ID] [--state-dir DIR]

  --id ID          this node's id (env HB_NODE_ID)
  --monitor ADDR   a monitor to send to; repeat for several (env HB_MONITOR, comma-separated)
  --interval D     time between heartbeats (env HB_INTERVAL; default 1s)
  --key-file F     sign heartbeats with the key in F (env HB_KEY_FILE)
  --key-id ID      the key's id in the monitor's keyring (env HB_KEY_ID; default: F's file name)
  --state-dir DIR  where the incarnation counter is kept (env HB_STATE_DIR or STATE_DIRECTORY)`;

export const SEND_USAGE = `usage: hb send --id ID --monitor HOST:PORT [--monitor ...] [--leave] [--key-file F] [--key-id ID]

  Sends one heartbeat (or, with --leave, a planned-stop notice) and exits.`;

const COMMON_FLAGS = {
  id: { type: "string" },
  monitor: { type: "string", multiple: true },
  "key-file": { type: "string" },
  "key-id": { type: "string" },
} as const;

async function senderOptions(
  values: Record<string, string | boolean | string[] | undefined>,
  io: Io,
  usage: string,
): Promise<Omit<SenderOptions, "incarnation" | "intervalMs">> {
  const nodeId = flagOrEnv(values.id, io.env, "HB_NODE_ID");
  if (nodeId === undefined) throw usageError("--id (or HB_NODE_ID) is required", usage);
  if (nodeId.length > MAX_ID_BYTES || !ID_PATTERN.test(nodeId)) {
    throw usageError(
      `--id: "${nodeId}" must be 1-${MAX_ID_BYTES} of [A-Za-z0-9._-], starting alphanumeric`,
      usage,
    );
  }
  const monitorTexts = Array.isArray(values.monitor) ? values.monitor : (io.env.HB_MONITOR ?? "").split(",");
  const monitors = monitorTexts
    .filter((m) => m.trim() !== "")
    .map((m) => addressFlag(m, "--monitor", usage, true));
  if (monitors.length === 0) throw usageError("--monitor (or HB_MONITOR) is required", usage);

  let key: SigningKey | undefined;
  const keyFile = flagOrEnv(values["key-file"], io.env, "HB_KEY_FILE");
  if (keyFile !== undefined) {
    const id = flagOrEnv(values["key-id"], io.env, "HB_KEY_ID") ?? basename(keyFile).replace(/\.key$/, "");
    if (id.length > MAX_KEY_ID_BYTES || !ID_PATTERN.test(id)) {
      throw usageError(
        `key id "${id}" must be 1-${MAX_KEY_ID_BYTES} of [A-Za-z0-9._-] (set --key-id)`,
        usage,
      );
    }
    try {
      key = { id, secret: createSecretKey(await readKeyFile(keyFile)) };
    } catch (err) {
      throw new HbError("HB_ERR_KEY_FILE", `key file: ${(err as Error).message}`, { cause: err });
    }
  }
  return { nodeId, monitors, key };
}

export async function nodeCommand(args: readonly string[], io: Io): Promise<number> {
  const { values } = parseFlags(
    args,
    { ...COMMON_FLAGS, interval: { type: "string" }, "state-dir": { type: "string" } },
    NODE_USAGE,
  );
  const common = await senderOptions(values, io, NODE_USAGE);
  const intervalText = flagOrEnv(values.interval, io.env, "HB_INTERVAL");
  const intervalMs =
    intervalText === undefined ? DEFAULT_INTERVAL_MS : durationFlag(intervalText, "--interval", NODE_USAGE);
  const stateDir = stateDirFlag(values["state-dir"], io.env);
  const incarnation = await nextIncarnation(common.nodeId, stateDir, io.clock.wallMs());
  const emit = createEventLog({ out: io.stdout, journal: io.journal });
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

export async function sendCommand(args: readonly string[], io: Io): Promise<number> {
  const { values } = parseFlags(args, { ...COMMON_FLAGS, leave: { type: "boolean" } }, SEND_USAGE);
  const common = await senderOptions(values, io, SEND_USAGE);
  const failures: string[] = [];
  const sender = new Sender(
    // One-shot senders share incarnation 0 and use the wall clock as their sequence, so that
    // successive runs (each a new process) count as one incarnation moving forward.
    { ...common, intervalMs: DEFAULT_INTERVAL_MS, incarnation: 0 },
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
