// A log reader that stops (journald paused, a full pipe) must cost the monitor memory, never a
// judgement: its stdout here is a blocking stream, as systemd gives it, whose reader stops for
// five seconds and more while 30 000 log-worthy datagrams (listed nodes restarting) arrive and a
// node dies. Its judgement is checked against the moment the reader came back, not against a
// number of milliseconds: on a busy machine the monitor may be late by a scheduler's slice, never
// by that.
import { createSocket } from "node:dgram";
import { afterAll, describe, expect, it } from "vitest";
import { Kind, encode } from "../../src/wire/protocol.js";
import { TempDir, sleep, startMonitor, startNode, type HbProcess } from "../support/hb-process.js";

const dir = new TempDir();
const started: HbProcess[] = [];
afterAll(async () => {
  await Promise.all(started.map((p) => p.stop()));
  dir.remove();
});

const FLOOD = 30_000;

describe("a stopped log reader", () => {
  it("delays no judgement, loses no datagram, keeps /status answering, and loses no line", async () => {
    const config = dir.file(
      "hb.yaml",
      // Listed, so that every one of their lines is written (unlisted nodes' lines are budgeted).
      `max_nodes: 100000\nstartup_grace: 1h\nnodes:\n  victim: { interval: 100ms, late: 1s, timeout: 2s }\n` +
        Array.from({ length: FLOOD }, (_, i) => `  flood-${i}: {}\n`).join(""),
    );
    const { monitor, listen, port, statusUrl } = await startMonitor(config);
    started.push(monitor);
    const victim = startNode("victim", listen, "100ms");
    started.push(victim);
    await monitor.waitFor("node.up", "victim");
    const status = async (): Promise<{ kernelDrops: number; datagrams: { accepted: number } }> =>
      (await (await fetch(`${statusUrl}?nodes=0`, { signal: AbortSignal.timeout(10_000) })).json()) as {
        kernelDrops: number;
        datagrams: { accepted: number };
      };
    const socket = createSocket("udp4");
    const flood = async (incarnation: number): Promise<void> => {
      for (let i = 0; i < FLOOD; i++) {
        const dg = encode({ kind: Kind.BEAT, nodeId: `flood-${i}`, incarnation, sequence: 1 });
        socket.send(dg, port, "127.0.0.1");
        // At most 10 000/s, well within what the monitor ingests; paced by few timers, so that a
        // busy machine, whose timers fire late, slows the flood down rather than stretching it.
        if (i % 100 === 99) await sleep(10);
      }
    };
    // First contacts are summarized (a monitor starting in front of its fleet); restarts of
    // listed nodes are not: each one below is a `node.restarted` line of its own.
    await flood(1);
    while ((await status()).datagrams.accepted < FLOOD) await sleep(100);
    const before = await status();

    monitor.child.stdout!.pause(); // the reader stops: the monitor's writes soon block
    await flood(2);
    const killedAt = Date.now();
    victim.signal("SIGKILL");
    await sleep(2500); // past the victim's deadline, with the reader still stopped
    // Must answer while the log reader is stopped: the reader comes back only after the answer.
    const during = await status();
    await sleep(2500);
    const resumedAt = Date.now();
    monitor.child.stdout!.resume();
    await new Promise<void>((resolve) => socket.close(resolve));

    const down = await monitor.waitFor("node.down", "victim", 20_000);
    // The death after the kill, judged at its deadline, before the reader came back (2.5 s
    // and more after it), not when its line could be written.
    expect(down.at as number).toBeGreaterThan(killedAt);
    expect(down.time as number).toBeGreaterThanOrEqual(down.at as number);
    expect(down.time as number).toBeLessThan(resumedAt);
    expect(during.kernelDrops).toBe(before.kernelDrops);
    await sleep(500);
    const after = await status();
    console.info(
      `accepted ${after.datagrams.accepted - before.datagrams.accepted}, kernel drops ${before.kernelDrops} -> ${after.kernelDrops}, node.down ${(down.time as number) - (down.at as number)} ms after its deadline`,
    );
    expect(after.datagrams.accepted - before.datagrams.accepted).toBeGreaterThanOrEqual(FLOOD);
    expect(after.kernelDrops).toBe(before.kernelDrops);
    const restarts = monitor.of("node.restarted").filter((e) => e.node!.startsWith("flood-"));
    expect(restarts).toHaveLength(FLOOD); // every line arrives, none dropped at this volume
    const times = monitor.events.map((e) => e.time as number);
    expect(times).toEqual([...times].sort((a, b) => a - b)); // in order
  });
});
