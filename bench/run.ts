// `npm run bench`: the hb monitor (built code, a real process) against a bare node:dgram
// receiver and an HTTP heartbeat endpoint, under simulated fleets from separate load-generator
// processes. Receivers run pinned to core 0, generators to core 1. Prints a table and writes
// bench/results/latest.json. `--quick` runs every measurement briefly (a smoke test).
import { execFileSync, spawn } from "node:child_process";
import { createSocket } from "node:dgram";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { cpus, release, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import {
  ask,
  cpuSeconds,
  percentile,
  rssBytes,
  sleep,
  spread,
  start,
  wakeups,
  type Spread,
  type Started,
} from "./lib.js";

const { values: flags } = parseArgs({
  options: { quick: { type: "boolean" }, only: { type: "string" }, runs: { type: "string" } },
});
const QUICK = flags.quick === true;
const RUNS = Number(flags.runs ?? (QUICK ? 1 : 3));
const only = new Set((flags.only ?? "idle,ingest,fleet,memory,baseline").split(","));
const HB = fileURLToPath(new URL("../dist/bin/hb.js", import.meta.url));
const here = (f: string): string => fileURLToPath(new URL(f, import.meta.url));
const TSX = ["--import", "tsx"];
const RECEIVER_CPU = 0;
const LOAD_CPU = 1;
const tmp = mkdtempSync(join(tmpdir(), "hb-bench-"));
const keyFile = join(tmp, "k1");
writeFileSync(keyFile, "bench-key-0123456789abcdef0123456789\n", { mode: 0o600 });

const log = (text: string): void => void process.stderr.write(`${text}\n`);
const round = (x: number, digits = 0): number => Number(x.toFixed(digits));

// ---------------------------------------------------------------------------------------------
// Processes under test

interface Monitor {
  proc: Started;
  port: number;
  statusUrl: string;
}

async function startMonitor(configYaml: string): Promise<Monitor> {
  const config = join(tmp, `hb-${Math.random()}.yaml`);
  writeFileSync(config, configYaml);
  const proc = start(
    RECEIVER_CPU,
    [HB, "monitor", "--config", config, "--listen", "127.0.0.1:0", "--status", "127.0.0.1:0"],
    [],
    {
      keep: (line) => !line.includes('"event":"node.up"'),
    },
  );
  const started = JSON.parse(await proc.line((l) => l.includes('"monitor.started"'))) as {
    listen: string;
    status: string;
  };
  return {
    proc,
    port: Number(started.listen.split(":")[1]),
    statusUrl: `http://${started.status}/status?nodes=0`,
  };
}

interface MonitorStatus {
  counts: Record<string, number>;
  datagrams: { received: number; accepted: number; rejected: Record<string, number> };
  kernelDrops: number | null;
}
const monitorStatus = async (m: Monitor): Promise<MonitorStatus> =>
  (await (await fetch(m.statusUrl)).json()) as MonitorStatus;

async function startBare(): Promise<{ proc: Started; port: number; count: () => Promise<number> }> {
  const proc = start(RECEIVER_CPU, [here("bare-receiver.ts")], TSX);
  const { port } = JSON.parse(await proc.line((l) => l.includes('"port"'))) as { port: number };
  return { proc, port, count: () => ask(proc, "count") };
}

function udpLoad(opts: Record<string, unknown>): Started {
  return start(LOAD_CPU, [here("udp-gen.ts"), JSON.stringify(opts)], TSX);
}

/** Rate and CPU share of a receiver over a window, from a counter it exposes. */
async function window(pid: number, count: () => Promise<number>, seconds: number) {
  const c0 = await count();
  const cpu0 = cpuSeconds(pid);
  const t0 = performance.now();
  await sleep(seconds * 1000);
  const c1 = await count();
  const cpu1 = cpuSeconds(pid);
  const elapsed = (performance.now() - t0) / 1000;
  const rate = (c1 - c0) / elapsed;
  const cpu = (cpu1 - cpu0) / elapsed;
  return { rate, cpu, perCore: rate / Math.max(cpu, 0.01), count: c1 - c0 };
}

/** Puts `load` on a monitor and measures accepted heartbeats and CPU over `seconds` after a warm-up. */
async function monitorWindow(
  monitor: Monitor,
  load: Record<string, unknown>,
  warmupMs: number,
  seconds: number,
) {
  const gen = udpLoad({ port: monitor.port, ...load });
  await gen.line((l) => l.includes("ready"));
  await sleep(warmupMs);
  const accepted = async (): Promise<number> => (await monitorStatus(monitor)).datagrams.accepted;
  return { gen, window: await window(monitor.proc.child.pid!, accepted, seconds) };
}

// ---------------------------------------------------------------------------------------------
// 1. Ingest: accepted datagrams per second of one core's CPU

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

async function ingest() {
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

// ---------------------------------------------------------------------------------------------
// 2 + 3. Fleet load at 1 Hz, and detection of nodes that stop

async function fleetRun(nodes: number, seconds: number, detect: boolean) {
  const warmup = 5;
  const monitor = await startMonitor(`max_nodes: ${nodes * 2}\n`); // interval 1s, late 5s, timeout 10s
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
  const downsDuringLoad = monitor.proc.lines.filter((l) => l.includes('"node.down"')).length;
  let detection:
    { p50: number; p99: number; max: number; min: number; count: number; missed: number } | undefined;
  if (detect) {
    const stoppedLine = await load.line((l) => l.includes('"stopped"'));
    const stopped = new Set((JSON.parse(stoppedLine) as { stopped: string[] }).stopped);
    await sleep(12_000);
    const downs = monitor.proc.lines
      .filter((l) => l.includes('"node.down"'))
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

async function bareFleet(nodes: number, seconds: number) {
  const bare = await startBare();
  const load = udpLoad({ port: bare.port, nodes, rate: nodes, seconds: seconds + 3 });
  await load.line((l) => l.includes("ready"));
  await sleep(2000);
  const w = await window(bare.proc.child.pid!, bare.count, seconds);
  await load.stop();
  await bare.proc.stop();
  return w;
}

async function fleet() {
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

// ---------------------------------------------------------------------------------------------
// 4. Memory per tracked node

/** A free loopback port (bound and released; fine for a benchmark on a quiet machine). */
async function freePort(): Promise<number> {
  const socket = createSocket("udp4");
  await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", resolve));
  const port = socket.address().port;
  await new Promise<void>((resolve) => socket.close(resolve));
  return port;
}

async function memory() {
  const out: Record<string, number> = {};
  for (const nodes of QUICK ? [10_000, 100_000] : [10_000, 100_000, 1_000_000]) {
    // stdout to /dev/null: the monitor's footprint, not a log reader falling behind.
    const [port, statusPort] = [await freePort(), await freePort()];
    const config = join(tmp, `mem-${nodes}.yaml`);
    writeFileSync(config, `max_nodes: ${nodes * 2}\ndefaults: { interval: 1m }\n`);
    const child = spawn(
      "taskset",
      [
        "-c",
        String(RECEIVER_CPU),
        process.execPath,
        HB,
        "monitor",
        "--config",
        config,
        "--listen",
        `127.0.0.1:${port}`,
        "--status",
        `127.0.0.1:${statusPort}`,
      ],
      { stdio: ["ignore", "ignore", "inherit"] },
    );
    const status = async (): Promise<MonitorStatus> =>
      (await (await fetch(`http://127.0.0.1:${statusPort}/status?nodes=0`)).json()) as MonitorStatus;
    await sleep(1500);
    const base = rssBytes(child.pid!);
    const rate = 100_000;
    const load = udpLoad({ port, nodes, rate, seconds: (2 * nodes) / rate + 0.5 }); // every node twice
    await load.line((l) => l.includes('"sent"'), 120_000);
    await sleep(3000);
    const tracked = (await status()).counts.up ?? 0;
    const rss = rssBytes(child.pid!);
    out[nodes] = round((rss - base) / tracked);
    log(
      `memory ${nodes}: ${tracked} tracked, RSS ${round(base / 2 ** 20, 1)} -> ${round(rss / 2 ** 20, 1)} MiB, ${out[nodes]} bytes/node`,
    );
    await load.stop();
    child.kill("SIGTERM");
    await new Promise((resolve) => child.once("exit", resolve));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// 5. The HTTP design, CPU per heartbeat side by side

async function httpRound(mode: "http" | "express", rate: number, seconds: number) {
  const server = start(RECEIVER_CPU, [here("http-server.ts"), mode], TSX);
  const { port } = JSON.parse(await server.line((l) => l.includes('"port"'))) as { port: number };
  const count = (): Promise<number> => ask(server, "count");
  const load = start(
    LOAD_CPU,
    [
      here("http-gen.ts"),
      JSON.stringify({ port, nodes: Math.max(10_000, rate), rate, seconds: seconds + 3 }),
    ],
    TSX,
  );
  await load.line((l) => l.includes("ready"));
  await sleep(2000);
  const w = await window(server.child.pid!, count, seconds);
  await load.line((l) => l.includes('"done"'), 60_000);
  await server.stop();
  return w;
}

async function hbAtRate(rate: number, seconds: number) {
  const monitor = await startMonitor(`max_nodes: ${Math.max(20_000, 2 * rate)}\n`);
  const { gen: load, window: w } = await monitorWindow(
    monitor,
    { nodes: Math.max(10_000, rate), rate, seconds: seconds + 4 },
    3000,
    seconds,
  );
  await load.stop();
  await monitor.proc.stop();
  return w;
}

async function baseline() {
  const seconds = QUICK ? 4 : 20;
  const out: Record<string, unknown> = {};
  // The fleet loads: 10 000 and 100 000 nodes at 1 Hz offered. An HTTP server that cannot keep up
  // handles fewer; CPU per heartbeat is its CPU time over the heartbeats it did handle.
  for (const rate of [10_000, 100_000]) {
    const r: Record<string, number[]> = {
      hbUs: [],
      bareUs: [],
      httpUs: [],
      expressUs: [],
      httpRatio: [],
      expressRatio: [],
      bareHttpRatio: [],
      bareExpressRatio: [],
      httpRate: [],
      expressRate: [],
    };
    for (let run = 0; run < RUNS; run++) {
      const hb = await hbAtRate(rate, seconds);
      const bare = await bareFleet(rate, seconds);
      const http = await httpRound("http", rate, seconds);
      const express = await httpRound("express", rate, seconds);
      const us = (w: { cpu: number; rate: number }): number => (w.cpu / w.rate) * 1e6;
      r.hbUs!.push(us(hb));
      r.bareUs!.push(us(bare));
      r.bareHttpRatio!.push(us(http) / us(bare));
      r.bareExpressRatio!.push(us(express) / us(bare));
      r.httpUs!.push(us(http));
      r.expressUs!.push(us(express));
      r.httpRatio!.push(us(http) / us(hb));
      r.expressRatio!.push(us(express) / us(hb));
      r.httpRate!.push(http.rate);
      r.expressRate!.push(express.rate);
      log(
        `baseline run ${run + 1} at ${rate}/s offered: CPU per heartbeat hb ${round(us(hb), 2)} µs (${round(hb.rate)}/s), ` +
          `bare node:dgram ${round(us(bare), 2)} µs, ` +
          `node:http ${round(us(http), 2)} µs (${round(http.rate)}/s), express ${round(us(express), 2)} µs (${round(express.rate)}/s)`,
      );
    }
    out[rate] = Object.fromEntries(Object.entries(r).map(([k, v]) => [k, spread(v)]));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Idle: no nodes, no wake-ups

async function idle() {
  const monitor = await startMonitor(`nodes: {}\n`);
  // V8 does some housekeeping in the first seconds after start (GC, memory reduction); after that
  // an idle monitor has nothing scheduled at all.
  const settle = QUICK ? 3 : 30;
  await sleep(settle * 1000);
  const w0 = wakeups(monitor.proc.child.pid!);
  const seconds = QUICK ? 3 : 20;
  await sleep(seconds * 1000);
  const w1 = wakeups(monitor.proc.child.pid!);
  await monitor.proc.stop();
  return { settleSeconds: settle, seconds, contextSwitches: w1 - w0 };
}

// ---------------------------------------------------------------------------------------------

const machine = {
  cpu: cpus()[0]?.model ?? "unknown",
  cores: cpus().length,
  kernel: release(),
  node: process.version,
  rmemMax: Number(execFileSync("cat", ["/proc/sys/net/core/rmem_max"]).toString().trim()),
};
const results: Record<string, unknown> = {
  date: new Date().toISOString(),
  command: `npm run bench${QUICK ? " -- --quick" : ""}`,
  runs: RUNS,
  machine,
};
log(
  `hb bench on ${machine.cpu} (${machine.cores} cores), Linux ${machine.kernel}, Node ${machine.node}; ${RUNS} run(s) each`,
);
const resultsDir = fileURLToPath(new URL("./results/", import.meta.url));
mkdirSync(resultsDir, { recursive: true });
const resultsFile = join(resultsDir, QUICK ? "quick.json" : "latest.json");
// With --only, the sections measured replace theirs in the existing results; the others stay.
if (flags.only !== undefined && existsSync(resultsFile)) {
  const previous = JSON.parse(readFileSync(resultsFile, "utf8")) as Record<string, unknown>;
  for (const [key, value] of Object.entries(previous)) if (!(key in results)) results[key] = value;
}
// Written after every section, so that a failure late in a long run keeps what was measured.
const save = (): void => writeFileSync(resultsFile, JSON.stringify(results, null, 2) + "\n");
const sections: [string, string, () => Promise<unknown>][] = [
  ["idle", "idle", idle],
  ["ingest", "ingest", ingest],
  ["fleet", "fleet", fleet],
  ["memory", "memoryBytesPerNode", memory],
  ["baseline", "baseline", baseline],
];
for (const [name, key, measure] of sections) {
  if (!only.has(name)) continue;
  results[key] = await measure();
  results[`${key}MeasuredAt`] = new Date().toISOString();
  save();
}
process.stdout.write(JSON.stringify(results, null, 2) + "\n");
