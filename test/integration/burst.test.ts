// 100 000 bad datagrams at a real monitor as fast as one socket can send them.
import { randomBytes } from "node:crypto";
import { createSocket } from "node:dgram";
import { afterAll, describe, expect, it } from "vitest";
import { Kind, encode } from "../../src/wire/protocol.js";
import { TempDir, runHb, sleep, startMonitor, startNode, type HbProcess } from "../support/hb-process.js";

describe("a burst of 100 000 bad datagrams", () => {
  const dir = new TempDir();
  const procs: HbProcess[] = [];
  afterAll(async () => {
    await Promise.all(procs.map((p) => p.stop()));
    dir.remove();
  });

  it("is counted by reason, summarised in a handful of lines, and crashes nothing", async () => {
    const { monitor, listen, statusUrl } = await startMonitor(
      dir.file("hb.yaml", `defaults: { interval: 200ms, late: 1s, timeout: 2s }\nnodes: { "good": {} }\n`),
    );
    procs.push(monitor, startNode("good", listen));
    await monitor.waitFor("node.up", "good");
    const [host, port] = [listen.split(":")[0]!, Number(listen.split(":")[1])];
    const sock = createSocket("udp4");
    const good = encode({ kind: Kind.BEAT, nodeId: "good", incarnation: 1, sequence: 1 });
    const kinds = [
      () => randomBytes(1 + Math.floor(Math.random() * 100)), // malformed / bad magic
      () => good.subarray(0, 15), // truncated
      () => Buffer.alloc(600, 0x68), // oversized
      () => Buffer.concat([Buffer.from([0x68, 0x62, 0x07]), good.subarray(3)]), // wrong version
      () => good, // a replay of one captured datagram (an old incarnation once the real node is known)
    ];
    const started = Date.now();
    for (let i = 0; i < 100_000; i++) {
      sock.send(kinds[i % kinds.length]!(), port, host);
      if (i % 500 === 499) await new Promise((r) => setImmediate(r));
    }
    await new Promise<void>((resolve) => sock.close(resolve));
    const burstMs = Date.now() - started;
    await sleep(1500);

    const r = runHb(["status", "--json", "--url", statusUrl]);
    expect(r.code).toBe(0); // the good node stayed up
    const doc = JSON.parse(r.stdout) as {
      datagrams: { received: number; accepted: number; rejected: Record<string, number> };
    };
    const rejected = doc.datagrams.rejected;
    const totalRejected = Object.values(rejected).reduce((a, b) => a + b, 0);
    expect(doc.datagrams.received).toBe(doc.datagrams.accepted + totalRejected);
    expect(totalRejected).toBeGreaterThan(10_000); // the kernel may drop some of a burst; most arrive
    for (const reason of ["oversized", "truncated", "bad_version", "replay"])
      expect(rejected[reason], reason).toBeGreaterThan(0);

    const summaries = monitor.of("datagrams.rejected");
    const windows = Math.ceil((burstMs + 1500) / 200) + 2;
    expect(summaries.length).toBeGreaterThan(0);
    expect(summaries.length).toBeLessThanOrEqual(windows);
    expect(summaries.every((e) => e.level === "warn")).toBe(true);
    expect(monitor.events.length).toBeLessThan(windows + 5);
    expect(monitor.of("node.down")).toEqual([]);
    expect(monitor.child.exitCode).toBeNull();
  });
});
