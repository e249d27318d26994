// Memory per tracked node: RSS beyond the idle process, with the monitor's stdout discarded.
import { spawn, spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  QUICK,
  HB,
  RECEIVER_CPU,
  tmp,
  log,
  round,
  udpLoad,
  freePort,
  type MonitorStatus,
} from "./harness.js";
import { rssBytes, sleep } from "./lib.js";

export async function memory() {
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
  // The detector alone, in process and exact (no sender to keep up): the fixed thresholds and
  // φ-accrual (its default window of 1 000 intervals).
  for (const [mode, nodes] of [
    ["fixed", QUICK ? 100_000 : 1_000_000],
    ["phi", 100_000],
  ] as const) {
    const bytes = detectorBytesPerNode(nodes, mode);
    out[`detector-${mode}-${nodes}`] = bytes;
    log(`memory: the detector alone (${mode}, ${nodes} nodes, in process): ${bytes} bytes/node`);
  }
  return out;
}

function detectorBytesPerNode(nodes: number, mode: "fixed" | "phi"): number {
  const script = fileURLToPath(new URL("./detector-memory.ts", import.meta.url));
  const run = spawnSync(process.execPath, ["--expose-gc", "--import", "tsx", script, String(nodes), mode], {
    encoding: "utf8",
  });
  if (run.status !== 0) throw new Error(`detector-memory: ${run.stderr}`);
  return (JSON.parse(run.stdout.trim()) as { bytesPerNode: number }).bytesPerNode;
}
