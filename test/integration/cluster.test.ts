// A real monitor and three real `hb node` processes on loopback.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { HbProcess } from "../support/hb-process.js";
import { TempDir, runHb, sleep, startMonitor, startNode } from "../support/hb-process.js";

// Thresholds with room for a busy machine, where a sender may wait a second for the CPU.
const CONFIG = `
defaults: { interval: 200ms, late: 2s, timeout: 3s }
startup_grace: 30s
nodes: { "a": {}, "b": {}, "c": {} }
`;

describe("a monitor with three node processes", () => {
  const dir = new TempDir();
  let monitor: HbProcess;
  let listen: string;
  let statusUrl: string;
  const nodes = new Map<string, HbProcess>();

  beforeAll(async () => {
    ({ monitor, listen, statusUrl } = await startMonitor(dir.file("hb.yaml", CONFIG)));
    for (const id of ["a", "b", "c"]) nodes.set(id, startNode(id, listen));
    await Promise.all(["a", "b", "c"].map((id) => monitor.waitFor("node.up", id)));
  });

  afterAll(async () => {
    await Promise.all([...nodes.values(), monitor].map((p) => p.stop()));
    dir.remove();
  });

  it("sees every node come up, and hb status exits 0 with all of them up", () => {
    expect(monitor.of("node.up").map((e) => [e.node, e.previous])).toEqual(
      expect.arrayContaining([
        ["a", "new"],
        ["b", "new"],
        ["c", "new"],
      ]),
    );
    const table = runHb(["status", "--url", statusUrl]);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/^NODE\s+STATE\s+LAST HEARD\s+TIMEOUT\s+LOSS\s+RESTARTS/);
    expect(table.stdout).toMatch(/^a\s+up\s+/m);
    const json = runHb(["status", "--json", "--url", statusUrl]);
    expect(json.code).toBe(0);
    const doc = JSON.parse(json.stdout) as {
      counts: Record<string, number>;
      nodes: { node: string; state: string }[];
    };
    expect(doc.counts).toMatchObject({ up: 3, late: 0, down: 0 });
    expect(doc.nodes.map((n) => [n.node, n.state])).toEqual([
      ["a", "up"],
      ["b", "up"],
      ["c", "up"],
    ]);
  });

  it("reports a node killed with SIGKILL late, then down at its deadline, and no one else", async () => {
    nodes.get("c")!.signal("SIGKILL");
    const late = await monitor.waitFor("node.late", "c");
    const down = await monitor.waitFor("node.down", "c");
    expect(late).toMatchObject({ level: "warn", lateMs: 2000 });
    expect(late.silentMs).toBeGreaterThanOrEqual(2000);
    expect(down).toMatchObject({ level: "error", timeoutMs: 3000 });
    expect(down.silentMs).toBeGreaterThanOrEqual(3000);
    expect(down.at).toBe((down.lastSeen as number) + 3000);
    expect(monitor.events.indexOf(late)).toBeLessThan(monitor.events.indexOf(down));
    expect(monitor.of("node.late").map((e) => e.node)).toEqual(["c"]);
    expect(monitor.of("node.down").map((e) => e.node)).toEqual(["c"]);
  });

  it("hb status exits 1 and shows the node down", () => {
    const table = runHb(["status", "--url", statusUrl]);
    expect(table.code).toBe(1);
    expect(table.stdout).toMatch(/^c\s+down\s+/m);
    expect(runHb(["status", "--json", "--url", statusUrl]).code).toBe(1);
  });

  it("reports a node stopped with SIGTERM as left, and never down", async () => {
    const b = nodes.get("b")!;
    b.signal("SIGTERM");
    expect(await b.exited).toEqual({ code: 0, signal: null });
    await monitor.waitFor("node.left", "b");
    await sleep(3500); // longer than the 3s timeout
    expect(monitor.of("node.down", "b")).toEqual([]);
    expect(monitor.of("node.late", "b")).toEqual([]);
  });

  it("reports the node started again after its stop as up from left, and not as restarted", async () => {
    const mark = monitor.events.length;
    nodes.set("b", startNode("b", listen));
    const up = await monitor.waitFor("node.up", "b", undefined, mark);
    expect(up).toMatchObject({ level: "info", previous: "left" });
    await sleep(500);
    expect(monitor.of("node.restarted")).toEqual([]);
    expect(monitor.of("node.down").map((e) => e.node)).toEqual(["c"]);
  });

  it("reports the node killed with SIGKILL and started again as restarted, then up from down", async () => {
    const mark = monitor.events.length;
    nodes.set("c", startNode("c", listen));
    const restarted = await monitor.waitFor("node.restarted", "c", undefined, mark);
    const up = await monitor.waitFor("node.up", "c", undefined, mark);
    expect(restarted.level).toBe("warn");
    expect(restarted.incarnation as number).toBeGreaterThan(restarted.previousIncarnation as number);
    expect(up).toMatchObject({ previous: "down" });
    expect(monitor.events.indexOf(restarted)).toBeLessThan(monitor.events.indexOf(up));
  });
});
