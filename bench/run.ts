// `npm run bench`: the hb monitor (built code, a real process) against a bare node:dgram
// receiver and an HTTP heartbeat endpoint, under simulated fleets from separate load-generator
// processes. Receivers run pinned to core 0, generators to core 1. Prints a table and writes
// bench/results/latest.json. `--quick` runs every measurement briefly (a smoke test).
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { cpus, release } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { baseline } from "./baseline.js";
import { captureCost } from "./capture.js";
import { fleet } from "./fleet.js";
import { hmacVerify } from "./hmac.js";
import { QUICK, RUNS, flags, log, only } from "./harness.js";
import { idle } from "./idle.js";
import { ingest, type Ingest } from "./ingest.js";
import { memory } from "./memory.js";
import { notifyLateness } from "./notify.js";
import { reload } from "./reload.js";
import { startup } from "./startup.js";
import { statusBlock } from "./status-block.js";
import { statusLoad } from "./status-load.js";

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
  ["startup", "startup", startup],
  ["idle", "idle", idle],
  ["ingest", "ingest", ingest],
  ["hmac", "hmacNsPerVerify", hmacVerify],
  ["fleet", "fleet", fleet],
  ["memory", "memoryBytesPerNode", memory],
  ["baseline", "baseline", baseline],
  ["status", "statusUnderLoad", statusLoad],
  ["status-block", "statusBlockAtScale", statusBlock],
  ["reload", "reloadUnderLoad", reload],
  ["notify", "notifyLateness", notifyLateness],
  ["capture", "captureCost", captureCost],
];
let ceiling: number | undefined;
for (const [name, key, measure] of sections) {
  if (!only.has(name)) continue;
  // The fleet runs at half the bare receiver's ceiling: measured by ingest if it ran just now.
  results[key] = name === "fleet" ? await fleet(ceiling) : await measure();
  if (name === "ingest") ceiling = (results[key] as Ingest).bare.median;
  results[`${key}MeasuredAt`] = new Date().toISOString();
  save();
}
process.stdout.write(JSON.stringify(results, null, 2) + "\n");
