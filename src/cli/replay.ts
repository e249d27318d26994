// `hb replay TRACE --config FILE [--json] [--sweep]`: runs the monitor's own code over a trace
// and scores its judgements (detection time, mistakes, query accuracy); `--sweep` scores a range
// of fixed and φ settings besides the config's and plots them (SVG). The config needs no key
// files: it is read and checked as `hb check-config` would, without them.

import { writeFile } from "node:fs/promises";
import { basename } from "node:path";
import { parseOrThrow, readConfigText } from "../config/load.js";
import { formatDuration } from "../duration.js";
import { ExitCode, HbError } from "../errors.js";
import { plotSvg, type PlotPoint } from "../evidence/plot.js";
import { CRASH_SILENCE_INTERVALS, score } from "../evidence/qos.js";
import { prepare, replay, replayConfig } from "../evidence/replay.js";
import {
  nodesTable,
  notes,
  replayDocument,
  settingsTable,
  sweepDocument,
  traceLine,
} from "../evidence/report.js";
import { TODAY, sweep, type Point } from "../evidence/sweep.js";
import { readTrace } from "./trace-file.js";
import { durationFlag, parseFlags, usageError } from "./flags.js";
import type { Io } from "./io.js";

export const usage = `usage: hb replay TRACE --config FILE [--json] [--crash-silence D]
       hb replay TRACE --config FILE --sweep [--plot FILE] [--json] [--crash-silence D]

  Runs the monitor's detector over the arrivals in TRACE, judging as FILE says, and scores it:
  detection time of crashes, mistakes (downs of nodes heard again), their rate, query accuracy.
  --config FILE        the monitor config to judge with (key files are not read)
  --json               print the figures and every judgement as JSON
  --crash-silence D    an unmarked node silent this long before the end crashed (default ${CRASH_SILENCE_INTERVALS} intervals)
  --sweep              also score fixed timeouts and φ thresholds over a range, and plot them
  --plot FILE          where --sweep writes its SVG (default: TRACE with .svg)`;

export const flags = {
  config: { type: "string" },
  json: { type: "boolean" },
  "crash-silence": { type: "string" },
  sweep: { type: "boolean" },
  plot: { type: "string" },
} as const;

/** TRACE's path with its extension (if any) replaced by .svg. */
export function defaultPlotPath(tracePath: string): string {
  const name = basename(tracePath);
  const dot = name.lastIndexOf(".");
  const stem = dot > 0 ? tracePath.slice(0, tracePath.length - (name.length - dot)) : tracePath;
  return `${stem}.svg`;
}

function plotPoints(points: readonly Point[]): PlotPoint[] {
  return points.map((p) => ({
    family: p.setting.family,
    label:
      p.setting.family === "config"
        ? "today"
        : p.setting.family === "fixed"
          ? `${p.setting.value}×`
          : String(p.setting.value),
    detectionS: p.scored.total.detectionMs === null ? null : p.scored.total.detectionMs.mean / 1000,
    mistakesPerDay: p.scored.total.mistakesPerDay,
  }));
}

export async function run(args: readonly string[], io: Io): Promise<number> {
  const { values, positionals } = parseFlags(args, flags, usage, true);
  if (positionals.length !== 1) throw usageError("give exactly one trace file", usage);
  const tracePath = positionals[0]!;
  const configPath = values.config;
  if (typeof configPath !== "string") throw usageError("--config FILE is required", usage);
  if (values.plot !== undefined && values.sweep !== true) throw usageError("--plot goes with --sweep", usage);
  const crashSilenceMs =
    typeof values["crash-silence"] === "string"
      ? durationFlag(values["crash-silence"], "--crash-silence", usage)
      : null;
  const crashRule =
    crashSilenceMs === null
      ? `marked in the trace, else a node silent for ${CRASH_SILENCE_INTERVALS} of its intervals before the end crashed at its last arrival`
      : `marked in the trace, else a node silent for ${formatDuration(crashSilenceMs)} before the end crashed at its last arrival`;
  const options = { crashSilenceMs: crashSilenceMs ?? undefined };

  const { config } = parseOrThrow(await readConfigText(configPath), configPath);
  const trace = await readTrace(tracePath);
  const prepared = prepare(trace);
  const replayed = replayConfig(config, trace);
  const out = io.stdout;

  if (values.sweep !== true) {
    const run = await replay(prepared, replayed);
    const scored = score(trace, run.transitions, options);
    if (values.json === true) {
      out.write(
        JSON.stringify(replayDocument(tracePath, configPath, trace, run, scored, crashSilenceMs)) + "\n",
      );
      return ExitCode.OK;
    }
    out.write(traceLine(tracePath, trace));
    out.write(settingsTable([{ label: TODAY.label, scored }]));
    out.write(notes(run, scored.total, crashRule));
    out.write("\n" + nodesTable(scored.nodes));
    return ExitCode.OK;
  }

  const points = await sweep(prepared, replayed, options);
  const plotPath = typeof values.plot === "string" ? values.plot : defaultPlotPath(tracePath);
  const svg = plotSvg(`Detection time against mistakes: ${basename(tracePath)}`, plotPoints(points));
  try {
    await writeFile(plotPath, svg);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new HbError("HB_ERR_WRITE", `cannot write the plot ${plotPath}: ${code}`, { cause: err });
  }
  if (values.json === true) {
    out.write(
      JSON.stringify(sweepDocument(tracePath, configPath, trace, points, plotPath, crashSilenceMs)) + "\n",
    );
    return ExitCode.OK;
  }
  out.write(traceLine(tracePath, trace));
  out.write(settingsTable(points.map((p) => ({ label: p.setting.label, scored: p.scored }))));
  out.write(notes(points[0]!.run, points[0]!.scored.total, crashRule));
  out.write(`plot: ${plotPath}\n`);
  return ExitCode.OK;
}
