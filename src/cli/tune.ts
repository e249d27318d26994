// `hb tune`: per set of nodes that share settings, the `late` and `timeout` their observed gaps
// support for a target rate of false downs, as YAML to paste into heartbeat.yaml. The gaps come
// from the running monitor (its per-node statistics in /status) or, given a trace, from the
// trace itself, exactly.

import type { Config } from "../config/types.js";
import { TIMEOUT_INTERVALS } from "../config/types.js";
import { parseOrThrow, readConfigText } from "../config/load.js";
import { ExitCode } from "../errors.js";
import { traceGaps } from "../evidence/gaps.js";
import { DEFAULT_MISTAKES_PER_DAY, formatTune, tune, type TuneInput } from "../evidence/tune.js";
import type { StatusDocument } from "../monitor/status.js";
import type { Trace } from "../wire/trace.js";
import { parseFlags, usageError } from "./flags.js";
import type { Io } from "./io.js";
import { readTrace } from "./trace-file.js";
import { DEFAULT_STATUS_URL, ENDPOINT_FLAGS, endpointFromFlags, fetchStatus } from "./status-client.js";

export const usage = `usage: hb tune [TRACE] [--mistakes-per-day N] [--json] [--url URL | --socket PATH | --config PATH]

  TRACE                a trace (hb capture): tune from its gaps, exactly, instead of asking the
                       running monitor; --config then says how each node is judged now
  --mistakes-per-day N the false downs a node may have per day (default ${DEFAULT_MISTAKES_PER_DAY}: one in ${Math.round(1 / DEFAULT_MISTAKES_PER_DAY)} days)
  --json               the suggestions as JSON instead of YAML
  --url URL            the monitor's status endpoint (env HB_STATUS_URL; default ${DEFAULT_STATUS_URL})
  --socket PATH        the monitor's status endpoint is this Unix socket (env HB_STATUS_SOCKET)
  --config PATH        use the status address this monitor config names`;

export const flags = {
  "mistakes-per-day": { type: "string" },
  json: { type: "boolean" },
  ...ENDPOINT_FLAGS,
} as const;

function detectorText(phi: Config["defaults"]["phi"]): string {
  return phi === null ? "fixed" : `phi threshold ${phi.threshold}`;
}

/** The running monitor's nodes, with the gap statistics it keeps. */
function fromStatus(doc: StatusDocument): TuneInput[] {
  return doc.nodes.map((n) => ({
    node: n.node,
    intervalMs: n.intervalMs,
    lateMs: n.lateMs,
    timeoutMs: n.timeoutMs,
    detector: n.phi === undefined ? "fixed" : "phi",
    expected: n.expected,
    gaps: n.gaps === null ? null : { ...n.gaps, loss: n.lossPct / 100 },
  }));
}

/** A trace's nodes, judged now as `config` says (else by the built-in rule from the trace's interval). */
function fromTrace(trace: Trace, config: Config | null): TuneInput[] {
  return traceGaps(trace).map(({ node, intervalMs, gaps }) => {
    const spec = config?.nodes.get(node);
    const th = spec ?? config?.defaults;
    const timeoutMs = th?.timeoutMs ?? TIMEOUT_INTERVALS * intervalMs;
    return {
      node,
      intervalMs: th?.intervalMs ?? intervalMs,
      lateMs: th?.lateMs ?? Math.floor(timeoutMs / 2),
      timeoutMs,
      detector: detectorText(th?.phi ?? null),
      expected: spec !== undefined,
      gaps,
    };
  });
}

export async function run(args: readonly string[], io: Io): Promise<number> {
  const { values, positionals } = parseFlags(args, flags, usage, true);
  if (positionals.length > 1) throw usageError("one trace at a time", usage);
  let mistakes = DEFAULT_MISTAKES_PER_DAY;
  if (typeof values["mistakes-per-day"] === "string") {
    mistakes = Number(values["mistakes-per-day"]);
    if (!/^\d+(\.\d+)?(e-?\d+)?$/.test(values["mistakes-per-day"]) || !(mistakes > 0) || mistakes > 1000)
      throw usageError(
        `--mistakes-per-day: "${values["mistakes-per-day"]}" is not a number above 0 (at most 1000)`,
        usage,
      );
  }
  let inputs: TuneInput[];
  let source: string;
  const tracePath = positionals[0];
  if (tracePath !== undefined) {
    const configPath = values.config;
    const config =
      typeof configPath === "string"
        ? parseOrThrow(await readConfigText(configPath), configPath).config
        : null;
    inputs = fromTrace(await readTrace(tracePath), config);
    source = `in ${tracePath}`;
  } else {
    const endpoint = await endpointFromFlags(values, io.env);
    if (endpoint === null) throw usageError(`${String(values.config)}: the status endpoint is off`, usage);
    const doc = await fetchStatus(endpoint, {});
    inputs = fromStatus(doc);
    source = `by the running monitor`;
  }
  const sets = tune(inputs, mistakes);
  if (values.json === true)
    io.stdout.write(JSON.stringify({ mistakesPerDay: mistakes, sets }, null, 2) + "\n");
  else io.stdout.write(formatTune(sets, mistakes, source));
  return ExitCode.OK;
}
