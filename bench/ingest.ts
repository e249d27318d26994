// Ingest: accepted datagrams per second of one core's CPU, hb (unsigned and signed) against a
// bare node:dgram receiver that only counts, side by side in each run.
import {
  QUICK,
  RUNS,
  keyFile,
  log,
  round,
  startMonitor,
  monitorStatus,
  startBare,
  udpLoad,
  window,
  monitorWindow,
} from "./harness.js";
import { sleep, spread, type Spread } from "./lib.js";

async function ingestRound(kind: "bare" | "hb" | "hb-auth", rate: number, seconds: number) {
  const nodes = 10_000;
  if (kind === "bare") {
    const bare = await startBare();
    const load = udpLoad({ port: bare.port, nodes, rate, seconds: seconds + 2 });
    await load.line((l) => l.includes("ready"));
    await sleep(1000);
    const w = await window(bare.proc.child.pid!, bare.count, seconds);
    await load.stop();
    await bare.proc.stop();
    return w;
  }
  const auth = kind === "hb-auth";
  const monitor = await startMonitor(
    `max_nodes: 20000\ndefaults: { interval: 1s, timeout: 1h }\n${auth ? `keys: { k1: ${keyFile} }\n` : ""}`,
  );
  const { gen: load, window: w } = await monitorWindow(
    monitor,
    { nodes, rate, seconds: seconds + 2, ...(auth ? { keyFile } : {}) },
    1000,
    seconds,
  );
  const s = await monitorStatus(monitor);
  if (process.env.HB_BENCH_DEBUG)
    log(
      `  ${kind}: ${JSON.stringify(s.datagrams)} drops ${s.kernelDrops}; generator ${load.lines.join(" ")}`,
    );
  await load.stop();
  await monitor.proc.stop();
  return { ...w, rejected: Object.values(s.datagrams.rejected).reduce((a, b) => a + b, 0) };
}

export async function ingest() {
  const seconds = QUICK ? 2 : 5;
  const rows: Record<string, number[]> = {
    bare: [],
    hb: [],
    "hb-auth": [],
    hbRatio: [],
    authRatio: [],
    hbCpu: [],
    authCpu: [],
    bareCpu: [],
  };
  for (let run = 0; run < RUNS; run++) {
    const bare = await ingestRound("bare", 250_000, seconds);
    const hb = await ingestRound("hb", 250_000, seconds);
    const auth = await ingestRound("hb-auth", 150_000, seconds);
    const refused = [hb, auth].map((r) => ("rejected" in r ? (r.rejected as number) : 0));
    if (refused.some((n) => n > 0))
      throw new Error(`ingest: the monitor refused datagrams (${refused.join(", ")})`);
    rows.bare!.push(bare.perCore);
    rows.hb!.push(hb.perCore);
    rows["hb-auth"]!.push(auth.perCore);
    rows.hbRatio!.push(hb.perCore / bare.perCore);
    rows.authRatio!.push(auth.perCore / bare.perCore);
    rows.bareCpu!.push(bare.cpu);
    rows.hbCpu!.push(hb.cpu);
    rows.authCpu!.push(auth.cpu);
    log(
      `ingest run ${run + 1}: bare ${round(bare.rate)}/s at ${round(bare.cpu * 100)}% CPU; hb ${round(hb.rate)}/s at ${round(hb.cpu * 100)}%; ` +
        `hb+auth ${round(auth.rate)}/s at ${round(auth.cpu * 100)}%`,
    );
  }
  return Object.fromEntries(Object.entries(rows).map(([k, v]) => [k, spread(v)])) as Record<string, Spread>;
}
