// What may change a node's state: a datagram or a deadline, never a reload; and the durations
// reported are never negative.
import { describe, expect, it } from "vitest";
import { Harness, config } from "../support/monitor-harness.js";

const reload = (h: Harness, yaml: string): void =>
  void h.monitor.reload({ config: config(yaml), keyring: new Map() });
const stateOf = (h: Harness, node: string): string | undefined =>
  h.monitor.status().nodes.find((n) => n.node === node)?.state;

describe("a reload", () => {
  it("keeps a down node down when its timeout is raised, until its next datagram; downMs is then exact", async () => {
    const h = await Harness.start(`nodes: { a: { timeout: 10s } }`);
    const t0 = h.clock.monoMs();
    h.beat("a");
    h.clock.advanceTo(t0 + 10_000);
    expect(h.of("node.down", "a")).toHaveLength(1);
    reload(h, `nodes: { a: { timeout: 1m } }`);
    expect(stateOf(h, "a")).toBe("down");
    expect(h.monitor.counts().down).toBe(1);
    h.clock.advanceTo(t0 + 12_000);
    h.beat("a");
    const [up] = h.of("node.up", "a").slice(-1);
    expect(up).toMatchObject({ previous: "down", downMs: 2000 });
  });

  it("keeps a late node late when its late threshold is raised, until its next datagram", async () => {
    const h = await Harness.start(`nodes: { a: { late: 2s, timeout: 10s } }`);
    const t0 = h.clock.monoMs();
    h.beat("a");
    h.clock.advanceTo(t0 + 2000);
    expect(h.of("node.late", "a")).toHaveLength(1);
    reload(h, `nodes: { a: { late: 8s, timeout: 10s } }`);
    expect(stateOf(h, "a")).toBe("late");
    h.clock.advanceTo(t0 + 10_000);
    expect(h.of("node.down", "a")).toHaveLength(1);
    expect(h.names("a")).toEqual(["node.up", "node.late", "node.down"]);
  });

  it("lets a lowered timeout take effect at the new deadline, as a deadline", async () => {
    const h = await Harness.start(`nodes: { a: { timeout: 1m } }`);
    const t0 = h.clock.monoMs();
    h.beat("a");
    h.clock.advanceTo(t0 + 15_000);
    reload(h, `nodes: { a: { timeout: 10s } }`);
    h.clock.advanceTo(t0 + 15_001);
    expect(h.names("a")).toEqual(["node.up", "node.late", "node.down"]);
    expect(h.of("node.down", "a")[0]).toMatchObject({ timeoutMs: 10_000 });
  });
});
