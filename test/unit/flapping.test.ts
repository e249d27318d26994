// A node that changes state too often is reported once as flapping and again when it settles:
// journal lines are bounded by nodes and windows, never by datagrams.
import { describe, expect, it } from "vitest";
import { FLAP_CHANGES, FLAP_WINDOW_MS } from "../../src/monitor/flapping.js";
import { Kind, encode } from "../../src/wire/protocol.js";
import { Harness } from "../support/monitor-harness.js";

describe("flap damping", () => {
  it("reports a crash-looping node once as flapping, keeps its restarts quiet, and reports it when it settles", async () => {
    const h = await Harness.start(`nodes: { a: {} }`);
    const t0 = h.clock.monoMs();
    const wall0 = h.clock.wallMs();
    // 40 000 datagrams, each from a new incarnation: a restart every 10 ms.
    for (let i = 0; i < 40_000; i++) {
      h.clock.advanceTo(t0 + i * 10);
      h.socket.deliver(
        encode({ kind: Kind.BEAT, nodeId: "a", incarnation: wall0 - 50_000 + i, sequence: 1 }),
      );
    }
    const lines = h.names("a");
    expect(lines.length).toBeLessThan(20);
    expect(h.of("node.restarted", "a")).toHaveLength(FLAP_CHANGES);
    expect(h.of("node.flapping", "a")).toMatchObject([{ settled: false, windowMs: FLAP_WINDOW_MS }]);
    expect(h.monitor.status().nodes[0]).toMatchObject({ state: "up", restarts: 39_999 });
    // It stops restarting and keeps beating: settled, up, one window after its last change.
    const last = t0 + 39_999 * 10;
    for (let s = 1; s <= 70; s++) {
      h.clock.advanceTo(last + s * 1000);
      h.beat("a", { incarnation: wall0 + 1 });
    }
    expect(h.of("node.flapping", "a").at(-1)).toMatchObject({ settled: true, state: "up" });
  });

  it("pages a flapping node that dies, once it has been quiet for a window", async () => {
    const h = await Harness.start(`nodes: { a: { late: 200ms, timeout: 500ms, interval: 100ms } }`);
    const t0 = h.clock.monoMs();
    // up, late, down, up ... every 600 ms
    let t = t0;
    for (let cycle = 0; cycle < 5; cycle++) {
      h.clock.advanceTo(t);
      h.beat("a");
      t += 600;
    }
    expect(h.of("node.flapping", "a")).toHaveLength(1);
    const downsWhileFlapping = h.of("node.down", "a").length;
    h.clock.advanceTo(t + FLAP_WINDOW_MS + 1000);
    expect(h.of("node.flapping", "a").at(-1)).toMatchObject({ settled: true, state: "down" });
    expect(h.of("node.down", "a")).toHaveLength(downsWhileFlapping + 1);
    expect(h.monitor.status().nodes[0]!.state).toBe("down");
  });

  it("leaves a node that changes state now and then alone", async () => {
    const h = await Harness.start(`nodes: { a: {} }`);
    const t0 = h.clock.monoMs();
    for (let i = 0; i < 10; i++) {
      h.clock.advanceTo(t0 + i * 120_000);
      h.beat("a"); // late, down and back every two minutes: below the threshold
    }
    expect(h.of("node.flapping")).toEqual([]);
    expect(h.of("node.down", "a")).toHaveLength(9);
  });
});

describe("journal lines about unlisted nodes", () => {
  it("are budgeted: a flood of first contacts gives at most 100 lines a second and one summary", async () => {
    const listed = Array.from({ length: 300 }, (_, i) => `l${i}`);
    const h = await Harness.start(
      `max_nodes: 10000\nnodes:\n${listed.map((id) => `  ${id}: {}`).join("\n")}\n`,
    );
    const t0 = h.clock.monoMs();
    for (const id of listed) h.beat(id);
    for (let i = 0; i < 5000; i++) h.beat(`random-${i}`);
    h.clock.advanceTo(t0 + 1000);
    // A monitor starting in front of its fleet hears everyone at once: new -> up is budgeted,
    // listed or not.
    expect(h.of("node.up")).toHaveLength(100);
    expect(h.of("nodes.summarized")).toMatchObject([{ counts: { "node.up": 5200 }, total: 5200 }]);
    expect(h.monitor.status().counts.up).toBe(5300); // tracked all the same
  });

  it("are never budgeted for a listed node's later changes: down, back up", async () => {
    const listed = Array.from({ length: 300 }, (_, i) => `l${i}`);
    const h = await Harness.start(`nodes:\n${listed.map((id) => `  ${id}: {}`).join("\n")}\n`);
    const t0 = h.clock.monoMs();
    for (const id of listed) h.beat(id);
    h.clock.advanceTo(t0 + 10_000);
    expect(h.of("node.down")).toHaveLength(300);
    for (const id of listed) h.beat(id);
    expect(h.of("node.up").filter((e) => e.previous === "down")).toHaveLength(300);
  });
});
