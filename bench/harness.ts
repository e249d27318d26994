// What every benchmark section shares: the command-line flags, a scratch directory with a key,
// and the processes under test (the monitor, bundled in dist/hb.mjs, a bare node:dgram receiver, UDP load
// generators), pinned to their cores, with the windows in which their rate and CPU are measured.
import { createSocket } from "node:dgram";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import { ask, cpuSeconds, percentile, sleep, start, type Started } from "./lib.js";

export const { values: flags } = parseArgs({
  options: { quick: { type: "boolean" }, only: { type: "string" }, runs: { type: "string" } },
});
export const QUICK = flags.quick === true;
export const RUNS = Number(flags.runs ?? (QUICK ? 1 : 3));
export const only = new Set(
  (
    flags.only ?? "startup,idle,ingest,hmac,fleet,memory,baseline,status,status-block,reload,notify,capture"
  ).split(","),
);
/** The hb under test; HB_BENCH_HB points at another build (e.g. an older release) to compare. */
export const HB = process.env.HB_BENCH_HB ?? fileURLToPath(new URL("../dist/hb.mjs", import.meta.url));
export const here = (f: string): string => fileURLToPath(new URL(f, import.meta.url));
export const TSX = ["--import", "tsx"];
export const RECEIVER_CPU = 0;
export const LOAD_CPU = 1;
export const tmp = mkdtempSync(join(tmpdir(), "hb-bench-"));
export const keyFile = join(tmp, "k1");
writeFileSync(keyFile, "bench-key-0123456789abcdef0123456789\n", { mode: 0o600 });

export const log = (text: string): void => void process.stderr.write(`${text}\n`);
export const round = (x: number, digits = 0): number => Number(x.toFixed(digits));

// Processes under test

export interface Monitor {
  proc: Started;
  port: number;
  statusUrl: string;
}

/** Starts the monitor from dist/; on `port` (a load may be sending to it already), else any. */
export async function startMonitor(configYaml: string, port = 0): Promise<Monitor> {
  const config = join(tmp, `hb-${Math.random()}.yaml`);
  writeFileSync(config, configYaml);
  const proc = start(
    RECEIVER_CPU,
    [HB, "monitor", "--config", config, "--listen", `127.0.0.1:${port}`, "--status", "127.0.0.1:0"],
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

export interface MonitorStatus {
  counts: Record<string, number>;
  datagrams: { received: number; accepted: number; rejected: Record<string, number> };
  kernelDrops: number | null;
}
export const monitorStatus = async (m: Monitor): Promise<MonitorStatus> =>
  (await (await fetch(m.statusUrl)).json()) as MonitorStatus;

export async function startBare(): Promise<{ proc: Started; port: number; count: () => Promise<number> }> {
  const proc = start(RECEIVER_CPU, [here("bare-receiver.ts")], TSX);
  const { port } = JSON.parse(await proc.line((l) => l.includes('"port"'))) as { port: number };
  return { proc, port, count: () => ask(proc, "count") };
}

/** A bare receiver under the load `startLoad(port)` starts: its rate and CPU over `seconds`. */
export async function bareUnder(startLoad: (port: number) => Started, seconds: number, warmupMs = 2000) {
  const bare = await startBare();
  const load = startLoad(bare.port);
  await load.line((l) => l.includes("ready"));
  await sleep(warmupMs);
  const w = await window(bare.proc.child.pid!, bare.count, seconds);
  await load.stop();
  await bare.proc.stop();
  return w;
}

export function udpLoad(opts: Record<string, unknown>): Started {
  return start(LOAD_CPU, [here("udp-gen.ts"), JSON.stringify(opts)], TSX);
}

/** Rate and CPU share of a receiver over a window, from a counter it exposes. */
export async function window(pid: number, count: () => Promise<number>, seconds: number) {
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
export async function monitorWindow(
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

/** A free loopback port (bound and released; fine for a benchmark on a quiet machine). */
export async function freePort(): Promise<number> {
  const socket = createSocket("udp4");
  await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", resolve));
  const port = socket.address().port;
  await new Promise<void>((resolve) => socket.close(resolve));
  return port;
}

/**
 * `nodes` nodes beat once a second at `monitor`; after `stopAfterS`, `stop` of them stop. Waits
 * out their timeout, then reads the monitor's `node.down` lines: of the stopped nodes, how long
 * after its exact deadline each was judged (sorted), and every down. The load keeps running.
 */
export async function stopSome(
  monitor: Monitor,
  o: { nodes: number; stop: number; stopAfterS: number; timeoutS: number },
): Promise<{
  load: Started;
  stopped: Set<string>;
  downs: { node: string; at: number; time: number }[];
  delays: number[];
}> {
  const load = udpLoad({
    port: monitor.port,
    nodes: o.nodes,
    rate: o.nodes,
    seconds: o.stopAfterS + o.timeoutS + 6,
    stopAfter: o.stopAfterS,
    stopCount: o.stop,
  });
  const stopped = new Set(
    (JSON.parse(await load.line((l) => l.includes('"stopped"'), 30_000)) as { stopped: string[] }).stopped,
  );
  await sleep((o.timeoutS + 2) * 1000);
  const downs = monitor.proc.lines
    .filter((l) => l.includes('"event":"node.down"'))
    .map((l) => JSON.parse(l) as { node: string; at: number; time: number });
  const delays = downs
    .filter((d) => stopped.has(d.node))
    .map((d) => d.time - d.at)
    .sort((a, b) => a - b);
  return { load, stopped, downs, delays };
}

/** stopSome()'s downs summed up: how late after their deadlines, and how many missed or false. */
export function lateness(r: { stopped: Set<string>; downs: unknown[]; delays: number[] }) {
  return {
    p50: percentile(r.delays, 50),
    p99: percentile(r.delays, 99),
    max: r.delays.at(-1) ?? Number.NaN,
    min: r.delays[0] ?? Number.NaN,
    missed: r.stopped.size - r.delays.length,
    falseDown: r.downs.length - r.delays.length,
  };
}
