// Fleets at 1 Hz (10 000 and 100 000 nodes): the monitor's CPU against the bare receiver's,
// kernel drops, false downs, and how long after its exact deadline a stopped node is reported.
import {
  QUICK,
  RUNS,
  log,
  round,
  startMonitor,
  monitorStatus,
  startBare,
  udpLoad,
  window,
} from "./harness.js";
import { percentile, rssBytes, sleep, spread } from "./lib.js";

async function fleetRun(nodes: number, seconds: number, detect: boolean) {
  const warmup = 5;
  // Listed (interval 1s, late 5s, timeout 10s), so that every node.down is a line of its own:
  // lines about unlisted nodes are budgeted.
  const listed = Array.from({ length: nodes }, (_, i) => `  n${i}: {}\n`).join("");
  const monitor = await startMonitor(`max_nodes: ${nodes * 2}\nnodes:\n${listed}`);
  const stopCount = detect ? Math.round(nodes / 100) : 0;
  const total = warmup + seconds + (detect ? 15 : 1);
  const load = udpLoad({
    port: monitor.port,
    nodes,
    rate: nodes,
    seconds: total,
    ...(detect ? { stopAfter: warmup + seconds, stopCount } : {}),
  });
  await load.line((l) => l.includes("ready"));
  await sleep(warmup * 1000);
  const before = await monitorStatus(monitor);
  const startupDrops = before.kernelDrops ?? 0;
  const w = await window(
    monitor.proc.child.pid!,
    async () => (await monitorStatus(monitor)).datagrams.accepted,
    seconds,
  );
  const after = await monitorStatus(monitor);
  const rss = rssBytes(monitor.proc.child.pid!);
  const isDown = (l: string): boolean => l.includes('"event":"node.down"');
  const downsDuringLoad = monitor.proc.lines.filter(isDown).length;
  let detection:
    { p50: number; p99: number; max: number; min: number; count: number; missed: number } | undefined;
  if (detect) {
    const stoppedLine = await load.line((l) => l.includes('"stopped"'));
    const stopped = new Set((JSON.parse(stoppedLine) as { stopped: string[] }).stopped);
    await sleep(12_000);
    const downs = monitor.proc.lines
      .filter(isDown)
      .map((l) => JSON.parse(l) as { node: string; at: number; time: number });
    const delays = downs
      .filter((d) => stopped.has(d.node))
      .map((d) => d.time - d.at)
      .sort((a, b) => a - b);
    detection = {
      p50: percentile(delays, 50),
      p99: percentile(delays, 99),
      max: delays.at(-1) ?? Number.NaN,
      min: delays[0] ?? Number.NaN,
      count: delays.length,
      missed: stopped.size - delays.length,
    };
    if (downs.some((d) => !stopped.has(d.node))) throw new Error("fleet: a node that kept beating went down");
  }
  await load.stop();
  await monitor.proc.stop();
  return {
    rate: w.rate,
    cpu: w.cpu,
    rss,
    kernelDrops: (after.kernelDrops ?? 0) - (before.kernelDrops ?? 0),
    startupDrops,
    falseDowns: downsDuringLoad,
    detection,
  };
}

export async function bareFleet(nodes: number, seconds: number) {
  const bare = await startBare();
  const load = udpLoad({ port: bare.port, nodes, rate: nodes, seconds: seconds + 3 });
  await load.line((l) => l.includes("ready"));
  await sleep(2000);
  const w = await window(bare.proc.child.pid!, bare.count, seconds);
  await load.stop();
  await bare.proc.stop();
  return w;
}

export async function fleet() {
  const seconds = QUICK ? 5 : 60;
  const out: Record<string, unknown> = {};
  const delays: { p50: number[]; p99: number[]; max: number[] } = { p50: [], p99: [], max: [] };
  for (const nodes of [10_000, 100_000]) {
    const runs: Awaited<ReturnType<typeof fleetRun>>[] = [];
    const ratios: number[] = [];
    for (let run = 0; run < RUNS; run++) {
      const hb = await fleetRun(nodes, seconds, nodes === 100_000);
      const bare = await bareFleet(nodes, QUICK ? 5 : 20);
      runs.push(hb);
      ratios.push(hb.cpu / bare.cpu);
      if (hb.detection !== undefined) {
        delays.p50.push(hb.detection.p50);
        delays.p99.push(hb.detection.p99);
        delays.max.push(hb.detection.max);
      }
      log(
        `fleet ${nodes} run ${run + 1}: hb ${round(hb.rate)}/s at ${round(hb.cpu * 100, 1)}% CPU (bare ${round(bare.cpu * 100, 1)}%), ` +
          `RSS ${round(hb.rss / 2 ** 20, 1)} MiB, drops ${hb.kernelDrops} (at start ${hb.startupDrops}), false downs ${hb.falseDowns}` +
          (hb.detection ? `, detection ${JSON.stringify(hb.detection)} ms` : ""),
      );
    }
    out[nodes] = {
      cpuPct: spread(runs.map((r) => r.cpu * 100)),
      cpuVsBare: spread(ratios),
      rssMiB: spread(runs.map((r) => r.rss / 2 ** 20)),
      kernelDrops: spread(runs.map((r) => r.kernelDrops)),
      startupDrops: spread(runs.map((r) => r.startupDrops)),
      falseDowns: runs.reduce((a, r) => a + r.falseDowns, 0),
      seconds,
    };
  }
  out.detection = { p50: spread(delays.p50), p99: spread(delays.p99), max: spread(delays.max) };
  return out;
}
