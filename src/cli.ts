// argv -> command -> exit code. Commands return their exit code or throw HbError; nothing
// here calls process.exit. Errors are printed once, to stderr, with their stable code.

import { CHECK_CONFIG_USAGE, checkConfigCommand } from "./cmd-check-config.js";
import { MONITOR_USAGE, monitorCommand } from "./cmd-monitor.js";
import { NODE_USAGE, SEND_USAGE, nodeCommand, sendCommand } from "./cmd-node.js";
import { RELOAD_USAGE, reloadCommand } from "./cmd-reload.js";
import { STATUS_USAGE, statusCommand } from "./cmd-status.js";
import { DEMO_USAGE, demoCommand } from "./demo.js";
import { ExitCode, HbError, exitCodeOf } from "./errors.js";
import type { Io } from "./io.js";
import { VERSION } from "./version.js";

type Command = (args: readonly string[], io: Io) => Promise<number>;

const COMMANDS: Record<string, { run: Command; usage: string; summary: string }> = {
  monitor: { run: monitorCommand, usage: MONITOR_USAGE, summary: "run the monitor in the foreground" },
  node: { run: nodeCommand, usage: NODE_USAGE, summary: "run one node's heartbeat sender" },
  send: { run: sendCommand, usage: SEND_USAGE, summary: "send a single heartbeat and exit" },
  status: { run: statusCommand, usage: STATUS_USAGE, summary: "show the monitor's current view" },
  reload: {
    run: reloadCommand,
    usage: RELOAD_USAGE,
    summary: "reload the monitor's config and wait for the result",
  },
  "check-config": { run: checkConfigCommand, usage: CHECK_CONFIG_USAGE, summary: "validate a config file" },
  demo: { run: demoCommand, usage: DEMO_USAGE, summary: "watch a monitor and three nodes on loopback" },
};

export const USAGE = `hb ${VERSION}: UDP heartbeat monitor

usage: hb COMMAND [FLAGS]   (hb COMMAND --help for its flags)

${Object.entries(COMMANDS)
  .map(([name, c]) => `  ${name.padEnd(14)}${c.summary}`)
  .join("\n")}`;

export async function run(argv: readonly string[], io: Io): Promise<number> {
  const [name, ...args] = argv;
  if (name === undefined || name === "help" || name === "--help" || name === "-h") {
    (name === undefined ? io.stderr : io.stdout).write(USAGE + "\n");
    return name === undefined ? ExitCode.USAGE : ExitCode.OK;
  }
  if (name === "--version" || name === "version") {
    io.stdout.write(`${VERSION}\n`);
    return ExitCode.OK;
  }
  const command = COMMANDS[name];
  if (command === undefined) {
    io.stderr.write(`hb: unknown command "${name}"\n\n${USAGE}\n`);
    return ExitCode.USAGE;
  }
  if (args.includes("--help") || args.includes("-h")) {
    io.stdout.write(command.usage + "\n");
    return ExitCode.OK;
  }
  try {
    return await command.run(args, io);
  } catch (err) {
    if (err instanceof HbError) {
      io.stderr.write(`hb ${name}: ${err.message} [${err.code}]\n`);
      for (const line of err.details) io.stderr.write(`${line}\n`);
    } else {
      io.stderr.write(
        `hb ${name}: internal error [HB_ERR_INTERNAL]: ${(err as Error).stack ?? String(err)}\n`,
      );
    }
    return exitCodeOf(err);
  }
}
