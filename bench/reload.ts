// Reloading a large config while the fleet beats: 100 000 listed nodes beating every 2 s
// (50 000 datagrams/s), and SIGHUPs that change every node's thresholds, then add 100 000
// more nodes and remove them again. Seen from outside, as an operator would: the slowest reply to
// back-to-back `GET /status/reload` (a few hundred bytes) while a reload is read, compared,
// staged and swapped in, against the slowest over as long with no reload; and what must not
// happen: kernel drops and false `node.late` / `node.down`.
import { writeFileSync } from "node:fs";
import { QUICK, RUNS, log, round, startMonitor, monitorStatus, udpLoad, type Monitor } from "./harness.js";
import { cpuSeconds, sleep, spread } from "./lib.js";

const NODES = 100_000;

function fleet(timeout: string, extra = 0): string {
  const lines = [`max_nodes: ${NODES * 3}`, "startup_grace: 10m", "defaults: { interval: 2s }", "nodes:"];
  for (let i = 0; i < NODES; i++) lines.push(`  n${i}: { timeout: ${timeout} }`);
  for (let i = 0; i < extra; i++) lines.push(`  extra${i}: {}`);
  return lines.join("\n") + "\n";
}

/**
 * Asks for /status/reload every PROBE_MS until `done()`; the slowest reply, in ms. Paced, so
 * that the asking costs the monitor little: a request that arrives while its loop is blocked
 * waits for it, and the slowest reply shows the longest block to within PROBE_MS.
 */
const PROBE_MS = 5;

async function slowestReply(
  monitor: Monitor,
  done: () => boolean,
): Promise<{ maxMs: number; replies: number }> {
  const url = monitor.statusUrl.replace("/status?nodes=0", "/status/reload");
  let maxMs = 0;
  let replies = 0;
  while (!done()) {
    const t0 = performance.now();
    await (await fetch(url)).arrayBuffer();
    const ms = performance.now() - t0;
    maxMs = Math.max(maxMs, ms);
    replies++;
    await sleep(Math.max(0, PROBE_MS - ms));
  }
  return { maxMs, replies };
}

async function reloadOnce(monitor: Monitor, configFile: string, yaml: string) {
  const drops0 = (await monitorStatus(monitor)).kernelDrops ?? 0;
  writeFileSync(configFile, yaml);
  const before = monitor.proc.lines.filter((l) => l.includes('"config.reloaded"')).length;
  let reloaded = false;
  const t0 = performance.now();
  monitor.proc.child.kill("SIGHUP");
  const probe = slowestReply(monitor, () => reloaded);
  await monitor.proc.line(
    () => monitor.proc.lines.filter((l) => l.includes('"config.reloaded"')).length > before,
    60_000,
  );
  const seconds = (performance.now() - t0) / 1000;
  await sleep(200);
  reloaded = true;
  const result = { ...(await probe), seconds };
  const drops = ((await monitorStatus(monitor)).kernelDrops ?? 0) - drops0;
  log(`  reload: ${JSON.stringify(result)} drops ${drops}`);
  return result;
}

async function reloadRun() {
  const monitor = await startMonitor(fleet("20s"));
  const configFile = monitor.proc.child.spawnargs[monitor.proc.child.spawnargs.indexOf("--config") + 1]!;
  const load = udpLoad({ port: monitor.port, nodes: NODES, rate: NODES / 2, seconds: 600 });
  await load.line((l) => l.includes("ready"));
  await sleep(5000); // every node heard twice
  const before = await monitorStatus(monitor);
  const cpu0 = cpuSeconds(monitor.proc.child.pid!);
  const idleT0 = performance.now();
  let idleDone = false;
  const idle = slowestReply(monitor, () => idleDone);
  await sleep(QUICK ? 2000 : 4000);
  idleDone = true;
  const quiet = await idle;
  log(
    `  idle: cpu ${((cpuSeconds(monitor.proc.child.pid!) - cpu0) / ((performance.now() - idleT0) / 1000)).toFixed(2)} drops ${((await monitorStatus(monitor)).kernelDrops ?? 0) - (before.kernelDrops ?? 0)}`,
  );
  const changed = await reloadOnce(monitor, configFile, fleet("30s"));
  const added = await reloadOnce(monitor, configFile, fleet("30s", NODES));
  const removed = await reloadOnce(monitor, configFile, fleet("30s"));
  await sleep(1000);
  const after = await monitorStatus(monitor);
  const falseLate = monitor.proc.lines.filter((l) => l.includes('"node.late"')).length;
  const falseDown = monitor.proc.lines.filter((l) => l.includes('"node.down"')).length;
  await load.stop();
  await monitor.proc.stop();
  return {
    idleMaxMs: quiet.maxMs,
    changedMaxMs: changed.maxMs,
    addedMaxMs: added.maxMs,
    removedMaxMs: removed.maxMs,
    changedSeconds: changed.seconds,
    addedSeconds: added.seconds,
    kernelDrops: (after.kernelDrops ?? 0) - (before.kernelDrops ?? 0),
    falseLate,
    falseDown,
  };
}

export async function reload() {
  const runs: Awaited<ReturnType<typeof reloadRun>>[] = [];
  for (let run = 0; run < RUNS; run++) {
    const r = await reloadRun();
    runs.push(r);
    log(
      `reload run ${run + 1}: slowest /status/reload reply ${round(r.idleMaxMs, 1)} ms with no reload; during a reload ` +
        `that changes ${NODES} nodes ${round(r.changedMaxMs, 1)} ms (${round(r.changedSeconds, 1)} s in all), ` +
        `adds ${NODES} ${round(r.addedMaxMs, 1)} ms (${round(r.addedSeconds, 1)} s), removes them ${round(r.removedMaxMs, 1)} ms; ` +
        `kernel drops ${r.kernelDrops}, false late ${r.falseLate}, false down ${r.falseDown}`,
    );
  }
  const of = (f: keyof (typeof runs)[number]) => spread(runs.map((r) => round(r[f], 1)));
  return {
    nodes: NODES,
    ratePerSecond: NODES / 2,
    idleMaxMs: of("idleMaxMs"),
    changedMaxMs: of("changedMaxMs"),
    addedMaxMs: of("addedMaxMs"),
    removedMaxMs: of("removedMaxMs"),
    changedSeconds: of("changedSeconds"),
    addedSeconds: of("addedSeconds"),
    kernelDrops: of("kernelDrops"),
    falseLate: of("falseLate"),
    falseDown: of("falseDown"),
  };
}
