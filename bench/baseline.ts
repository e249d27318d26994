// The HTTP design, CPU per heartbeat side by side: hb, the bare receiver, node:http keep-alive
// and Express, at fleet rates.
import {
  QUICK,
  RUNS,
  here,
  TSX,
  RECEIVER_CPU,
  LOAD_CPU,
  log,
  round,
  startMonitor,
  window,
  monitorWindow,
  bareUnder,
  udpLoad,
} from "./harness.js";
import { ask, sleep, spread, start } from "./lib.js";

/** The bare receiver under `nodes` nodes at 1 Hz (the JavaScript generator, as for the HTTP servers). */
const bareFleet = (nodes: number, seconds: number) =>
  bareUnder((port) => udpLoad({ port, nodes, rate: nodes, seconds: seconds + 3 }), seconds);

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

export async function baseline() {
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
