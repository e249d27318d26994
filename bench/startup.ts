// What a command costs before it does anything, on every node of a fleet: wall time and peak RSS
// of short runs (`hb send --help`, `hb status --help`, a real `hb send`), and the RSS and CPU of an
// idle `hb node` beating once a second. Each against bare Node.js in the same run: `node -e 0` for
// the short runs and `node -e "setInterval(() => {}, 1000)"` for the idle sender.
import { spawnSync } from "node:child_process";
import { readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { HB, LOAD_CPU, QUICK, freePort, log, round, tmp } from "./harness.js";
import { rssBytes, sleep, spread, start } from "./lib.js";

/** Loaded before the program: reports the process's peak RSS at exit (the same for every run). */
const PEAK_HOOK = join(tmp, "peak-rss.mjs");
writeFileSync(
  PEAK_HOOK,
  `import { writeFileSync } from "node:fs";
process.on("exit", () => writeFileSync(process.env.HB_BENCH_PEAK, String(process.resourceUsage().maxRSS)));
`,
);

/** Wall time (ms) and peak RSS (bytes) of one run of node with `args`, pinned to the load core. */
function once(args: string[]): { ms: number; peak: number } {
  const peakFile = join(tmp, "peak");
  const t0 = performance.now();
  const r = spawnSync("taskset", ["-c", String(LOAD_CPU), process.execPath, "--import", PEAK_HOOK, ...args], {
    env: { ...process.env, HB_BENCH_PEAK: peakFile },
    stdio: "ignore",
  });
  const ms = performance.now() - t0;
  if (r.status !== 0 && r.status !== 69) throw new Error(`startup: ${args.join(" ")} exited ${r.status}`);
  return { ms, peak: Number(readFileSync(peakFile, "utf8")) * 1024 };
}

/** CPU nanoseconds a process's live threads have used, from the scheduler (finer than ticks). */
function cpuNs(pid: number): number {
  let total = 0;
  for (const task of readdirSync(`/proc/${pid}/task`)) {
    try {
      total += Number(readFileSync(`/proc/${pid}/task/${task}/schedstat`, "utf8").split(" ")[0]);
    } catch {
      // The thread ended between the listing and the read.
    }
  }
  return total;
}

async function idleProcess(args: string[], seconds: number): Promise<{ rss: number; cpuSPerHour: number }> {
  const proc = start(LOAD_CPU, args);
  await sleep(5000); // past start-up work (GC, JIT)
  const pid = proc.child.pid!;
  const c0 = cpuNs(pid);
  const t0 = performance.now();
  await sleep(seconds * 1000);
  const cpu = (cpuNs(pid) - c0) / 1e9;
  const elapsed = (performance.now() - t0) / 1000;
  const rss = rssBytes(pid);
  await proc.stop();
  return { rss, cpuSPerHour: (cpu / elapsed) * 3600 };
}

export async function startup() {
  const port = await freePort(); // nothing listens there: the datagram is simply sent
  const short: Record<string, string[]> = {
    "node -e 0": ["-e", "0"],
    "hb --version": [HB, "--version"],
    "hb send --help": [HB, "send", "--help"],
    "hb node --help": [HB, "node", "--help"],
    "hb status --help": [HB, "status", "--help"],
    "hb send (one datagram)": [HB, "send", "--id", "bench-1", "--monitor", `127.0.0.1:${port}`],
  };
  const repeats = QUICK ? 5 : 21;
  const out: Record<string, unknown> = { repeats };
  for (const args of Object.values(short)) once(args); // warm the file cache
  const samples = Object.fromEntries(
    Object.keys(short).map((k) => [k, { ms: [] as number[], peak: [] as number[] }]),
  );
  // Interleaved, so that a slow moment of the machine falls on every command alike.
  for (let i = 0; i < repeats; i++) {
    for (const [name, args] of Object.entries(short)) {
      const r = once(args);
      samples[name]!.ms.push(r.ms);
      samples[name]!.peak.push(r.peak / 2 ** 20);
    }
  }
  const bare = samples["node -e 0"]!;
  for (const [name, s] of Object.entries(samples)) {
    const ms = spread(s.ms);
    const peak = spread(s.peak);
    out[name] = {
      ms,
      peakMiB: peak,
      msVsBare: round(ms.median / spread(bare.ms).median, 2),
      peakVsBare: round(peak.median / spread(bare.peak).median, 2),
    };
    log(`startup ${name}: ${round(ms.median, 1)} ms, peak RSS ${round(peak.median, 1)} MiB`);
  }
  const seconds = QUICK ? 10 : 60;
  const idleBare = await idleProcess(["-e", "setInterval(() => {}, 1000)"], seconds);
  const idleNode = await idleProcess(
    [HB, "node", "--id", "bench-idle", "--monitor", `127.0.0.1:${port}`, "--interval", "1s"],
    seconds,
  );
  out.idle = {
    seconds,
    bare: { rssMiB: round(idleBare.rss / 2 ** 20, 1), cpuSPerHour: round(idleBare.cpuSPerHour, 2) },
    hbNode: { rssMiB: round(idleNode.rss / 2 ** 20, 1), cpuSPerHour: round(idleNode.cpuSPerHour, 2) },
    rssVsBare: round(idleNode.rss / idleBare.rss, 2),
  };
  log(`startup idle: ${JSON.stringify(out.idle)}`);
  return out;
}
