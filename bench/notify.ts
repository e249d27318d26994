// Notifications must never move a deadline. 1 000 listed nodes beat every second; after a few
// seconds 100 of them stop together and each `node.down` is timed against its exact deadline,
// side by side in one run: with no notify output, with an exec hook that hangs (sleeps 60 s),
// and with a hook that works (reads its batch and exits). The hooks carry node.late and
// node.down; the working hook's runs are counted (batching). A fourth set-up gives the policy
// layer work on every judgement: every node depends on n0, 20 recurring maintenance windows in as
// many time zones, one of them covering n1*, and the working hook.
import { chmodSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { RUNS, lateness, log, round, startMonitor, stopSome, tmp } from "./harness.js";
import { spread } from "./lib.js";

const NODES = 1000;
const STOP = 100;
const STOP_AFTER_S = 6;
const TIMEOUT_S = 3;
const MODES = ["none", "hanging hook", "working hook", "policy"] as const;
const ZONES = ["UTC", "Europe/Paris", "America/New_York", "Asia/Tokyo", "Australia/Sydney"];
type Mode = (typeof MODES)[number];

function hookFile(name: string, body: string): string {
  const path = join(tmp, name);
  writeFileSync(path, `#!/bin/sh\n${body}\n`);
  chmodSync(path, 0o755);
  return path;
}

function config(mode: Mode, runsFile: string): string {
  const parents = mode === "policy" ? ", parents: [n0]" : "";
  const lines = [`defaults: { interval: 1s, timeout: ${TIMEOUT_S}s${parents} }`, "nodes:"];
  for (let i = 0; i < NODES; i++) lines.push(`  n${i}: {}`);
  if (mode === "hanging hook")
    lines.push("notify:", `  - { name: hang, exec: [${hookFile("hang.sh", "sleep 60")}], timeout: 2m }`);
  if (mode === "policy") {
    lines.push("maintenance:", "  windows:");
    for (let i = 0; i < 20; i++) {
      const match = i === 0 ? '"n1*"' : `"label:rack=r${i}"`;
      lines.push(
        `    - { name: w${i}, match: [${match}], schedule: "daily 00:00-24:00", timezone: ${ZONES[i % ZONES.length]} }`,
      );
    }
  }
  if (mode === "working hook" || mode === "policy")
    lines.push(
      "notify:",
      `  - { name: work, exec: [${hookFile("work.sh", `cat > /dev/null; echo run >> "$1"`)}, ${runsFile}] }`,
    );
  return lines.join("\n") + "\n";
}

async function once(mode: Mode, run: number) {
  const runsFile = join(tmp, `runs-${run}-${mode.replace(" ", "-")}`);
  writeFileSync(runsFile, "");
  const monitor = await startMonitor(config(mode, runsFile));
  const { load, stopped, downs, delays } = await stopSome(monitor, {
    nodes: NODES,
    stop: STOP,
    stopAfterS: STOP_AFTER_S,
    timeoutS: TIMEOUT_S,
  });
  const metrics = await (
    await fetch(monitor.statusUrl.replace("/status?nodes=0", "/metrics?nodes=0"))
  ).text();
  const hookRuns = Number(
    /^hb_notify_delivery_seconds_count\{output="work"\} (\d+)$/m.exec(metrics)?.[1] ?? 0,
  );
  await load.stop();
  await monitor.proc.stop();
  return {
    ...lateness({ stopped, downs, delays }),
    hookRuns,
  };
}

export async function notifyLateness() {
  const runs: Record<Mode, Awaited<ReturnType<typeof once>>[]> = {
    none: [],
    "hanging hook": [],
    "working hook": [],
    policy: [],
  };
  for (let run = 0; run < RUNS; run++) {
    // Interleaved, so that a machine that drifts during the run drifts for all of them alike.
    for (const mode of MODES) {
      const r = await once(mode, run);
      runs[mode].push(r);
      log(`notify run ${run + 1}, ${mode}: node.down after its deadline ${JSON.stringify(r)} ms`);
    }
  }
  const summary = (mode: Mode) => {
    const of = (f: keyof Awaited<ReturnType<typeof once>>) => spread(runs[mode].map((r) => round(r[f], 1)));
    return {
      p50: of("p50"),
      p99: of("p99"),
      max: of("max"),
      min: of("min"),
      missed: of("missed"),
      falseDown: of("falseDown"),
      hookRuns: of("hookRuns"),
    };
  };
  return {
    nodes: NODES,
    stopped: STOP,
    timeoutSeconds: TIMEOUT_S,
    none: summary("none"),
    hangingHook: summary("hanging hook"),
    workingHook: summary("working hook"),
    policy: summary("policy"),
  };
}
