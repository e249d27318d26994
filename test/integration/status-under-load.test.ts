// Operators asking for the whole picture while the fleet beats: 20 000 nodes at 10 000
// datagrams/s, and two clients fetching the full /status and /metrics back to back. Answering
// must wait for the heartbeats: no datagram dropped by the kernel, no node judged late. The rate
// leaves the monitor room on a busy machine, and the generator never catches up in a flood (that
// could fill any socket buffer); 100 000 nodes at 50 000/s are in `npm run bench` (status).
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { TempDir, sleep, startMonitor, type HbProcess } from "../support/hb-process.js";

const GENERATOR = fileURLToPath(new URL("../../bench/udp-gen.ts", import.meta.url));
const NODES = 20_000;
const dir = new TempDir();
const cleanup: (() => void)[] = [];
let monitor: HbProcess | undefined;
afterAll(async () => {
  cleanup.forEach((f) => f());
  await monitor?.stop();
  dir.remove();
});

describe("status requests while the fleet beats", () => {
  it("drop no heartbeat and judge no node late", async () => {
    const started = await startMonitor(
      dir.file("hb.yaml", `max_nodes: 100000\ndefaults: { interval: 2s }\n`),
    );
    monitor = started.monitor;
    const generator = spawn(
      process.execPath,
      [
        "--import",
        "tsx",
        GENERATOR,
        JSON.stringify({ port: started.port, nodes: NODES, rate: NODES / 2, seconds: 120, maxBurst: 200 }),
      ],
      { stdio: "ignore" },
    );
    cleanup.push(() => generator.kill("SIGKILL"));
    const status = async (): Promise<{ kernelDrops: number; counts: { up: number } }> =>
      (await (await fetch(`${started.statusUrl}?nodes=0`)).json()) as {
        kernelDrops: number;
        counts: { up: number };
      };
    // Every node heard (twice, on a quiet machine: a generator that waits for the CPU is slower).
    await sleep(4500);
    for (let waited = 0; (await status()).counts.up < NODES && waited < 20_000; waited += 200)
      await sleep(200);
    const before = await status();
    const until = Date.now() + 4000;
    let answered = 0;
    const client = async (): Promise<void> => {
      for (let i = 0; Date.now() < until; i++) {
        const res = await fetch(
          i % 2 === 0 ? started.statusUrl : started.statusUrl.replace("/status", "/metrics"),
        );
        await res.arrayBuffer();
        answered++;
      }
    };
    await Promise.all([client(), client()]);
    const after = await status();
    console.info(
      `${answered} full answers; kernel drops ${before.kernelDrops} -> ${after.kernelDrops}; up ${before.counts.up} -> ${after.counts.up}`,
    );
    expect(before.counts.up).toBe(NODES);
    expect(answered).toBeGreaterThan(0);
    expect(after.kernelDrops).toBe(before.kernelDrops);
    expect(monitor.of("node.late")).toEqual([]);
    expect(monitor.of("monitor.overloaded")).toEqual([]);
  });
});
