// /status and /metrics over a large fleet (100 000 nodes), served while the event loop keeps
// turning: every node is in both documents, in order, and they are written a piece at a time,
// so that the longest stretch in which the loop could not turn is a small part of the whole
// answer (one block would be nearly all of it). A ratio of two times measured together holds on
// a busy machine; how long the longest block lasts, at a million nodes, is measured by
// `npm run bench` (its status-block section).
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { StatusServer } from "../../src/monitor/http.js";
import { Metrics } from "../../src/monitor/metrics.js";
import { Harness } from "../support/monitor-harness.js";

const NODES = 100_000;
/** The longest block, as a share of the whole answer's time: at least this many pieces. */
const MIN_PIECES = 4;
let h: Harness;
let server: StatusServer;
let base = "";

beforeAll(async () => {
  h = await Harness.start(`max_nodes: ${NODES}\ndefaults: { interval: 1s }\n`);
  for (let i = 0; i < NODES; i++) h.beat(`n${i}`);
  h.clock.advance(7000); // some late, most up
  server = new StatusServer(h.monitor, new Metrics(h.monitor));
  base = `http://${await server.listen({ host: "127.0.0.1", port: 0 })}`;
}, 60_000);
const dir = mkdtempSync(join(tmpdir(), "hb-scale-"));
afterAll(async () => {
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});

/**
 * Runs `work` while a 1 ms timer chain measures the longest gap between its turns; that gap and
 * how long `work` took in all.
 */
async function longestBlock(work: () => Promise<void>): Promise<{ longestMs: number; totalMs: number }> {
  let longestMs = 0;
  const t0 = performance.now();
  let last = t0;
  let running = true;
  const tick = (): void => {
    const now = performance.now();
    longestMs = Math.max(longestMs, now - last);
    last = now;
    if (running) setTimeout(tick, 1);
  };
  setTimeout(tick, 1);
  await work();
  running = false;
  return { longestMs, totalMs: performance.now() - t0 };
}

/**
 * A client in another process (one in this process would block the loop it measures, and
 * starting a process from a large one takes a while): `go()` makes it download `urls` at once
 * into files in `dir`, and resolves when every body is complete.
 */
async function client(urls: string[], dir: string): Promise<{ go: () => Promise<string[]> }> {
  const files = urls.map((_, i) => join(dir, `body-${i}`));
  const script = `
    const { get } = require("node:http");
    const { createWriteStream } = require("node:fs");
    const [urls, files] = JSON.parse(process.argv[1]);
    process.stdout.write("ready\\n");
    process.stdin.once("data", () => {
      let left = urls.length;
      urls.forEach((url, i) =>
        get(url, (res) => res.pipe(createWriteStream(files[i])).on("close", () => --left === 0 && process.exit(0)))
          .on("error", (e) => { console.error(e.message); process.exit(1); }));
    });`;
  const child = spawn(process.execPath, ["-e", script, JSON.stringify([urls, files])], {
    stdio: ["pipe", "pipe", "inherit"],
  });
  const exited = new Promise<string[]>((resolve, reject) =>
    child.on("exit", (code) => (code === 0 ? resolve(files) : reject(new Error(`client exited ${code}`)))),
  );
  await new Promise((resolve) => child.stdout.once("data", resolve));
  return {
    go: () => {
      child.stdin.write("go\n");
      return exited;
    },
  };
}

function occurrences(haystack: Buffer, needle: string): number {
  let count = 0;
  for (let at = haystack.indexOf(needle); at >= 0; at = haystack.indexOf(needle, at + needle.length)) count++;
  return count;
}

describe("status at 100 000 nodes", () => {
  it("serves the full /status and /metrics, every node in order, a piece at a time between turns of the event loop", async () => {
    // The first request also sorts the fleet and runs cold code; the second finds the order kept.
    for (const round of ["first", "second"]) {
      let files: string[] = [];
      const { go } = await client([`${base}/status`, `${base}/metrics`], dir);
      const { longestMs, totalMs } = await longestBlock(async () => {
        files = await go();
      });
      // Checked as bytes: a parsed million-node document would crowd this process's heap and
      // make the next measurement one of the garbage collector.
      const [status, metrics] = files.map((file) => readFileSync(file)) as [Buffer, Buffer];
      console.log(
        `${round} request: longest event-loop block at ${NODES} nodes ${longestMs.toFixed(1)} ms of ${totalMs.toFixed(1)} ms serving /status (${status.length} bytes) and /metrics (${metrics.length} bytes)`,
      );
      expect(longestMs).toBeLessThan(totalMs / MIN_PIECES);
      const list = status.indexOf('"nodes":[');
      const head = JSON.parse(status.subarray(0, list).toString() + '"nodes":[]}') as {
        counts: Record<string, number>;
      };
      expect(head.counts.late).toBe(NODES);
      expect(occurrences(status, '{"node":"')).toBe(NODES);
      expect(status.subarray(list, list + 1000).toString()).toMatch(
        /^"nodes":\[\{"node":"n0",.*\{"node":"n1",/,
      );
      expect(status.subarray(-400).toString()).toContain(`{"node":"n${NODES - 1}",`);
      expect(status.subarray(-400).toString()).toMatch(/\}\]\}\n$/);
      expect(occurrences(metrics, "\nhb_node_up{")).toBe(NODES);
      expect(metrics.toString("utf8", 0, 20_000)).toContain(`hb_nodes{state="late"} ${NODES}`);
    }
  }, 60_000);
});
