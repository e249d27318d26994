// How long serving the full /status and /metrics of a million nodes keeps the monitor's event
// loop from turning (from reading a datagram): the longest gap between the turns of a 1 ms timer
// in the monitor's own process, for a first request (which also sorts the fleet) and a second,
// against the longest gap over as long with no request. See status-block-run.ts.
import { LOAD_CPU, QUICK, RECEIVER_CPU, RUNS, TSX, here, log, round } from "./harness.js";
import { start, spread } from "./lib.js";

interface Run {
  nodes: number;
  idleMs: number;
  first: { blockMs: number; statusBytes: number; metricsBytes: number };
  second: { blockMs: number; statusBytes: number; metricsBytes: number };
}

export async function statusBlock() {
  const nodes = QUICK ? 100_000 : 1_000_000;
  const runs: Run[] = [];
  for (let run = 0; run < RUNS; run++) {
    const proc = start(RECEIVER_CPU, [here("status-block-run.ts"), String(nodes), String(LOAD_CPU)], TSX);
    const r = JSON.parse(await proc.line((l) => l.startsWith("{"), 300_000)) as Run;
    await proc.stop();
    runs.push(r);
    log(
      `status block run ${run + 1}: longest event-loop block at ${nodes} nodes serving /status ` +
        `(${r.first.statusBytes} bytes) and /metrics (${r.first.metricsBytes} bytes): first ` +
        `${round(r.first.blockMs, 1)} ms, second ${round(r.second.blockMs, 1)} ms; ${round(r.idleMs, 1)} ms idle`,
    );
  }
  return {
    nodes,
    idleMaxMs: spread(runs.map((r) => round(r.idleMs, 1))),
    firstMaxMs: spread(runs.map((r) => round(r.first.blockMs, 1))),
    secondMaxMs: spread(runs.map((r) => round(r.second.blockMs, 1))),
    statusBytes: runs[0]!.first.statusBytes,
    metricsBytes: runs[0]!.first.metricsBytes,
  };
}
