// Run by status-block.ts, pinned to the receiver's core: an in-process monitor (fake clock and
// socket) holding a million nodes, and its status server on loopback. While a client on the other
// core downloads the full /status and /metrics, a 1 ms timer chain measures the longest stretch in
// which this event loop could not turn (could not have read a datagram). Prints one JSON line.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { StatusServer } from "../src/monitor/http.js";
import { Metrics } from "../src/monitor/metrics.js";
import { Harness } from "../test/support/monitor-harness.js";

const NODES = Number(process.argv[2] ?? 1_000_000);
const LOAD_CPU = Number(process.argv[3] ?? 1);

/** Runs `work` while a 1 ms timer chain measures the longest gap between its turns. */
async function longestBlockMs(work: () => Promise<void>): Promise<number> {
  let longest = 0;
  let last = performance.now();
  let running = true;
  const tick = (): void => {
    const now = performance.now();
    longest = Math.max(longest, now - last);
    last = now;
    if (running) setTimeout(tick, 1);
  };
  setTimeout(tick, 1);
  await work();
  running = false;
  return longest;
}

/** Downloads `urls` at once, from a process on the load core, into files; resolves with their sizes. */
function download(urls: string[], dir: string): Promise<number[]> {
  const files = urls.map((_, i) => join(dir, `body-${i}`));
  const script = `
    const { get } = require("node:http");
    const { createWriteStream } = require("node:fs");
    const [urls, files] = JSON.parse(process.argv[1]);
    let left = urls.length;
    urls.forEach((url, i) =>
      get(url, (res) => res.pipe(createWriteStream(files[i])).on("close", () => --left === 0 && process.exit(0)))
        .on("error", (e) => { console.error(e.message); process.exit(1); }));`;
  const child = spawn(
    "taskset",
    ["-c", String(LOAD_CPU), process.execPath, "-e", script, JSON.stringify([urls, files])],
    { stdio: ["ignore", "inherit", "inherit"] },
  );
  return new Promise((resolve, reject) =>
    child.on("exit", (code) =>
      code === 0 ? resolve(files.map((f) => statSync(f).size)) : reject(new Error(`client exited ${code}`)),
    ),
  );
}

const h = await Harness.start(`max_nodes: ${NODES}\ndefaults: { interval: 1s }\n`);
for (let i = 0; i < NODES; i++) h.beat(`n${i}`);
h.clock.advance(7000);
const server = new StatusServer(h.monitor, new Metrics(h.monitor));
const base = `http://${await server.listen({ host: "127.0.0.1", port: 0 })}`;
const dir = mkdtempSync(join(tmpdir(), "hb-bench-status-"));
const idleMs = await longestBlockMs(() => new Promise((resolve) => setTimeout(resolve, 2000)));
// The first request also sorts the fleet and runs cold code; the second finds the order kept.
const requests: { blockMs: number; statusBytes: number; metricsBytes: number }[] = [];
for (let round = 0; round < 2; round++) {
  let sizes: number[] = [];
  const blockMs = await longestBlockMs(async () => {
    sizes = await download([`${base}/status`, `${base}/metrics`], dir);
  });
  requests.push({ blockMs, statusBytes: sizes[0]!, metricsBytes: sizes[1]! });
}
await server.close();
rmSync(dir, { recursive: true, force: true });
process.stdout.write(
  JSON.stringify({ nodes: NODES, idleMs, first: requests[0], second: requests[1] }) + "\n",
);
process.exit(0);
