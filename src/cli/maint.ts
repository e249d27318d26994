// `hb maint add|list|extend|end`: maintenance windows on the running monitor, which shares them
// with its peers. While a window covers a node it is judged as ever (journal, status, metrics);
// only its notices are held. Times are wall-clock instants: `--until 2026-12-08T14:00` (the local
// time of this machine unless an offset or Z is given), `--until 14:00` (the next 14:00 here).
// Exit 0 done, 1 no such window (or it has ended), 64 refused, 69 the monitor is unreachable,
// 71 the change is in effect but the monitor could not keep it in its state directory.

import type { MaintAnswer, MaintListAnswer, MaintWindowView } from "../actions.js";
import { formatAgo } from "../duration.js";
import { ExitCode } from "../errors.js";
import { durationFlag, parseFlags, usageError } from "./flags.js";
import type { Io } from "./io.js";
import { ask, DEFAULT_STATUS_URL, ENDPOINT_FLAGS, endpointFromFlags } from "./status-client.js";
import { escapeControls, terminalJson } from "./status-table.js";

export const usage = `usage: hb maint add SELECTOR... (--for DURATION | --until TIME) --comment TEXT
                    [--author NAME] [--from TIME] [--all]
       hb maint list [--json] [--expired]
       hb maint extend ID (--for DURATION | --until TIME)
       hb maint end ID
       (each also takes --url URL | --socket PATH | --config PATH)

  A maintenance window holds the notices of the nodes it covers; they are judged as ever.
  SELECTOR       a node id, a glob over ids (web-*), or label:KEY=VALUE
  --for D        the window ends D from now (add, extend)
  --until TIME   it ends at TIME: 2026-12-08T14:00[:SS][Z|+01:00], or HH:MM (the next one here)
  --from TIME    it starts at TIME (add; default now)
  --comment TEXT why (required; it goes to the journal and to hb maint list)
  --author NAME  who (default $SUDO_USER, else $USER)
  --all          the selectors may match every node
  --json         the list as JSON
  --expired      list ended and expired windows too (kept 5 days)
  --url URL      the monitor's status endpoint (env HB_STATUS_URL; default ${DEFAULT_STATUS_URL})
  --socket PATH  the monitor's status endpoint is this Unix socket (env HB_STATUS_SOCKET)
  --config PATH  use the status address this monitor config names`;

export const flags = {
  for: { type: "string" },
  until: { type: "string" },
  from: { type: "string" },
  comment: { type: "string" },
  author: { type: "string" },
  all: { type: "boolean" },
  json: { type: "boolean" },
  expired: { type: "boolean" },
  ...ENDPOINT_FLAGS,
} as const;

const ISO = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2}))?(Z|[+-]\d{2}:?\d{2})?$/;
const CLOCK = /^(\d{1,2}):(\d{2})$/;

/**
 * A wall-clock instant from TIME (see usage), as epoch ms; undefined when it is not one. HH:MM is
 * the first such time after `afterMs` (now, or the window's start for --until).
 */
export function parseTime(text: string, afterMs: number): number | undefined {
  const clock = CLOCK.exec(text);
  if (clock !== null) {
    const [h, m] = [Number(clock[1]), Number(clock[2])];
    if (h > 23 || m > 59) return undefined;
    const at = new Date(afterMs);
    at.setHours(h, m, 0, 0);
    if (at.getTime() <= afterMs) at.setDate(at.getDate() + 1);
    return at.getTime();
  }
  const iso = ISO.exec(text);
  if (iso === null) return undefined;
  const [, y, mo, d, h, mi, s = "00", zone] = iso;
  // A date that does not exist (Feb 30) would roll over in Date: refuse it instead.
  const daysIn = new Date(Date.UTC(Number(y), Number(mo), 0)).getUTCDate();
  if (Number(mo) < 1 || Number(mo) > 12 || Number(d) < 1 || Number(d) > daysIn) return undefined;
  if (Number(h) > 23 || Number(mi) > 59 || Number(s) > 59) return undefined;
  const ms =
    zone === undefined
      ? new Date(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s)).getTime()
      : Date.parse(
          `${y}-${mo}-${d}T${h}:${mi}:${s}${zone === "Z" ? "Z" : zone.replace(/^([+-]\d{2})(\d{2})$/, "$1:$2")}`,
        );
  return Number.isFinite(ms) ? ms : undefined;
}

function endOf(values: Record<string, unknown>, nowMs: number, from: number): number {
  const { for: span, until } = values as { for?: string; until?: string };
  if ((span === undefined) === (until === undefined))
    throw usageError("give one of --for and --until", usage);
  if (span !== undefined) return from + durationFlag(span, "--for", usage);
  const at = parseTime(until!, Math.max(nowMs, from));
  if (at === undefined)
    throw usageError(`--until: "${until}" is not a time (2026-12-08T14:00, or 14:00)`, usage);
  return at;
}

function when(ms: number, nowMs: number): string {
  const iso = new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");
  const delta = ms - nowMs;
  return `${iso} (${delta >= 0 ? `in ${formatAgo(delta)}` : `${formatAgo(-delta)} ago`})`;
}

export function renderWindows(list: MaintListAnswer, expired: boolean): string {
  const rows: string[][] = [];
  for (const w of list.windows) {
    if (!expired && (w.state === "ended" || w.state === "expired")) continue;
    rows.push([
      w.id,
      w.state,
      w.match.join(" "),
      when(w.startsAt, list.now),
      when(w.endedAt ?? w.endsAt, list.now),
      w.author,
      w.comment,
    ]);
  }
  for (const r of list.recurring)
    rows.push([
      r.name,
      `${r.state} (${r.schedule} ${r.timezone})`,
      r.match.join(" "),
      when(r.startsAt, list.now),
      when(r.endsAt, list.now),
      "config",
      "",
    ]);
  if (rows.length === 0) return "no maintenance windows\n";
  const header = ["ID", "STATE", "MATCH", "STARTS", "ENDS", "AUTHOR", "COMMENT"];
  const cells = rows.map((r) => r.map(escapeControls));
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((r) => r[i]!.length)));
  const line = (r: string[]): string =>
    r
      .map((c, i) => c.padEnd(widths[i]!))
      .join("  ")
      .trimEnd();
  return [line(header), ...cells.map(line)].join("\n") + "\n";
}

/** The answer of add, extend or end: the window's id on stdout, or the refusal on stderr. */
function outcome(answer: MaintAnswer, io: Io, verb: string): number {
  if (answer.ok) {
    const w: MaintWindowView = answer.window;
    io.stdout.write(`${w.id}\n`);
    if (verb !== "add" || w.state !== "active")
      io.stderr.write(`${w.id}: ${w.state}, ends ${new Date(w.endedAt ?? w.endsAt).toISOString()}\n`);
    return ExitCode.OK;
  }
  io.stderr.write(`hb maint ${verb}: ${escapeControls(answer.error)}\n`);
  if (answer.status === 507) return ExitCode.OS_ERROR;
  return answer.status === 404 || answer.status === 409 ? ExitCode.NOT_ALL_UP : ExitCode.USAGE;
}

export async function run(args: readonly string[], io: Io): Promise<number> {
  const { values, positionals } = parseFlags(args, flags, usage, true);
  const [verb, ...rest] = positionals;
  const endpoint = async () => {
    const found = await endpointFromFlags(values, io.env);
    if (found === null) throw usageError(`${String(values.config)}: the status endpoint is off`, usage);
    return found;
  };
  const now = io.clock.wallMs();
  switch (verb) {
    case "add": {
      if (rest.length === 0)
        throw usageError("give at least one SELECTOR (a node id, web-*, label:KEY=VALUE)", usage);
      if (typeof values.comment !== "string" || values.comment.trim() === "")
        throw usageError("--comment is required: say why, for whoever reads the journal", usage);
      let startsAt: number | null = null;
      if (typeof values.from === "string") {
        startsAt = parseTime(values.from, now) ?? null;
        if (startsAt === null) throw usageError(`--from: "${values.from}" is not a time`, usage);
      }
      const endsAt = endOf(values, now, startsAt ?? now);
      const author =
        typeof values.author === "string"
          ? values.author
          : (io.env.SUDO_USER ?? io.env.USER ?? io.env.LOGNAME ?? "");
      const answer = await ask(await endpoint(), "maintAdd", "", {
        match: rest,
        comment: values.comment,
        author,
        startsAt,
        endsAt,
        all: values.all === true,
      });
      return outcome(answer, io, "add");
    }
    case "extend":
    case "end": {
      const [id, ...more] = rest;
      if (id === undefined || more.length > 0) throw usageError("give exactly one window ID", usage);
      if (verb === "end") {
        if (values.for !== undefined || values.until !== undefined)
          throw usageError("end takes no --for or --until", usage);
        return outcome(await ask(await endpoint(), "maintEnd", "", { id }), io, "end");
      }
      return outcome(
        await ask(await endpoint(), "maintExtend", "", { id, endsAt: endOf(values, now, now) }),
        io,
        "extend",
      );
    }
    case "list": {
      if (rest.length > 0) throw usageError("list takes no arguments", usage);
      const list = await ask(await endpoint(), "maintList");
      if (values.json === true) {
        const windows =
          values.expired === true
            ? list.windows
            : list.windows.filter((w) => w.state === "active" || w.state === "scheduled");
        io.stdout.write(terminalJson({ ...list, windows }) + "\n");
      } else io.stdout.write(renderWindows(list, values.expired === true));
      return ExitCode.OK;
    }
    default:
      throw usageError(
        verb === undefined ? "give add, list, extend or end" : `unknown maint command "${verb}"`,
        usage,
      );
  }
}
