// Captured real datagrams replayed at a real monitor: a dead node must never look alive again,
// not later in the same incarnation, not after the node restarted, not after the monitor did.
import { afterAll, describe, expect, it } from "vitest";
import type { HbEvent, HbProcess } from "../support/hb-process.js";
import { TempDir, runHb, sleep, startMonitor, startNode } from "../support/hb-process.js";
import { Relay } from "../support/relay.js";

const dir = new TempDir();
const keyFile = dir.file("k1", "relay-test-key-0123456789abcdef\n", 0o600);
const CONFIG = `auth: required
keys: { k1: ${keyFile} }
startup_grace: 2s
defaults: { interval: 100ms, late: 500ms, timeout: 1s }
nodes: { "a": {} }
`;
const procs: HbProcess[] = [];
const relays: Relay[] = [];
afterAll(async () => {
  await Promise.all(procs.map((p) => p.stop()));
  relays.forEach((r) => r.close());
  dir.remove();
});

async function setUp(stateDir?: string) {
  const configPath = dir.file(`hb-${Math.random()}.yaml`, CONFIG);
  const { monitor, port, statusUrl } = await startMonitor(
    configPath,
    stateDir === undefined ? [] : ["--state-dir", stateDir],
  );
  procs.push(monitor);
  const relay = new Relay(port);
  relays.push(relay);
  const via = await relay.start();
  const node = () => {
    const p = startNode("a", via, "100ms", ["--key-file", keyFile]);
    procs.push(p);
    return p;
  };
  return { monitor, relay, node, configPath, statusUrl, port };
}

const replays = (statusUrl: string): number =>
  (
    JSON.parse(runHb(["status", "--json", "--url", statusUrl]).stdout) as {
      datagrams: { rejected: { replay: number } };
    }
  ).datagrams.rejected.replay;

/**
 * Replays `captured` at the monitor and resolves once it has counted every one as a replay, with
 * the events about node "a" it wrote since. (On a busy machine a live node may go late and up
 * again before the replay; that is not the replay's doing, so only what follows it is judged.)
 */
async function replayAll(
  monitor: HbProcess,
  relay: Relay,
  statusUrl: string,
  captured: Buffer[],
): Promise<HbEvent[]> {
  const from = monitor.events.length;
  await relay.replay(captured);
  for (let waited = 0; replays(statusUrl) < captured.length && waited < 10_000; waited += 100)
    await sleep(100);
  expect(replays(statusUrl)).toBe(captured.length);
  await sleep(300); // for a line the replay would have made to come through the pipe
  return monitor.events.slice(from).filter((e) => e.node === "a");
}

describe("replayed datagrams", () => {
  it("do not revive a dead node within its incarnation", async () => {
    const { monitor, relay, node, statusUrl } = await setUp();
    const a = node();
    await monitor.waitFor("node.up", "a");
    await sleep(500);
    const killed = monitor.events.length;
    a.signal("SIGKILL");
    await monitor.waitFor("node.down", "a", undefined, killed);
    const captured = [...relay.captured];
    expect(captured.length).toBeGreaterThan(3);
    expect(await replayAll(monitor, relay, statusUrl, captured)).toEqual([]);
  });

  it("do not revive a dead node after it restarted, from either incarnation", async () => {
    const { monitor, relay, node, statusUrl } = await setUp();
    const first = node();
    await monitor.waitFor("node.up", "a");
    await sleep(400);
    first.signal("SIGKILL");
    await first.exited;
    const second = node();
    await monitor.waitFor("node.restarted", "a");
    await sleep(400);
    const killed = monitor.events.length;
    second.signal("SIGKILL");
    await monitor.waitFor("node.down", "a", undefined, killed);
    const captured = [...relay.captured];
    expect(await replayAll(monitor, relay, statusUrl, captured)).toEqual([]);
    expect(monitor.of("node.restarted", "a")).toHaveLength(1);
  });

  it("do not revive a dead node after the monitor restarted (with its state directory)", async () => {
    const stateDir = `${dir.path}/state`;
    const before = await setUp(stateDir);
    const a = before.node();
    await before.monitor.waitFor("node.up", "a");
    await sleep(500);
    a.signal("SIGKILL");
    await a.exited;
    before.monitor.signal("SIGTERM");
    expect((await before.monitor.exited).code).toBe(0);
    const captured = [...before.relay.captured];

    const after = await setUp(stateDir);
    const since = await replayAll(after.monitor, after.relay, after.statusUrl, captured);
    expect(since.filter((e) => e.event !== "node.down")).toEqual([]); // down once the grace is over
    const down = await after.monitor.waitFor("node.down", "a"); // never heard again: down after the grace
    expect(down.lastSeen).toBeNull();
    expect(after.monitor.of("node.up")).toEqual([]);
  });
});
