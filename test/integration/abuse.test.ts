// A real monitor under attack: 200 000 datagrams of random bytes, random node ids, forged tags,
// replays of captured traffic and oversized packets, sent as fast as one socket can, while 50
// legitimate nodes (one separate process) keep beating.
import { spawn } from "node:child_process";
import { createSecretKey, randomBytes } from "node:crypto";
import { createSocket } from "node:dgram";
import { readFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { Kind, encode } from "../../src/wire/protocol.js";
import { TempDir, runHb, sleep, startMonitor, type HbProcess } from "../support/hb-process.js";

const ATTACK = 200_000;
const LEGIT = 50;
const dir = new TempDir();
const keyFile = dir.file("k1", "abuse-test-key-0123456789abcdef\n", 0o600);
const key = { id: "k1", secret: createSecretKey(Buffer.from("abuse-test-key-0123456789abcdef")) };
const BEATER = fileURLToPath(new URL("../support/beater.ts", import.meta.url));
let monitor: HbProcess | undefined;
const cleanup: (() => void)[] = [];
afterAll(async () => {
  cleanup.forEach((f) => f());
  await monitor?.stop();
  dir.remove();
});

const rssKiB = (pid: number): number =>
  Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))![1]);
const randomId = (): string => `x${randomBytes(6).toString("hex")}`;

describe(`${ATTACK} hostile datagrams while ${LEGIT} nodes beat`, () => {
  it("crash nothing, page about no legitimate node, let no forged node up, keep memory bounded, log a few lines", async () => {
    const config = dir.file(
      "hb.yaml",
      `auth: required\nkeys: { k1: ${keyFile} }\nmax_nodes: 1000\ndefaults: { interval: 100ms, late: 1500ms, timeout: 3s }\nnodes:\n${Array.from(
        { length: LEGIT },
        (_, i) => `  n${i}: {}`,
      ).join("\n")}\n`,
    );
    const started = await startMonitor(config);
    monitor = started.monitor;
    const port = Number(started.listen.split(":")[1]);
    const beater = spawn(
      process.execPath,
      ["--import", "tsx", BEATER, String(port), keyFile, String(LEGIT), "100"],
      {
        stdio: ["ignore", "pipe", "inherit"],
      },
    );
    cleanup.push(() => beater.kill("SIGKILL"));
    const { incarnation } = JSON.parse(
      await new Promise<string>((resolve) => createInterface({ input: beater.stdout }).once("line", resolve)),
    ) as { incarnation: number };
    await Promise.all(Array.from({ length: LEGIT }, (_, i) => monitor!.waitFor("node.up", `n${i}`)));
    await sleep(500);
    const pid = monitor.child.pid!;
    const rssBefore = rssKiB(pid);

    const socket = createSocket("udp4");
    const kinds = [
      () => randomBytes(1 + Math.floor(Math.random() * 200)), // noise
      () => encode({ kind: Kind.BEAT, nodeId: randomId(), incarnation: 1, sequence: 1 }), // unsigned, random id
      () => {
        const forged = encode({ kind: Kind.BEAT, nodeId: randomId(), incarnation: 1, sequence: 1 }, key);
        randomBytes(32).copy(forged, forged.length - 32); // a guessed tag
        return forged;
      },
      () => {
        const forged = encode(
          { kind: Kind.BEAT, nodeId: "n7", incarnation: incarnation + 1, sequence: 1 },
          key,
        );
        forged[forged.length - 1] = forged[forged.length - 1]! ^ 1; // a legitimate id, a near-miss tag
        return forged;
      },
      () =>
        encode(
          { kind: Kind.BEAT, nodeId: `n${Math.floor(Math.random() * LEGIT)}`, incarnation, sequence: 1 },
          key,
        ), // captured: replay
      () => Buffer.alloc(600 + Math.floor(Math.random() * 900), 0x68), // oversized
    ];
    const t0 = Date.now();
    for (let i = 0; i < ATTACK; i++) {
      socket.send(kinds[i % kinds.length]!(), port, "127.0.0.1");
      if (i % 256 === 255) await new Promise((r) => setImmediate(r));
    }
    await new Promise<void>((resolve) => socket.close(resolve));
    const attackMs = Date.now() - t0;
    await sleep(4000); // longer than the timeout: a legitimate node starved by the flood would be down by now
    const rssAfter = rssKiB(pid);

    const status = JSON.parse(runHb(["status", "--json", "--url", started.statusUrl]).stdout) as {
      counts: Record<string, number>;
      nodes: { node: string }[];
      datagrams: { received: number; accepted: number; rejected: Record<string, number> };
    };
    const rejected = Object.values(status.datagrams.rejected).reduce((a, b) => a + b, 0);
    console.info(
      `attack: ${ATTACK} datagrams in ${attackMs} ms; monitor received ${status.datagrams.received}, rejected ${rejected} ` +
        `${JSON.stringify(Object.fromEntries(Object.entries(status.datagrams.rejected).filter(([, n]) => n > 0)))}; ` +
        `RSS ${rssBefore} KiB -> ${rssAfter} KiB; ${monitor.events.length} log lines`,
    );

    expect(monitor.child.exitCode).toBeNull();
    expect(monitor.of("node.down")).toEqual([]);
    expect(monitor.of("node.late")).toEqual([]);
    expect(status.counts).toMatchObject({ up: LEGIT, down: 0, late: 0 });
    expect(status.nodes.map((n) => n.node).sort()).toEqual(
      Array.from({ length: LEGIT }, (_, i) => `n${i}`).sort(),
    );
    expect(monitor.of("node.up").every((e) => /^n\d+$/.test(e.node!))).toBe(true);
    expect(rejected).toBeGreaterThan(ATTACK / 4); // the kernel may drop part of the flood; most of it arrives
    for (const reason of ["unauthenticated", "bad_tag", "replay", "oversized"])
      expect(status.datagrams.rejected[reason], reason).toBeGreaterThan(0);
    expect(rssAfter - rssBefore).toBeLessThan(64 * 1024);
    // Journal lines are bounded by time, never by datagrams: at most one `datagrams.rejected` per
    // interval (100 ms) since the attack began, however long the attack took on this machine,
    // and otherwise only the legitimate nodes' `node.up` and the monitor's own start-up lines.
    const summaries = monitor.of("datagrams.rejected").length;
    expect(summaries).toBeLessThanOrEqual(Math.ceil((Date.now() - t0) / 100) + 1);
    expect(monitor.events.length - summaries).toBeLessThan(LEGIT + 5);
  });
});
