import { describe, expect, it } from "vitest";
import { Harness } from "../support/monitor-harness.js";

// Built-in thresholds: interval 1s, late 5s, timeout 10s, startup grace 2 x 10s.
const ONE_NODE = `nodes: { "a": {} }`;

describe("deadlines", () => {
  it("declares a node late at exactly lastSeen + late and down at exactly lastSeen + timeout", async () => {
    const h = await Harness.start(ONE_NODE);
    const t0 = h.clock.monoMs();
    h.beat("a");
    h.clock.advanceTo(t0 + 4999);
    expect(h.of("node.late")).toEqual([]);
    h.clock.advanceTo(t0 + 5000);
    expect(h.of("node.late")).toEqual([
      { event: "node.late", t: t0 + 5000, node: "a", silentMs: 5000, lateMs: 5000 },
    ]);
    h.clock.advanceTo(t0 + 9999);
    expect(h.of("node.down")).toEqual([]);
    h.clock.advanceTo(t0 + 10_000);
    expect(h.of("node.down").map((e) => e.t)).toEqual([t0 + 10_000]);
  });

  it("reports node.down with lastSeen, silentMs, timeoutMs and at = lastSeen + timeout in epoch ms", async () => {
    const h = await Harness.start(ONE_NODE);
    const t0 = h.clock.monoMs();
    const wallAtBeat = h.clock.wallMs();
    h.beat("a");
    h.clock.advanceTo(t0 + 10_000);
    const [down] = h.of("node.down");
    expect(down).toMatchObject({
      node: "a",
      lastSeen: wallAtBeat,
      silentMs: 10_000,
      timeoutMs: 10_000,
      at: wallAtBeat + 10_000,
    });
  });

  it("keeps a node up when its heartbeat arrives in the last millisecond before the deadline", async () => {
    const h = await Harness.start(ONE_NODE);
    const t0 = h.clock.monoMs();
    h.beat("a");
    h.clock.advanceTo(t0 + 9999);
    h.beat("a");
    h.clock.advanceTo(t0 + 9999 + 9999);
    expect(h.of("node.down")).toEqual([]);
    expect(h.names("a")).toEqual(["node.up", "node.late", "node.up", "node.late"]);
    h.clock.advanceTo(t0 + 9999 + 10_000);
    expect(h.of("node.down").map((e) => e.t)).toEqual([t0 + 9999 + 10_000]);
  });

  it("fires each of 10 000 nodes with different timeouts at its own deadline", async () => {
    const count = 10_000;
    const timeoutOf = (i: number) => 3000 + i; // 10 000 distinct timeouts, all > 2 x the 1s interval
    const yaml = `nodes:\n${Array.from({ length: count }, (_, i) => `  n${i}: { timeout: ${timeoutOf(i)}ms }`).join("\n")}\n`;
    const h = await Harness.start(yaml);
    const t0 = h.clock.monoMs();
    const lastSeen = new Map<string, number>();
    // Heartbeats spread over one second, in an order unrelated to the timeouts.
    const order = Array.from({ length: count }, (_, i) => (i * 7919) % count);
    for (let k = 0; k < count; k++) {
      const i = order[k]!;
      h.clock.advanceTo(t0 + Math.floor((k * 1000) / count));
      h.beat(`n${i}`);
      lastSeen.set(`n${i}`, h.clock.monoMs());
    }
    h.clock.advanceTo(t0 + 1000 + timeoutOf(count));
    const downs = h.of("node.down");
    const lates = h.of("node.late");
    expect(downs).toHaveLength(count);
    expect(lates).toHaveLength(count);
    for (const e of downs) {
      const i = Number(e.node.slice(1));
      expect(e.t - lastSeen.get(e.node)!, e.node).toBe(timeoutOf(i));
    }
    for (const e of lates) {
      const i = Number(e.node.slice(1));
      expect(e.t - lastSeen.get(e.node)!, e.node).toBe(Math.floor(timeoutOf(i) / 2));
    }
  });

  it("is not moved by a wall-clock jump in either direction", async () => {
    const h = await Harness.start(ONE_NODE);
    const t0 = h.clock.monoMs();
    h.beat("a");
    h.clock.jumpWall(3_600_000);
    h.clock.advanceTo(t0 + 3000);
    h.clock.jumpWall(-7_200_000);
    h.clock.advanceTo(t0 + 9999);
    expect(h.names()).toEqual(["node.up", "node.late"]);
    expect(h.of("node.late")[0]!.t).toBe(t0 + 5000);
    h.clock.advanceTo(t0 + 10_000);
    expect(h.of("node.down").map((e) => [e.t, e.silentMs])).toEqual([[t0 + 10_000, 10_000]]);
  });

  it("does not wake up while idle, and wakes about once per late period while nodes beat, not once per node", async () => {
    const idle = await Harness.start(`nodes: {}`);
    idle.clock.advance(600_000);
    expect(idle.clock.fired).toBe(0);
    expect(idle.clock.pendingTimers).toBe(0);

    const nodes = Array.from({ length: 1000 }, (_, i) => `n${i}`);
    const h = await Harness.start(`nodes: {}`);
    const t0 = h.clock.monoMs();
    for (let s = 0; s < 60; s++) {
      for (const [i, n] of nodes.entries()) {
        h.clock.advanceTo(t0 + s * 1000 + i);
        h.beat(n);
      }
    }
    expect(h.of("node.late")).toEqual([]);
    // Deadlines are 5s (late) after the oldest heartbeat: about one wake-up per 4s, not 1000 per second.
    expect(h.clock.fired).toBeLessThanOrEqual(20);
  });
});

describe("states and transitions", () => {
  it("keeps expected-but-unheard nodes new through the startup grace, then reports each down once", async () => {
    const h = await Harness.start(`startup_grace: 30s\nnodes: { "a": {}, "b": {} }`);
    const t0 = h.clock.monoMs();
    h.clock.advanceTo(t0 + 29_999);
    expect(h.monitor.counts()).toMatchObject({ new: 2, down: 0 });
    expect(h.events).toEqual([]);
    h.clock.advanceTo(t0 + 30_000);
    expect(h.of("node.down").map((e) => [e.node, e.t, e.lastSeen, e.silentMs])).toEqual([
      ["a", t0 + 30_000, null, 30_000],
      ["b", t0 + 30_000, null, 30_000],
    ]);
    h.clock.advance(60_000);
    expect(h.of("node.down")).toHaveLength(2);
    h.beat("a");
    expect(h.of("node.up", "a")[0]).toMatchObject({ previous: "down", downMs: 60_000 });
  });

  it("accepts unlisted senders with the default thresholds when unknown_nodes is accept", async () => {
    const h = await Harness.start(`unknown_nodes: accept`);
    h.beat("stranger");
    expect(h.of("node.up")).toMatchObject([{ node: "stranger", previous: "new", from: "127.0.0.1:5000" }]);
    expect(h.monitor.status().nodes[0]).toMatchObject({
      node: "stranger",
      expected: false,
      timeoutMs: 10_000,
    });
  });

  it("refuses unlisted senders when unknown_nodes is ignore", async () => {
    const h = await Harness.start(`unknown_nodes: ignore\nnodes: { "a": {} }`);
    h.beat("stranger");
    h.beat("a");
    expect(h.names()).toEqual(["node.up"]);
    expect(h.monitor.status().datagrams.rejected.unknown_node).toBe(1);
  });

  it("makes a node left immediately on leave, never down afterwards, and up again when it returns", async () => {
    const h = await Harness.start(ONE_NODE);
    h.beat("a");
    h.clock.advance(1000);
    h.leave("a");
    expect(h.names("a")).toEqual(["node.up", "node.left"]);
    h.clock.advance(120_000);
    expect(h.names("a")).toEqual(["node.up", "node.left"]);
    expect(h.monitor.counts().left).toBe(1);
    h.beat("a", { incarnation: 2 });
    expect(h.names("a")).toEqual(["node.up", "node.left", "node.up"]);
    expect(h.of("node.up", "a")[1]).toMatchObject({ previous: "left" });
  });

  it("reports a new incarnation as restarted and counts restarts, without an up event if it never went away", async () => {
    const h = await Harness.start(ONE_NODE);
    h.beat("a", { incarnation: 100 });
    h.clock.advance(1000);
    h.beat("a", { incarnation: 200 });
    expect(h.names("a")).toEqual(["node.up", "node.restarted"]);
    expect(h.of("node.restarted")[0]).toMatchObject({ incarnation: 200, previousIncarnation: 100 });
    expect(h.monitor.status().nodes[0]).toMatchObject({ restarts: 1, incarnation: 200 });
  });

  it("refuses a repeated or older sequence, and an older incarnation, as replays that do not refresh lastSeen", async () => {
    const h = await Harness.start(ONE_NODE);
    const t0 = h.clock.monoMs();
    const first = h.beat("a", { incarnation: 5 });
    h.beat("a", { incarnation: 5 });
    h.clock.advanceTo(t0 + 9000);
    h.socket.deliver(first);
    h.beat("a", { incarnation: 4 });
    h.clock.advanceTo(t0 + 10_000);
    expect(h.monitor.status().datagrams.rejected.replay).toBe(2);
    expect(h.of("node.down")).toHaveLength(1);
    expect(h.of("node.restarted")).toEqual([]);
  });

  it("derives loss from sequence gaps", async () => {
    const h = await Harness.start(ONE_NODE);
    const { encode, Kind } = await import("../../src/wire/protocol.js");
    for (const sequence of [1, 2, 5, 6])
      h.socket.deliver(encode({ kind: Kind.BEAT, nodeId: "a", incarnation: 1, sequence }));
    expect(h.monitor.status().nodes[0]).toMatchObject({ received: 4, lost: 2, lossPct: 33.33 });
  });

  it("never reports a paused node late or down, but still records its heartbeats", async () => {
    const h = await Harness.start(`nodes: { "db": { paused: true } }`);
    h.clock.advance(100_000);
    h.beat("db");
    h.clock.advance(100_000);
    expect(h.events).toEqual([]);
    expect(h.monitor.status().nodes[0]).toMatchObject({ state: "paused", received: 1 });
  });

  it("derives the state from timestamps at any instant, between the timer's firings too", async () => {
    const h = await Harness.start(ONE_NODE);
    const t0 = h.clock.monoMs();
    h.beat("a");
    const stateAt = (t: number) => {
      h.clock.freeze(t - h.clock.monoMs());
      return h.monitor.status().nodes[0]!.state;
    };
    expect([stateAt(t0 + 4999), stateAt(t0 + 5000), stateAt(t0 + 9999), stateAt(t0 + 10_000)]).toEqual([
      "up",
      "late",
      "late",
      "down",
    ]);
  });
});

describe("a planned restart is not a crash", () => {
  it("reports a node that left and returns with a new incarnation as up from left, without restarted", async () => {
    const h = await Harness.start(ONE_NODE);
    h.beat("a", { incarnation: 1 });
    h.clock.advance(1000);
    h.leave("a", 1);
    h.clock.advance(2000);
    h.beat("a", { incarnation: 2 });
    expect(h.names("a")).toEqual(["node.up", "node.left", "node.up"]);
    expect(h.of("node.up", "a")[1]).toMatchObject({ previous: "left" });
    expect(h.monitor.status().nodes[0]).toMatchObject({ state: "up", incarnation: 2, restarts: 0 });
  });

  it("reports a new incarnation without a leave (a crash systemd restarted) as restarted, then up from down", async () => {
    const h = await Harness.start(ONE_NODE);
    h.beat("a", { incarnation: 1 });
    h.clock.advance(12_000);
    h.beat("a", { incarnation: 2 });
    expect(h.names("a")).toEqual(["node.up", "node.late", "node.down", "node.restarted", "node.up"]);
    expect(h.of("node.up", "a")[1]).toMatchObject({ previous: "down" });
    expect(h.monitor.status().nodes[0]).toMatchObject({ restarts: 1 });
  });

  it("still reports a crash as restarted when the node beat again after a leave of the same incarnation", async () => {
    // A leave the node did not send (forged, or a stray `hb send --leave`) is taken back by the
    // node's own next beat: it did not stop, so its next start is a crash again.
    const h = await Harness.start(ONE_NODE);
    h.beat("a", { incarnation: 1 });
    h.leave("a", 1);
    h.clock.advance(1000);
    h.beat("a", { incarnation: 1 });
    h.clock.advance(1000);
    h.beat("a", { incarnation: 2 });
    expect(h.names("a")).toEqual(["node.up", "node.left", "node.up", "node.restarted"]);
  });

  it("reports a listed node that left a day ago and returns as up from left, without restarted", async () => {
    const h = await Harness.start(ONE_NODE);
    h.beat("a", { incarnation: 1 });
    h.leave("a", 1);
    h.clock.advance(24 * 3_600_000);
    expect(h.monitor.status().nodes[0]!.state).toBe("left");
    h.beat("a", { incarnation: 2 });
    expect(h.names("a")).toEqual(["node.up", "node.left", "node.up"]);
  });

  it("reports an unlisted node forgotten after its leave as a first contact when it returns, without restarted", async () => {
    const h = await Harness.start(`forget_after: 1m`);
    h.beat("x", { incarnation: 1 });
    h.leave("x", 1);
    h.clock.advance(61_000);
    expect(h.names("x")).toEqual(["node.up", "node.left", "node.forgotten"]);
    h.beat("x", { incarnation: 2 });
    expect(h.names("x")).toEqual(["node.up", "node.left", "node.forgotten", "node.up"]);
    expect(h.of("node.up", "x")[1]).toMatchObject({ previous: "new" });
  });

  it("reports an unlisted node forgotten after it went down as restarted when it returns with a new incarnation", async () => {
    const h = await Harness.start(`forget_after: 1m`);
    h.beat("x", { incarnation: 1 });
    h.clock.advance(71_000);
    expect(h.names("x")).toEqual(["node.up", "node.late", "node.down", "node.forgotten"]);
    h.beat("x", { incarnation: 2 });
    expect(h.names("x").slice(4)).toEqual(["node.restarted", "node.up"]);
  });

  it("counts a planned restart as two changes toward flapping (left, up), not three", async () => {
    const h = await Harness.start(ONE_NODE);
    // Three stop-and-start cycles within a minute: six changes, not more than FLAP_CHANGES.
    for (let incarnation = 1; incarnation <= 3; incarnation++) {
      h.beat("a", { incarnation });
      h.clock.advance(1000);
      h.leave("a", incarnation);
      h.clock.advance(1000);
    }
    h.beat("a", { incarnation: 4 });
    expect(h.of("node.flapping")).toEqual([]);
    expect(h.of("node.restarted")).toEqual([]);
    expect(h.names("a").filter((e) => e === "node.left")).toHaveLength(3);
  });
});

describe("stall guard", () => {
  it("reads the heartbeats queued during a freeze before judging, and reports one monitor.stalled and no down", async () => {
    const h = await Harness.start(`nodes: { "a": {}, "b": {} }`);
    const t0 = h.clock.monoMs();
    h.beat("a");
    h.beat("b");
    h.clock.advanceTo(t0 + 1000);
    h.clock.freeze(25_000); // frozen well past every timeout while the nodes kept sending
    h.clock.advance(0); // the overdue timer fires first on resume...
    h.beat("a"); // ...and the queued datagrams are read before judgement
    h.beat("b");
    for (let s = 0; s < 30; s++) {
      h.clock.advance(1000);
      h.beat("a");
      h.beat("b");
    }
    expect(h.of("node.down")).toEqual([]);
    expect(h.of("node.late")).toEqual([]);
    expect(h.of("monitor.stalled")).toHaveLength(1);
    expect(h.of("monitor.stalled")[0]!.stalledMs).toBeGreaterThan(20_000);
  });

  it("still reports a node that was already dead, once the post-stall hold has passed", async () => {
    const h = await Harness.start(`nodes: { "alive": {}, "dead": {} }`);
    const t0 = h.clock.monoMs();
    h.beat("alive");
    h.beat("dead");
    h.clock.freeze(30_000);
    h.clock.advance(0);
    expect(h.of("monitor.stalled")).toHaveLength(1);
    const hold = h.of("monitor.stalled")[0]!.holdMs;
    expect(h.of("node.down")).toEqual([]);
    h.clock.advance(hold / 2);
    h.beat("alive");
    h.clock.advance(hold);
    expect(h.of("node.down").map((e) => e.node)).toEqual(["dead"]);
    expect(h.of("node.down")[0]!.at).toBe(h.clock.wallMs() - h.clock.monoMs() + t0 + 10_000);
  });
});

describe("reload", () => {
  it("applies new thresholds to nodes already being watched", async () => {
    const h = await Harness.start(ONE_NODE);
    const t0 = h.clock.monoMs();
    h.beat("a");
    const { config } = await import("../support/monitor-harness.js");
    h.monitor.reload({ config: config(`nodes: { "a": { timeout: 30s } }`), keyring: new Map() });
    expect(h.of("config.reloaded")[0]!.changes).toEqual([
      "startup_grace: 20s -> 1m",
      "nodes.a: timeout 10s -> 30s, late 5s -> 15s",
    ]);
    h.clock.advanceTo(t0 + 29_999);
    expect(h.of("node.down")).toEqual([]);
    h.clock.advanceTo(t0 + 30_000);
    expect(h.of("node.down").map((e) => e.t)).toEqual([t0 + 30_000]);
  });

  it("gives a newly listed node its own startup grace", async () => {
    const h = await Harness.start(`startup_grace: 20s\nnodes: {}`);
    h.clock.advance(50_000);
    const { config } = await import("../support/monitor-harness.js");
    h.monitor.reload({
      config: config(`startup_grace: 20s\nnodes: { "late-comer": {} }`),
      keyring: new Map(),
    });
    h.clock.advance(19_999);
    expect(h.of("node.down")).toEqual([]);
    h.clock.advance(1);
    expect(h.of("node.down").map((e) => e.node)).toEqual(["late-comer"]);
  });
});
