// A fleet at half the bare receiver's ceiling: 100 000 listed nodes (interval 2 s, so each sends
// once per 100 000 / rate seconds... every node well within its interval), from the native
// generator at half of what a bare node:dgram receiver takes flat out in the same run. The
// generator starts first: the monitor starts in front of a fleet that is already beating, as
// after a restart. Over 60 s from its start: its CPU against the bare receiver's at the same
// rate, kernel drops (including the first 10 s), false `node.late`/`node.down`; then 1 % of the
// nodes stop, and each `node.down` is timed against its exact deadline.
import { cLoad } from "./cgen.js";
import { ingest, INGEST_NODES } from "./ingest.js";
import {
  QUICK,
  RUNS,
  freePort,
  log,
  round,
  startMonitor,
  monitorStatus,
  bareUnder,
  window,
  type MonitorStatus,
} from "./harness.js";
import { percentile, rssBytes, sleep, spread } from "./lib.js";

const NODES = 100_000;
/** Interval 2 s (late 10 s, timeout 20 s): at the rates measured here each node sends every 1-2 s. */
const CONFIG_HEAD = `max_nodes: ${NODES * 2}\ndefaults: { interval: 2s }\nnodes:\n`;

async function fleetRun(rate: number, seconds: number) {
  const port = await freePort();
  const stopCount = NODES / 100;
  const stopAfter = seconds + 15; // the monitor starts within these 15 s, then runs `seconds`
  const load = cLoad({ port, nodes: NODES, rate, seconds: stopAfter + 25, stopAfter, stopCount });
  await load.line((l) => l.includes("ready"));
  // Listed, so that every node.down is a line of its own (lines about unlisted nodes are budgeted).
  const width = String(NODES - 1).length;
  const listed = Array.from({ length: NODES }, (_, i) => `  n${String(i).padStart(width, "0")}: {}\n`).join(
    "",
  );
  const t0 = performance.now();
  const monitor = await startMonitor(CONFIG_HEAD + listed, port);
  const status = (): Promise<MonitorStatus> => monitorStatus(monitor);
  await sleep(Math.max(0, 10_000 - (performance.now() - t0)));
  const first10 = (await status()).kernelDrops ?? 0;
  const w = await window(
    monitor.proc.child.pid!,
    async () => (await status()).datagrams.accepted,
    seconds - 10,
  );
  const after = await status();
  const rss = rssBytes(monitor.proc.child.pid!);
  const events = (name: string) =>
    monitor.proc.lines
      .filter((l) => l.includes(`"event":"${name}"`))
      .map((l) => JSON.parse(l) as { node: string; at: number; time: number });
  const falseLate = events("node.late").length;
  const falseDown = events("node.down").length;
  const stopped = new Set(
    (JSON.parse(await load.line((l) => l.includes('"stopped"'), 60_000)) as { stopped: string[] }).stopped,
  );
  await sleep(22_000); // past the stopped nodes' 20 s timeout
  const downs = events("node.down").filter((d) => stopped.has(d.node));
  const delays = downs.map((d) => d.time - d.at).sort((a, b) => a - b);
  const strangers = events("node.down").filter((d) => !stopped.has(d.node)).length;
  await load.stop();
  await monitor.proc.stop();
  return {
    rate: w.rate,
    cpu: w.cpu,
    rss,
    drops: after.kernelDrops ?? 0,
    first10,
    falseLate,
    falseDown: falseDown + strangers,
    detection: {
      p50: percentile(delays, 50),
      p99: percentile(delays, 99),
      max: delays.at(-1) ?? Number.NaN,
      min: delays[0] ?? Number.NaN,
      missed: stopped.size - delays.length,
    },
  };
}

const bareRun = (rate: number, seconds: number) =>
  bareUnder((port) => cLoad({ port, nodes: NODES, rate, seconds: seconds + 3 }), seconds);

export async function fleet(ceiling?: number) {
  const seconds = QUICK ? 15 : 60;
  // Half the bare receiver's ceiling: from this run's ingest section, or measured now.
  const bareCeiling = ceiling ?? (await ingest()).bare.median;
  const rate = Math.round(bareCeiling / 2);
  log(
    `fleet: ${NODES} listed nodes at ${rate}/s (half the bare receiver's ${round(bareCeiling)}/s flat out; ${INGEST_NODES} ids)`,
  );
  const runs: Awaited<ReturnType<typeof fleetRun>>[] = [];
  const ratios: number[] = [];
  const bareCpu: number[] = [];
  for (let run = 0; run < RUNS; run++) {
    const hb = await fleetRun(rate, seconds);
    const bare = await bareRun(rate, QUICK ? 5 : 20);
    runs.push(hb);
    ratios.push(hb.cpu / bare.cpu);
    bareCpu.push(bare.cpu);
    log(
      `fleet run ${run + 1}: hb ${round(hb.rate)}/s at ${round(hb.cpu * 100, 1)}% CPU (bare ${round(bare.cpu * 100, 1)}%, ${round(hb.cpu / bare.cpu, 2)}x), ` +
        `RSS ${round(hb.rss / 2 ** 20, 1)} MiB, kernel drops ${hb.drops} (first 10 s ${hb.first10}), false late ${hb.falseLate}, ` +
        `false down ${hb.falseDown}, detection ${JSON.stringify(hb.detection)} ms`,
    );
  }
  const of = (f: (r: (typeof runs)[number]) => number) => spread(runs.map(f));
  return {
    nodes: NODES,
    rate,
    bareCeiling: round(bareCeiling),
    seconds,
    cpuPct: of((r) => r.cpu * 100),
    bareCpuPct: spread(bareCpu.map((c) => c * 100)),
    cpuVsBare: spread(ratios),
    rssMiB: of((r) => r.rss / 2 ** 20),
    kernelDrops: of((r) => r.drops),
    kernelDropsFirst10s: of((r) => r.first10),
    falseLate: of((r) => r.falseLate),
    falseDown: of((r) => r.falseDown),
    detection: {
      p50: of((r) => r.detection.p50),
      p99: of((r) => r.detection.p99),
      max: of((r) => r.detection.max),
      min: of((r) => r.detection.min),
      missed: of((r) => r.detection.missed),
    },
  };
}
