// The benchmark's native load generator (bench/hbgen.c, built by bench/cgen.ts) against a real
// monitor: its datagrams are valid and accepted, its HMAC tags verify (and a wrong key's do not),
// its sequences count without loss, and its stopped nodes are exactly the ones that go down.
import { spawnSync } from "node:child_process";
import { rmSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildGenerator, cLoad } from "../../bench/cgen.js";
import { tmp as benchTmp } from "../../bench/harness.js";
import type { Started } from "../../bench/lib.js";
import { TempDir, sleep, startMonitor, type HbProcess } from "../support/hb-process.js";

interface Status {
  counts: Record<string, number>;
  datagrams: { received: number; accepted: number; rejected: Record<string, number> };
  kernelDrops: number | null;
  nodes: { node: string; state: string; received: number; lost: number }[];
}

const dir = new TempDir();
const procs: (HbProcess | Started)[] = [];
const keyFile = dir.file("k1", "cgen-test-key-0123456789abcdef\n", 0o600);
// The same key, as `openssl rand` or an editor might leave it: surrounding white space is no part of it.
const paddedKeyFile = dir.file("k1-padded", "\n  cgen-test-key-0123456789abcdef \r\n\n", 0o600);
const wrongKeyFile = dir.file("k1-wrong", "cgen-test-key-0123456789abcdeF\n", 0o600);

beforeAll(() => {
  const binary = buildGenerator();
  const selfTest = spawnSync(binary, ["--self-test"], { encoding: "utf8" });
  expect(selfTest.stdout.trim()).toBe('{"selfTest":true,"failures":0}');
});
afterAll(async () => {
  await Promise.all(procs.map((p) => p.stop()));
  dir.remove();
  rmSync(benchTmp, { recursive: true, force: true }); // bench/harness.ts makes one on import
});

async function monitorWith(config: string) {
  const m = await startMonitor(dir.file(`hb-${procs.length}.yaml`, config));
  procs.push(m.monitor);
  return m;
}

/** received, accepted, and the rejection reasons that counted anything. */
const datagrams = ({ datagrams: d }: Status) => ({
  received: d.received,
  accepted: d.accepted,
  rejected: Object.fromEntries(Object.entries(d.rejected).filter(([, n]) => n > 0)),
});

/** Runs the generator to its end; then waits until the monitor has taken every datagram in. */
async function runToEnd(
  statusUrl: string,
  load: Started,
): Promise<{ sent: number; errors: number; status: Status }> {
  procs.push(load);
  const end = JSON.parse(await load.line((l) => l.includes('"sent"'), 15_000)) as {
    sent: number;
    errors: number;
  };
  let status: Status;
  for (let i = 0; ; i++) {
    status = (await (await fetch(statusUrl)).json()) as Status;
    if (status.datagrams.received >= end.sent || i === 40) break;
    await sleep(50);
  }
  return { ...end, status };
}

describe("the native load generator", () => {
  it("sends 1 000 distinct fixed-width ids at 5 000/s, all accepted without loss", async () => {
    const { port, statusUrl } = await monitorWith("defaults: { interval: 200ms, timeout: 10s }\n");
    const load = cLoad({ port, nodes: 1000, rate: 5000, seconds: 2 });
    const { sent, errors, status } = await runToEnd(statusUrl, load);
    expect(errors).toBe(0);
    expect(sent).toBe(10_000); // paced exactly: 2 s at 5 000/s
    expect(datagrams(status)).toEqual({ received: sent, accepted: sent, rejected: {} });
    expect(status.counts.up).toBe(1000);
    const ids = status.nodes.map((n) => n.node).sort();
    expect(ids).toEqual(Array.from({ length: 1000 }, (_, i) => `n${String(i).padStart(3, "0")}`));
    // Every node sent every 200 ms with sequences 1, 2, 3...: ten each, none lost.
    expect(status.nodes.filter((n) => n.received !== 10 || n.lost !== 0)).toEqual([]);
  });

  it("signs with HMAC-SHA-256 as the monitor verifies it (auth: required), with the key file's text trimmed", async () => {
    const { port, statusUrl } = await monitorWith(`auth: required\nkeys: { k1: ${keyFile} }\n`);
    const load = cLoad({ port, nodes: 1000, rate: 5000, seconds: 2, keyFile: paddedKeyFile, keyId: "k1" });
    const { sent, errors, status } = await runToEnd(statusUrl, load);
    expect(errors).toBe(0);
    expect(sent).toBe(10_000);
    expect(datagrams(status)).toEqual({ received: sent, accepted: sent, rejected: {} });
    expect(status.counts.up).toBe(1000);
  });

  it("signs with a different key: every datagram is refused as bad_tag, and nothing else", async () => {
    const { port, statusUrl } = await monitorWith(`auth: required\nkeys: { k1: ${keyFile} }\n`);
    const load = cLoad({ port, nodes: 100, rate: 2000, seconds: 1, keyFile: wrongKeyFile, gso: true });
    const { sent, status } = await runToEnd(statusUrl, load);
    expect(sent).toBe(2000);
    expect(datagrams(status)).toEqual({ received: sent, accepted: 0, rejected: { bad_tag: sent } });
    expect(status.nodes).toEqual([]);
  });

  it("stops the nodes it names after --stop-after, and exactly those go down", async () => {
    const { monitor, port } = await monitorWith("defaults: { interval: 100ms, late: 500ms, timeout: 1s }\n");
    // 100 nodes, each every 100 ms; 10 of them fall silent after 1 s.
    const load = cLoad({ port, nodes: 100, rate: 1000, seconds: 6, stopAfter: 1, stopCount: 10 });
    procs.push(load);
    const stoppedLine = JSON.parse(await load.line((l) => l.includes('"stopped"'), 10_000)) as {
      stopped: string[];
      monoNs: number;
      wallMs: number;
    };
    const stopped = stoppedLine.stopped;
    expect(new Set(stopped).size).toBe(10);
    for (const id of stopped) expect(id).toMatch(/^n\d\d$/);
    expect(Math.abs(stoppedLine.wallMs - Date.now())).toBeLessThan(5000);
    await Promise.all(stopped.map((id) => monitor.waitFor("node.down", id, 5000)));
    await sleep(1000); // another timeout: a node wrongly silenced would be down by now too
    expect(load.lines.some((l) => l.includes('"sent"'))).toBe(false); // the others still send
    const down = monitor.of("node.down").map((e) => e.node);
    expect(down.sort()).toEqual([...stopped].sort());
    expect(monitor.of("nodes.summarized").filter((e) => JSON.stringify(e).includes("node.down"))).toEqual([]);
    await load.stop();
    const end = JSON.parse(await load.line((l) => l.includes('"sent"'))) as { sent: number; errors: number };
    expect(end.errors).toBe(0);
  });
});
