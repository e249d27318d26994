// Ingest flat out: the native generator (bench/hbgen.c, UDP GSO) offers about 2 M datagrams/s
// from the other core, 100 000 distinct ids, and each receiver takes what it can. Measured as accepted
// datagrams per second of the receiver's CPU, hb (unsigned and HMAC-SHA-256 signed) against a
// bare node:dgram receiver that only counts, side by side in each run. The bare receiver's
// ceiling also sets the fleet section's load (half of it).
import { cLoad } from "./cgen.js";
import {
  QUICK,
  RUNS,
  keyFile,
  log,
  round,
  startMonitor,
  monitorStatus,
  bareUnder,
  window,
} from "./harness.js";
import { sleep, spread, type Spread } from "./lib.js";

export const INGEST_NODES = 100_000;

async function ingestRound(kind: "bare" | "hb" | "hb-auth", seconds: number) {
  const load = (port: number, signed: boolean) =>
    cLoad({
      port,
      nodes: INGEST_NODES,
      rate: 0,
      seconds: seconds + 3,
      gso: true,
      ...(signed ? { keyFile } : {}),
    });
  if (kind === "bare")
    return { ...(await bareUnder((port) => load(port, false), seconds, 1000)), rejected: 0 };
  const auth = kind === "hb-auth";
  const monitor = await startMonitor(
    // Each node sends every 50 ms or so (100 000 of them at 2 M/s offered), faster where the
    // sender is faster; most of it is dropped by the kernel, so sequences jump. A 10 ms interval
    // lets them jump as far as a node heard that often may: with 50 ms, a fast sender's jumps
    // were refused as unconfirmed.
    `max_nodes: ${INGEST_NODES * 2}\ndefaults: { interval: 10ms, timeout: 1h }\n` +
      (auth ? `auth: required\nkeys: { k1: ${keyFile} }\n` : ""),
  );
  const gen = load(monitor.port, auth);
  await gen.line((l) => l.includes("ready"));
  await sleep(1000);
  const accepted = async (): Promise<number> => (await monitorStatus(monitor)).datagrams.accepted;
  const w = await window(monitor.proc.child.pid!, accepted, seconds);
  const s = await monitorStatus(monitor);
  await gen.stop();
  await monitor.proc.stop();
  return { ...w, rejected: Object.values(s.datagrams.rejected).reduce((a, b) => a + b, 0) };
}

export interface Ingest {
  bare: Spread;
  hb: Spread;
  "hb-auth": Spread;
  hbRatio: Spread;
  authRatio: Spread;
  bareCpu: Spread;
  hbCpu: Spread;
  authCpu: Spread;
}

export async function ingest(): Promise<Ingest> {
  const seconds = QUICK ? 3 : 8;
  const rows: Record<keyof Ingest, number[]> = {
    bare: [],
    hb: [],
    "hb-auth": [],
    hbRatio: [],
    authRatio: [],
    hbCpu: [],
    authCpu: [],
    bareCpu: [],
  };
  for (let run = 0; run < RUNS; run++) {
    const bare = await ingestRound("bare", seconds);
    const hb = await ingestRound("hb", seconds);
    const auth = await ingestRound("hb-auth", seconds);
    if (hb.rejected > 0 || auth.rejected > 0)
      throw new Error(`ingest: the monitor refused datagrams (${hb.rejected}, ${auth.rejected})`);
    if ([bare, hb, auth].some((r) => r.cpu < 0.5))
      throw new Error(
        `ingest: a receiver was not saturated (CPU ${[bare, hb, auth].map((r) => r.cpu).join(", ")})`,
      );
    rows.bare.push(bare.perCore);
    rows.hb.push(hb.perCore);
    rows["hb-auth"].push(auth.perCore);
    rows.hbRatio.push(hb.perCore / bare.perCore);
    rows.authRatio.push(auth.perCore / bare.perCore);
    rows.bareCpu.push(bare.cpu);
    rows.hbCpu.push(hb.cpu);
    rows.authCpu.push(auth.cpu);
    log(
      `ingest run ${run + 1} (flat out, ${INGEST_NODES} ids): bare ${round(bare.rate)}/s at ${round(bare.cpu * 100)}% CPU; ` +
        `hb ${round(hb.rate)}/s at ${round(hb.cpu * 100)}% (${round(hb.perCore / bare.perCore, 2)}x); ` +
        `hb+auth ${round(auth.rate)}/s at ${round(auth.cpu * 100)}% (${round(auth.perCore / bare.perCore, 2)}x)`,
    );
  }
  return Object.fromEntries(Object.entries(rows).map(([k, v]) => [k, spread(v)])) as unknown as Ingest;
}
