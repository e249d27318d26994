// What may change a node's state: a datagram or a deadline, never a reload; and the durations
// reported are never negative.
import { describe, expect, it } from "vitest";
import { MAX_HELD } from "../../src/monitor/reload.js";
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

/** A config of `n` listed nodes n0..n(n-1) with one timeout, plus `extra` lines under nodes. */
function listed(n: number, timeout: string, extra: string[] = []): string {
  const lines = ["max_nodes: 1000000", "startup_grace: 1m", "defaults: { interval: 1s }", "nodes:"];
  for (let i = 0; i < n; i++) lines.push(`  n${i}: { timeout: ${timeout} }`);
  return [...lines, ...extra].join("\n") + "\n";
}

describe("a reload staged over several turns of the loop", () => {
  /**
   * Reloads `yaml` one step (about a thousand nodes) per turn; `between(k)` runs at the k-th
   * pause. Returns the pauses taken.
   */
  async function reloadInTurns(h: Harness, yaml: string, between: (k: number) => void): Promise<number> {
    let pauses = 0;
    const pause = (): Promise<void> => {
      between(pauses++);
      return Promise.resolve();
    };
    await h.monitor.reloadInTurns({ config: config(yaml), keyring: new Map() }, pause, 0);
    return pauses;
  }

  it("goes on judging by the current config until the swap, which is reported once", async () => {
    const h = await Harness.start(listed(20_000, "10s"));
    const t0 = h.clock.monoMs();
    h.beat("n0");
    const seen: string[] = [];
    const pauses = await reloadInTurns(h, listed(20_000, "3s"), (k) => {
      if (k === 0) {
        // Past the new timeout, not the old one: still up while the reload is being prepared.
        h.clock.advanceTo(t0 + 5000);
        seen.push(stateOf(h, "n0")!);
      }
      expect(h.of("config.reloaded")).toEqual([]);
    });
    expect(pauses).toBeGreaterThan(1);
    expect(seen).toEqual(["late"]);
    expect(h.of("config.reloaded")).toHaveLength(1);
    // Swapped in at t0 + 5 s: its 3 s timeout has passed, and the deadline is judged at once.
    expect(h.of("node.down", "n0")).toMatchObject([{ timeoutMs: 3000 }]);
  });

  it("keeps what datagrams did meanwhile: a node heard as unlisted, a node forgotten, a new sender", async () => {
    const h = await Harness.start(listed(20_000, "10s"));
    h.beat("n1");
    h.beat("n2");
    // At every pause, so also while the detector's lookups are being staged.
    const pauses = await reloadInTurns(h, listed(20_000, "10s", ["  newcomer: {}", "  early: {}"]), () => {
      h.beat("early"); // listed by the new config, heard before it is swapped in
      h.beat("stranger"); // listed by neither
      expect(h.monitor.forget("n2")).toBe(true);
    });
    expect(pauses).toBeGreaterThan(2);
    const nodes = new Map(h.monitor.status().nodes.map((n) => [n.node, n]));
    expect(nodes.get("early")).toMatchObject({ state: "up", expected: true, received: pauses });
    expect(nodes.get("newcomer")).toMatchObject({ state: "new", expected: true });
    expect(nodes.get("stranger")).toMatchObject({ state: "up", expected: false, received: pauses });
    expect(nodes.get("n1")).toMatchObject({ state: "up", received: 1 });
    expect(nodes.get("n2")).toMatchObject({ state: "new", received: 0 });
    expect(h.monitor.nodeCount).toBe(20_003);
    // Each node is in the table once, and every id finds its own slot.
    expect(new Set(h.monitor.status().nodes.map((n) => n.node)).size).toBe(20_003);
    h.beat("early");
    expect(h.monitor.status().nodes.find((n) => n.node === "early")).toMatchObject({ received: pauses + 1 });
  });

  it("never adds a node twice when the staged lookups went stale", async () => {
    const h = await Harness.start(listed(10, "10s"));
    let heard = 10;
    const pauses = await reloadInTurns(h, listed(10_000, "10s"), () => {
      // New nodes are heard (as unlisted ones) at every pause: before and after their lookup.
      for (const end = Math.min(heard + 400, 10_000); heard < end; heard++) h.beat(`n${heard}`);
    });
    expect(pauses).toBeGreaterThanOrEqual(15);
    const nodes = h.monitor.status().nodes;
    expect(nodes).toHaveLength(10_000);
    expect(nodes.filter((n) => n.state === "up")).toHaveLength(heard - 10);
    expect(nodes.every((n) => n.expected)).toBe(true);
  });
});

describe("while a reload's config is applied", () => {
  it("holds datagrams and forgets, takes them in order once the config is whole, then judges", async () => {
    const extra = ["  x: { interval: 500ms, timeout: 2s }", "  y: { interval: 500ms, timeout: 2s }"];
    const h = await Harness.start(listed(20_000, "10s", extra));
    const t0 = h.clock.monoMs();
    for (const id of ["x", "y", "n5"]) h.beat(id);
    let heldPauses = 0;
    await h.monitor.reloadInTurns(
      { config: config(listed(20_000, "10s", extra)), keyring: new Map() },
      () => {
        const before = h.monitor.status({ nodes: false }).datagrams;
        h.beat("probe");
        const after = h.monitor.status({ nodes: false }).datagrams;
        // Read but not yet taken in: the config is being applied.
        if (after.received > before.received && after.accepted === before.accepted) {
          if (heldPauses++ === 0) {
            // Past x's and y's deadlines while nothing is judged; y is heard, x is not.
            h.clock.advanceTo(t0 + 2500);
            h.beat("y");
            // An operator forgets n5, whose next heartbeat then comes: in that order.
            expect(h.monitor.forget("n5")).toBe(true);
            h.beat("n5");
            expect(h.of("node.down")).toEqual([]);
            // The nodes can be read meanwhile.
            expect(h.monitor.status().nodes).toHaveLength(20_004);
          }
        }
        return Promise.resolve();
      },
      0,
    );
    expect(heldPauses).toBeGreaterThan(3);
    // x stayed silent: judged once the config is whole, at its exact deadline.
    const wall = h.clock.wallMs() - h.clock.monoMs();
    expect(h.names("x")).toEqual(["node.up", "node.late", "node.down"]);
    expect(h.of("node.down", "x")[0]).toMatchObject({ timeoutMs: 2000, at: wall + t0 + 2000 });
    // y's deadline fell while nothing was judged, and its heartbeat came before the socket was
    // next found empty: like a stall, silence the monitor could not judge is never a down.
    expect(h.names("y")).toEqual(["node.up"]);
    expect(h.monitor.status().nodes.find((n) => n.node === "y")).toMatchObject({ state: "up", received: 2 });
    // The forget came first, then the heartbeat: n5 is up, with one datagram since.
    expect(h.of("node.forgotten", "n5")).toHaveLength(1);
    expect(h.monitor.status().nodes.find((n) => n.node === "n5")).toMatchObject({ state: "up", received: 1 });
    expect(h.names().slice(-1)).toEqual(["config.reloaded"]);
    const { datagrams } = h.monitor.status({ nodes: false });
    expect(datagrams.accepted).toBe(datagrams.received);
  });

  it("is finished even when the caller stops during it, and nothing is judged after a stop", async () => {
    const h = await Harness.start(listed(20_000, "10s"));
    let applying = false;
    const reload = h.monitor.reloadInTurns(
      { config: config(listed(20_000, "10s", ["  extra: {}"])), keyring: new Map() },
      () => {
        const before = h.monitor.status({ nodes: false }).datagrams;
        h.beat("probe");
        const after = h.monitor.status({ nodes: false }).datagrams;
        applying ||= after.received > before.received && after.accepted === before.accepted;
        return applying ? Promise.reject(new Error("stopping")) : Promise.resolve();
      },
      0,
    );
    await expect(reload).resolves.toContain("nodes.extra: added (interval 1s, timeout 10s, late 5s)");
    expect(applying).toBe(true);
    expect(h.monitor.status().nodes).toHaveLength(20_002);
    await h.monitor.close();
    h.beat("late-comer");
    h.clock.advance(60_000);
    expect(h.of("node.down")).toEqual([]);
  });
});

describe("datagrams held while a config is applied", () => {
  it("are bounded: past the bound they are let go, and the monitor says it was overloaded", async () => {
    const h = await Harness.start(listed(10_000, "10s"));
    const msg = h.beat("probe");
    let flooded = false;
    await h.monitor.reloadInTurns(
      { config: config(listed(10_000, "20s")), keyring: new Map() },
      () => {
        const before = h.monitor.status({ nodes: false }).datagrams;
        h.beat("probe");
        const held = h.monitor.status({ nodes: false }).datagrams.accepted === before.accepted;
        if (held && !flooded) {
          flooded = true;
          // The same bytes again and again: each is read (and held), then refused as a replay.
          for (let i = 0; i < MAX_HELD + 100; i++) h.socket.deliver(msg);
        }
        return Promise.resolve();
      },
      0,
    );
    expect(flooded).toBe(true);
    expect(h.of("monitor.overloaded")).toMatchObject([{ cause: "backlog" }]);
    const { datagrams } = h.monitor.status({ nodes: false });
    expect(datagrams.rejected.replay).toBe(MAX_HELD - 1);
  });
});
