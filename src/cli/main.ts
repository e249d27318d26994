// argv -> command -> exit code. Each command's module is imported only when that command runs,
// so `hb send` on a fleet's nodes loads the sender, not the monitor, YAML or Prometheus.
// Commands return their exit code or throw HbError; nothing here calls process.exit. Errors are
// printed once, to stderr, with their stable code.

import { ExitCode, HbError, exitCodeOf } from "../errors.js";
import { VERSION } from "../version.js";
import type { Io } from "./io.js";

export interface CommandModule {
  readonly usage: string;
  /** The command's flags, as given to parseArgs (the man page and its test read them). */
  readonly flags: Readonly<
    Record<string, { readonly type: "string" | "boolean"; readonly multiple?: boolean }>
  >;
  run(args: readonly string[], io: Io): Promise<number>;
}

/** Every command, in the order `hb --help` lists them. */
export const COMMANDS: Record<string, { load: () => Promise<CommandModule>; summary: string }> = {
  monitor: { load: () => import("./monitor.js"), summary: "run the monitor in the foreground" },
  node: { load: () => import("./node.js"), summary: "run one node's heartbeat sender" },
  send: { load: () => import("./send.js"), summary: "send a single heartbeat and exit" },
  status: { load: () => import("./status.js"), summary: "show the monitor's current view" },
  reload: {
    load: () => import("./reload.js"),
    summary: "reload the monitor's config and wait for the result",
  },
  forget: { load: () => import("./forget.js"), summary: "clear one node's replay mark and history" },
  maint: {
    load: () => import("./maint.js"),
    summary: "maintenance windows: hold the notices of nodes being worked on",
  },
  tune: {
    load: () => import("./tune.js"),
    summary: "the late and timeout each node's observed gaps support, as YAML",
  },
  notify: {
    load: () => import("./notify.js"),
    summary: "send a test notice through one output (hb notify test NAME)",
  },
  capture: {
    load: () => import("./capture.js"),
    summary: "record the monitor's arrival times to a trace file",
  },
  "check-config": { load: () => import("./check-config.js"), summary: "validate a config file" },
  replay: {
    load: () => import("./replay.js"),
    summary: "score the detector over a trace of arrivals (detection time, mistakes)",
  },
  demo: { load: () => import("./demo.js"), summary: "watch a monitor and three nodes on loopback" },
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
  const entry = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (entry === undefined) {
    io.stderr.write(`hb: unknown command "${name}"\n\n${USAGE}\n`);
    return ExitCode.USAGE;
  }
  try {
    const command = await entry.load();
    if (args.includes("--help") || args.includes("-h")) {
      io.stdout.write(command.usage + "\n");
      return ExitCode.OK;
    }
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
