// Flap damping against a real monitor: a node whose link loses 60 % of its datagrams (a relay with
// a seeded generator, the same losses at every run) flaps, a partition then takes it down, and
// when the partition heals its recovery is in the journal at once; a node that restarts 1 000
// times writes a handful of lines. Times are never asserted: what a busy machine delays is order
// and counts, not the monitor's verdicts.
import { createSocket } from "node:dgram";
import { afterAll, describe, expect, it } from "vitest";
import { Kind, encode } from "../../src/wire/protocol.js";
import { CutRelay } from "../support/cut-relay.js";
import { TempDir, sleep, startMonitor, until, type HbProcess } from "../support/hb-process.js";

const INTERVAL_MS = 200;
const PARTITION_MS = 4000;

const dir = new TempDir();
const cleanups: (() => Promise<void> | void)[] = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  dir.remove();
});

interface NodeStatus {
  node: string;
  state: string;
  received: number;
  restarts: number;
}

async function nodeStatus(statusUrl: string, node: string): Promise<NodeStatus> {
  const doc = (await (await fetch(`${statusUrl}?node=${node}`)).json()) as { nodes: NodeStatus[] };
  return doc.nodes.find((n) => n.node === node)!;
}

async function monitorWith(yaml: string): Promise<{ monitor: HbProcess; port: number; statusUrl: string }> {
  const started = await startMonitor(dir.file(`hb-${cleanups.length}.yaml`, yaml));
  cleanups.push(() => started.monitor.stop());
  return started;
}

function udpSocket(): ReturnType<typeof createSocket> {
  const socket = createSocket("udp4");
  cleanups.push(() => new Promise<void>((resolve) => socket.close(() => resolve())));
  return socket;
}

describe("flap damping in a running monitor", () => {
  it(
    "writes node.up at the first heartbeat through a healed partition, for a node flapping under 60 % loss",
    {
      timeout: 90_000,
    },
    async () => {
      const { monitor, port, statusUrl } = await monitorWith(
        `nodes: { a: { interval: ${INTERVAL_MS}ms, timeout: 1s } }\n`,
      );
      const relay = new CutRelay(port, 7);
      relay.lossRate = 0.6;
      const relayed = Number((await relay.start()).split(":")[1]);
      cleanups.push(() => relay.close());
      const socket = udpSocket();
      const incarnation = Date.now();
      let sequence = 0;
      const send = (): void =>
        socket.send(
          encode({ kind: Kind.BEAT, nodeId: "a", incarnation, sequence: ++sequence }),
          relayed,
          "127.0.0.1",
        );
      const sender = setInterval(send, INTERVAL_MS);
      cleanups.push(() => clearInterval(sender));

      // Late and back up (and down, now and then), again and again: flapping.
      await monitor.waitFor("node.flapping", "a", 30_000);
      const flappedAt = monitor.events.length;

      // The partition, from a moment it is up: nothing gets through, and the node goes down,
      // which the journal says.
      await until("up", async () => (await nodeStatus(statusUrl, "a")).state === "up", 10_000, 20);
      relay.cut();
      const cutAt = monitor.events.length;
      const cutMs = Date.now();
      await monitor.waitFor("node.down", "a", 10_000, cutAt);
      await sleep(cutMs + PARTITION_MS - Date.now());
      expect(monitor.of("node.flapping", "a")).toMatchObject([{ settled: false }]);
      const down = monitor.events.slice(cutAt).filter((e) => e.node === "a");
      expect(down.map((e) => e.event)).toEqual(["node.down"]);

      // Healed, on a clean link: the next heartbeat the node sends is let through, and no other
      // until the monitor has answered, so the recovery can only be that heartbeat's.
      clearInterval(sender);
      const before = await nodeStatus(statusUrl, "a");
      expect(before.state).toBe("down");
      relay.lossRate = 0;
      relay.restore();
      const healedAt = monitor.events.length;
      send();
      const up = await monitor.waitFor("node.up", "a", 10_000, healedAt);
      expect(up).toMatchObject({ previous: "down" });
      expect(monitor.events.slice(healedAt).find((e) => e.node === "a")).toBe(up);
      expect(await nodeStatus(statusUrl, "a")).toMatchObject({ received: before.received + 1 });

      expect(
        monitor.events.slice(flappedAt).filter((e) => e.node === "a" && e.event === "node.late"),
      ).toEqual([]);
    },
  );

  it("writes at most 20 journal lines about a node that restarts 1 000 times", async () => {
    const { monitor, port, statusUrl } = await monitorWith(`nodes: { b: {} }\n`);
    const socket = udpSocket();
    const first = Date.now() - 10_000;
    const sendAs = (incarnation: number): Promise<void> =>
      new Promise((resolve, reject) =>
        socket.send(
          encode({ kind: Kind.BEAT, nodeId: "b", incarnation, sequence: 1 }),
          port,
          "127.0.0.1",
          (err) => (err ? reject(err) : resolve()),
        ),
      );
    // A new incarnation per datagram, as a crash-looping node sends: in batches the monitor reads
    // before the next, so that none is lost in a full socket buffer on a busy machine.
    const BATCH = 50;
    for (let i = 0; i <= 1000; i += BATCH) {
      const batch = Array.from({ length: Math.min(BATCH, 1001 - i) }, (_, k) => sendAs(first + i + k));
      await Promise.all(batch);
      const sent = i + batch.length;
      await until(
        `${sent} datagrams received`,
        async () => (await nodeStatus(statusUrl, "b")).received === sent,
        10_000,
        20,
      );
    }
    expect(await nodeStatus(statusUrl, "b")).toMatchObject({ state: "up", restarts: 1000 });
    const lines = monitor.events.filter((e) => e.node === "b").map((e) => e.event);
    expect(lines.length).toBeLessThanOrEqual(20);
    expect(lines).toEqual(["node.up", ...Array<string>(6).fill("node.restarted"), "node.flapping"]);
  });
});
