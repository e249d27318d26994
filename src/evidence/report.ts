// The figures as people read them: a table per detector setting, a table per node, and the
// JSON document of `hb replay --json`. Times in seconds, rates to three figures, P_A with as
// many nines as it has.

import { formatDuration } from "../duration.js";
import type { Trace } from "../wire/trace.js";
import type { Figures, NodeFigures, Scored } from "./qos.js";
import type { ReplayRun } from "./replay.js";
import type { Point } from "./sweep.js";

/** "9.87s", "850ms", "123s"; "-" for nothing. */
export function seconds(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return "-";
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 100_000) return `${(ms / 1000).toFixed(2)}s`;
  return `${Math.round(ms / 1000)}s`;
}

/** Three significant figures, without an exponent: 0.333, 12, 1230. */
export function rate(value: number | null): string {
  if (value === null) return "-";
  if (value === 0) return "0";
  return String(Number(value.toPrecision(3)));
}

/** P_A with its nines and two figures after them: 1, 0.99987, 0.90. */
export function accuracy(p: number | null): string {
  if (p === null) return "-";
  if (p >= 1) return "1";
  const digits = Math.min(12, Math.max(2, Math.ceil(-Math.log10(1 - p)) + 1));
  return p.toFixed(digits);
}

/** Columns padded to their widest cell; the first left-aligned, the rest right-aligned. */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!)))
      .join("  ")
      .trimEnd();
  return [line(header), ...rows.map(line)].join("\n") + "\n";
}

const SETTING_HEADER = [
  "setting",
  "nodes",
  "crashes detected",
  "T_D mean",
  "T_D p99",
  "T_D max",
  "mistakes",
  "λ_M/day",
  "T_M",
  "P_A",
  "late",
];

function settingRow(label: string, nodes: number, f: Figures): string[] {
  return [
    label,
    String(nodes),
    `${f.detected}/${f.crashes}`,
    seconds(f.detectionMs?.mean),
    seconds(f.detectionMs?.p99),
    seconds(f.detectionMs?.max),
    String(f.mistakes),
    rate(f.mistakesPerDay),
    seconds(f.mistakeMs),
    accuracy(f.queryAccuracy),
    String(f.lates),
  ];
}

export function settingsTable(points: readonly { label: string; scored: Scored }[]): string {
  return table(
    SETTING_HEADER,
    points.map((p) => settingRow(p.label, p.scored.total.nodes, p.scored.total)),
  );
}

function crashCell(n: NodeFigures): string {
  if (n.crash === null) return "-";
  return `${seconds(n.crash.atMs)}${n.crash.marked ? "" : " (silent)"}`;
}

export function nodesTable(nodes: readonly NodeFigures[]): string {
  return table(
    ["node", "interval", "crash at", "T_D", "mistakes", "λ_M/day", "T_M", "T_MR", "P_A", "late"],
    nodes.map((n) => [
      n.node,
      formatDuration(n.intervalMs),
      crashCell(n),
      n.crash === null ? "-" : n.detectionMs === null ? "undetected" : seconds(n.detectionMs.mean),
      String(n.mistakes),
      rate(n.mistakesPerDay),
      seconds(n.mistakeMs),
      seconds(n.recurrenceMs),
      accuracy(n.queryAccuracy),
      String(n.lates),
    ]),
  );
}

/** One line on the trace: how much of it there is and what it marks. */
export function traceLine(file: string, trace: Trace): string {
  const span = formatDuration(Math.round(trace.endMs - trace.startMs));
  const parts = [
    `${trace.nodes.length} nodes`,
    `${trace.node.length} rows`,
    `${span}`,
    `${trace.stalls.length} monitor stall(s)`,
    `${trace.crashes.size} crash(es) marked`,
  ];
  return `${file}: ${parts.join(", ")}\n`;
}

/** Notes below a table: what the reader should know about how the figures were made. */
export function notes(run: ReplayRun, figures: Figures, crashRule: string): string {
  const lines = [`crashes: ${crashRule}`];
  if (figures.undetected > 0)
    lines.push(`${figures.undetected} crashed node(s) not judged down before the trace ends`);
  if (figures.open > 0)
    lines.push(`${figures.open} node(s) judged down at the end, not heard again and not taken as crashed`);
  if (run.stalls > 0) lines.push(`the monitor found it had stalled ${run.stalls} time(s) and held judgement`);
  if (run.summarized > 0)
    lines.push(
      `up to ${run.summarized} judgement(s) are missing: the monitor summarized their journal lines (over 100 a second about unlisted nodes)`,
    );
  return lines.map((l) => `  ${l}\n`).join("");
}

/** `hb replay --json`: the figures, per node and in all, and every judgement. */
export function replayDocument(
  file: string,
  configFile: string,
  trace: Trace,
  run: ReplayRun,
  scored: Scored,
  crashSilenceMs: number | null,
): unknown {
  return {
    trace: traceFacts(file, trace),
    config: configFile,
    crashSilenceMs,
    total: scored.total,
    nodes: scored.nodes,
    monitor: { stalled: run.stalls, summarized: run.summarized },
    transitions: run.transitions,
  };
}

/** `hb replay --sweep --json`: the figures of every setting. */
export function sweepDocument(
  file: string,
  configFile: string,
  trace: Trace,
  points: readonly Point[],
  plot: string,
  crashSilenceMs: number | null,
): unknown {
  return {
    trace: traceFacts(file, trace),
    config: configFile,
    crashSilenceMs,
    plot,
    points: points.map((p) => ({
      family: p.setting.family,
      value: p.setting.value,
      label: p.setting.label,
      total: p.scored.total,
      monitor: { stalled: p.run.stalls, summarized: p.run.summarized },
    })),
  };
}

function traceFacts(file: string, trace: Trace): unknown {
  return {
    file,
    startMs: trace.startMs,
    endMs: trace.endMs,
    intervalMs: trace.intervalMs,
    nodes: trace.nodes.length,
    rows: trace.node.length,
    stalls: trace.stalls,
    crashes: Object.fromEntries(trace.crashes),
  };
}
