// `hb capture` must never delay detection and cost little. Two measurements, each with and
// without a capture running, alternated within each run so that a drifting machine drifts for
// both alike. Detection: 1 000 listed nodes beat every second and 100 of them stop together; each
// `node.down` is timed against its exact deadline, while `hb capture` (pinned to the load core)
// records every arrival or not. Ingest: the native generator flat out, 100 000 ids, as in the
// ingest section; accepted datagrams per CPU-second of the monitor with a capture of them all
// running, against none.
import { existsSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { cLoad } from "./cgen.js";
import { INGEST_NODES } from "./ingest.js";
import { parseTrace } from "../src/wire/trace.js";
import {
  HB,
  LOAD_CPU,
  QUICK,
  RUNS,
  log,
  monitorStatus,
  round,
  startMonitor,
  tmp,
  lateness,
  stopSome,
  window,
} from "./harness.js";
import { sleep, spread, start, type Started } from "./lib.js";

const NODES = 1000;
const STOP = 100;
const STOP_AFTER_S = 6;
const TIMEOUT_S = 3;
const MODES = ["off", "on"] as const;
type Mode = (typeof MODES)[number];

/** `hb capture` of every node into `out`, against the monitor's status URL, from the load core. */
function startCapture(statusUrl: string, out: string, seconds: number): Started {
  return start(LOAD_CPU, [
    HB,
    "capture",
    "--seconds",
    String(seconds),
    "--out",
    out,
    "--max-bytes",
    "4GiB",
    "--url",
    statusUrl.replace("?nodes=0", ""),
  ]);
}

/** Rows the monitor has written to captures so far (hb_capture_rows_total). */
async function captureRows(statusUrl: string): Promise<number> {
  const metrics = await (await fetch(statusUrl.replace("/status?nodes=0", "/metrics?nodes=0"))).text();
  return Number(/^hb_capture_rows_total (\d+)$/m.exec(metrics)?.[1] ?? 0);
}

async function detection(mode: Mode, run: number) {
  const lines = [`defaults: { interval: 1s, timeout: ${TIMEOUT_S}s }`, "nodes:"];
  for (let i = 0; i < NODES; i++) lines.push(`  n${i}: {}`);
  const monitor = await startMonitor(lines.join("\n") + "\n");
  const out = join(tmp, `detection-${run}.trace`);
  const capture = mode === "on" ? startCapture(monitor.statusUrl, out, 600) : null;
  const { load, stopped, downs, delays } = await stopSome(monitor, {
    nodes: NODES,
    stop: STOP,
    stopAfterS: STOP_AFTER_S,
    timeoutS: TIMEOUT_S,
  });
  const rows = await captureRows(monitor.statusUrl);
  await load.stop();
  // The monitor's stop ends the capture, which then writes its trace (monitor_stopping).
  await monitor.proc.stop();
  let traceBytes = 0;
  if (capture !== null) {
    if (capture.child.exitCode === null) await new Promise((resolve) => capture.child.once("close", resolve));
    const text = readFileSync(out, "utf8");
    if (parseTrace(text).node.length < rows) throw new Error("capture: the trace lacks rows");
    traceBytes = text.length;
    rmSync(out);
  }
  if (mode === "on" && rows === 0) throw new Error("capture: the capture recorded nothing");
  return {
    ...lateness({ stopped, downs, delays }),
    rows,
    traceBytes,
  };
}

async function ingestRound(mode: Mode, seconds: number, run: number) {
  const monitor = await startMonitor(
    `max_nodes: ${INGEST_NODES * 2}\ndefaults: { interval: 10ms, timeout: 1h }\n`,
  );
  const out = join(tmp, `ingest-${run}.trace`);
  const capture = mode === "on" ? startCapture(monitor.statusUrl, out, 600) : null;
  const gen = cLoad({ port: monitor.port, nodes: INGEST_NODES, rate: 0, seconds: seconds + 3, gso: true });
  await gen.line((l) => l.includes("ready"));
  await sleep(1000);
  const rowsBefore = await captureRows(monitor.statusUrl);
  const accepted = async (): Promise<number> => (await monitorStatus(monitor)).datagrams.accepted;
  const w = await window(monitor.proc.child.pid!, accepted, seconds);
  const rows = (await captureRows(monitor.statusUrl)) - rowsBefore;
  await gen.stop();
  // The capture must still be running (not stopped by a bound): the rows kept pace with the window.
  const ended = monitor.proc.lines.find((l) => l.includes('"capture.ended"'));
  await capture?.stop("SIGINT");
  await monitor.proc.stop();
  if (existsSync(out)) rmSync(out);
  if (mode === "on" && ended !== undefined) throw new Error(`capture: it ended during the window: ${ended}`);
  return { ...w, rows, capturedShare: rows / w.count };
}

export async function captureCost() {
  const detectionRuns: Record<Mode, Awaited<ReturnType<typeof detection>>[]> = { off: [], on: [] };
  const ingestRuns: Record<Mode, Awaited<ReturnType<typeof ingestRound>>[]> = { off: [], on: [] };
  const seconds = QUICK ? 3 : 8;
  for (let run = 0; run < RUNS; run++) {
    for (const mode of run % 2 === 0 ? MODES : [...MODES].reverse()) {
      const r = await detection(mode, run);
      detectionRuns[mode].push(r);
      log(
        `capture run ${run + 1}, detection, capture ${mode}: node.down after its deadline ${JSON.stringify(r)} ms`,
      );
    }
    for (const mode of run % 2 === 0 ? MODES : [...MODES].reverse()) {
      const r = await ingestRound(mode, seconds, run);
      ingestRuns[mode].push(r);
      log(
        `capture run ${run + 1}, ingest flat out, capture ${mode}: ${round(r.rate)}/s at ${round(r.cpu * 100)}% CPU, ` +
          `${round(r.perCore)}/CPU-s${mode === "on" ? `, ${r.rows} rows captured in the window` : ""}`,
      );
    }
  }
  const summary = <T extends Record<string, number>>(runs: T[], fields: (keyof T & string)[]) =>
    Object.fromEntries(
      fields.map((f) => [f, spread(runs.map((r) => round(Number(r[f]), f === "capturedShare" ? 4 : 1)))]),
    );
  const detectionFields = ["p50", "p99", "max", "min", "missed", "falseDown", "rows", "traceBytes"] as const;
  const ratio = ingestRuns.on.map((r, i) => r.perCore / ingestRuns.off[i]!.perCore);
  return {
    detection: {
      nodes: NODES,
      stopped: STOP,
      timeoutSeconds: TIMEOUT_S,
      off: summary(detectionRuns.off, [...detectionFields]),
      on: summary(detectionRuns.on, [...detectionFields]),
    },
    ingest: {
      nodes: INGEST_NODES,
      off: summary(ingestRuns.off, ["rate", "cpu", "perCore"]),
      on: summary(ingestRuns.on, ["rate", "cpu", "perCore", "rows", "capturedShare"]),
      ratio: spread(ratio.map((r) => round(r, 3))),
    },
  };
}
