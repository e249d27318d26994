// Asking for status while the fleet beats: 100 000 nodes every 2 s (50 000 datagrams/s), and
// four clients fetching the full /status and /metrics back to back for 10 s. What it must not
// cost: kernel drops (datagrams lost while the monitor was busy answering) and false `node.late`.
import { QUICK, RUNS, log, round, startMonitor, monitorStatus, udpLoad } from "./harness.js";
import { sleep, spread } from "./lib.js";

const NODES = 100_000;
const CLIENTS = 4;

async function client(url: string, until: number, latencies: number[]): Promise<number> {
  let done = 0;
  for (let path = 0; performance.now() < until; path++) {
    const t0 = performance.now();
    const res = await fetch(path % 2 === 0 ? url : url.replace("/status", "/metrics"));
    await res.arrayBuffer();
    latencies.push(performance.now() - t0);
    done++;
  }
  return done;
}

async function round1(seconds: number) {
  const monitor = await startMonitor(`max_nodes: 200000\ndefaults: { interval: 2s }\n`); // late 10s, timeout 20s
  const load = udpLoad({ port: monitor.port, nodes: NODES, rate: NODES / 2, seconds: seconds + 12 });
  await load.line((l) => l.includes("ready"));
  await sleep(5000); // every node heard twice
  const before = await monitorStatus(monitor);
  const full = monitor.statusUrl.replace("?nodes=0", "");
  const latencies: number[] = [];
  const until = performance.now() + seconds * 1000;
  const requests = (
    await Promise.all(Array.from({ length: CLIENTS }, () => client(full, until, latencies)))
  ).reduce((a, b) => a + b, 0);
  await sleep(1000);
  const after = await monitorStatus(monitor);
  const falseLates = monitor.proc.lines.filter((l) => l.includes('"node.late"')).length;
  await load.stop();
  await monitor.proc.stop();
  latencies.sort((a, b) => a - b);
  return {
    requests,
    kernelDrops: (after.kernelDrops ?? 0) - (before.kernelDrops ?? 0),
    falseLates,
    p50Ms: latencies[Math.floor(latencies.length / 2)] ?? Number.NaN,
    maxMs: latencies.at(-1) ?? Number.NaN,
  };
}

export async function statusLoad() {
  const seconds = QUICK ? 5 : 10;
  const runs = [];
  for (let run = 0; run < RUNS; run++) {
    const r = await round1(seconds);
    runs.push(r);
    log(
      `status under load run ${run + 1}: ${r.requests} full /status and /metrics in ${seconds} s by ${CLIENTS} clients ` +
        `(p50 ${round(r.p50Ms)} ms, max ${round(r.maxMs)} ms); kernel drops ${r.kernelDrops}; false node.late ${r.falseLates}`,
    );
  }
  return {
    nodes: NODES,
    clients: CLIENTS,
    seconds,
    requests: spread(runs.map((r) => r.requests)),
    kernelDrops: spread(runs.map((r) => r.kernelDrops)),
    falseLates: spread(runs.map((r) => r.falseLates)),
    p50Ms: spread(runs.map((r) => r.p50Ms)),
    maxMs: spread(runs.map((r) => r.maxMs)),
  };
}
