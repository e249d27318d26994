// `hb check-config PATH`: validate a config (and its key files) without starting anything.
// Problems go to stderr as file:line:col: message, exit 78; a good config prints what each
// node will actually get, defaults resolved, and exits 0.

import { DEFAULT_CONFIG_PATH } from "../config/load.js";
import { loadConfigOnTwoThreads } from "../config/load-off-thread.js";
import { nextOccurrence, parseSchedule, type Schedule } from "../config/schedule.js";
import { formatDetector, formatStatusAddress } from "../config/types.js";
import { formatDuration } from "../duration.js";
import { ExitCode, HbError } from "../errors.js";
import { formatHostPort } from "../wire/address.js";
import { parseFlags, usageError } from "./flags.js";
import type { Io } from "./io.js";

export const usage = `usage: hb check-config [PATH]   (default ${DEFAULT_CONFIG_PATH})`;

export const flags = {} as const;

/** 2026-03-31 00:00 UTC */
function utc(ms: number): string {
  return `${new Date(ms).toISOString().slice(0, 16).replace("T", " ")} UTC`;
}

export async function run(args: readonly string[], io: Io): Promise<number> {
  const { positionals } = parseFlags(args, flags, usage, true);
  if (positionals.length > 1) throw usageError("one config file at a time", usage);
  const path = positionals[0] ?? DEFAULT_CONFIG_PATH;
  const { config, warnings, hookProblems = [] } = await loadConfigOnTwoThreads(io.entry, path);
  // The monitor would run without these hooks; a config check refuses them.
  if (hookProblems.length > 0)
    throw new HbError("HB_ERR_CONFIG", `${path}: ${hookProblems.length} problem(s)`, {
      details: hookProblems,
    });
  for (const warning of warnings ?? []) io.stderr.write(`warning: ${warning}\n`);
  const d = config.defaults;
  const lines = [
    `${path}: ok`,
    `  listen ${formatHostPort(config.listen)}, status ${formatStatusAddress(config.status)}`,
    `  auth ${config.auth} (${config.keys.length} key(s)), unknown nodes: ${config.unknownNodes}, startup grace ${formatDuration(config.startupGraceMs)}`,
    `  defaults: interval ${formatDuration(d.intervalMs)}, late ${formatDuration(d.lateMs)}, timeout ${formatDuration(d.timeoutMs)}, detector ${formatDetector(d.phi)}`,
  ];
  // Once a φ detector is in play, every node says which detector judges it.
  const anyPhi = d.phi !== null || [...config.nodes.values()].some((node) => node.phi !== null);
  for (const node of config.nodes.values()) {
    const detector = anyPhi ? `, detector ${formatDetector(node.phi)}` : "";
    lines.push(
      `  node ${node.id}: interval ${formatDuration(node.intervalMs)}, late ${formatDuration(node.lateMs)}, timeout ${formatDuration(node.timeoutMs)}${detector}${node.paused ? ", paused" : ""}${node.keys === null ? "" : `, keys ${[...node.keys].join(",")}`}${node.parents.length === 0 ? "" : `, parents ${node.parents.join(",")}`}`,
    );
  }
  const { maintenance } = config;
  lines.push(`  maintenance: hb maint windows at most ${formatDuration(maintenance.maxDurationMs)}`);
  for (const window of maintenance.windows) {
    // The next start, in UTC: what the schedule means in its time zone, seen from here.
    const next = nextOccurrence(parseSchedule(window.schedule) as Schedule, window.timezone, Date.now());
    lines.push(
      `  window ${window.name}: ${window.schedule} ${window.timezone} (next ${utc(next.startsAt)} to ${utc(next.endsAt)}), match ${window.match.join(",")}`,
    );
  }
  for (const output of config.notify) {
    const target =
      output.kind === "exec"
        ? `exec ${output.argv[0]!}`
        : output.kind === "webhook"
          ? `webhook ${new URL(output.url).origin}${output.signWith === null ? "" : `, signed with ${output.signWith}`}`
          : `alertmanager ${output.urls.map((url) => new URL(url).origin).join(",")}, resend ${formatDuration(output.resendMs)}`;
    const on = output.on === null ? "" : `, on ${[...output.on].join(",")}`;
    lines.push(`  notify ${output.name}: ${target}${on}, timeout ${formatDuration(output.timeoutMs)}`);
  }
  io.stdout.write(lines.join("\n") + "\n");
  return ExitCode.OK;
}
