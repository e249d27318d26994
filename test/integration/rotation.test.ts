// Key rotation without a flag day: k1 and k2 both trusted, nodes move to k2 one by one, then k1
// is removed by a reload. No node goes down at any point, and no move is taken for a crash.
import { afterAll, describe, expect, it } from "vitest";
import type { HbProcess } from "../support/hb-process.js";
import { TempDir, runHb, sleep, startMonitor, startNode } from "../support/hb-process.js";
import { Kind, encode } from "../../src/wire/protocol.js";
import { createSecretKey } from "node:crypto";
import { createSocket } from "node:dgram";

const dir = new TempDir();
const k1 = dir.file("k1", "rotation-key-one-0123456789abcdef\n", 0o600);
const k2 = dir.file("k2", "rotation-key-two-0123456789abcdef\n", 0o600);
const config = (keys: string) => `auth: required
keys: { ${keys} }
defaults: { interval: 100ms, late: 500ms, timeout: 1s }
nodes: { "a": {}, "b": {}, "c": {} }
`;
const procs: HbProcess[] = [];
afterAll(async () => {
  await Promise.all(procs.map((p) => p.stop()));
  dir.remove();
});

describe("key rotation", () => {
  it("moves every node from k1 to k2 and retires k1, and no node ever goes late or down", async () => {
    const path = dir.file("hb.yaml", config(`k1: ${k1}, k2: ${k2}`));
    const { monitor, listen, statusUrl } = await startMonitor(path);
    procs.push(monitor);
    const nodes = new Map<string, HbProcess>();
    for (const id of ["a", "b", "c"]) nodes.set(id, startNode(id, listen, "100ms", ["--key-file", k1]));
    procs.push(...nodes.values());
    await Promise.all(["a", "b", "c"].map((id) => monitor.waitFor("node.up", id)));

    for (const id of ["a", "b", "c"]) {
      const old = nodes.get(id)!;
      old.signal("SIGTERM");
      await old.exited;
      const moved = startNode(id, listen, "100ms", ["--key-file", k2]);
      procs.push(moved);
      nodes.set(id, moved);
      expect((await moved.waitFor("sender.started")).keyId).toBe("k2");
      await sleep(300);
    }
    dir.file("hb.yaml", config(`k2: ${k2}`));
    monitor.signal("SIGHUP");
    expect((await monitor.waitFor("config.reloaded")).changes).toEqual(["keys.k1: removed"]);
    await sleep(1500); // longer than the timeout

    expect(monitor.of("node.down")).toEqual([]);
    expect(monitor.of("node.late")).toEqual([]);
    // Each move is a planned restart: left, then up from left, and no warning.
    expect(monitor.of("node.left").map((e) => e.node)).toEqual(["a", "b", "c"]);
    expect(monitor.of("node.restarted")).toEqual([]);
    expect(monitor.of("node.up").filter((e) => e.previous === "left")).toHaveLength(3);
    const status = JSON.parse(runHb(["status", "--json", "--url", statusUrl]).stdout) as {
      counts: { up: number };
    };
    expect(status.counts.up).toBe(3);

    // k1 is no longer trusted.
    const socket = createSocket("udp4");
    const old = encode(
      { kind: Kind.BEAT, nodeId: "a", incarnation: Date.now() * 2, sequence: 1 },
      { id: "k1", secret: createSecretKey(Buffer.from("rotation-key-one-0123456789abcdef")) },
    );
    await new Promise<void>((resolve) =>
      socket.send(old, Number(listen.split(":")[1]), "127.0.0.1", () => resolve()),
    );
    socket.close();
    await sleep(200);
    const after = JSON.parse(runHb(["status", "--json", "--url", statusUrl]).stdout) as {
      datagrams: { rejected: { unknown_key: number } };
    };
    expect(after.datagrams.rejected.unknown_key).toBe(1);
  });
});
