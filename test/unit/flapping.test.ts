// A node that changes state too often is reported once as flapping and again when it settles;
// meanwhile its downs and returns from down are written as ever, the rest is kept quiet: journal
// lines are bounded by nodes, windows and timeouts, never by datagrams.
import { describe, expect, it } from "vitest";
import { FLAP_CHANGES, FLAP_WINDOW_MS } from "../../src/monitor/flapping.js";
import { Kind, encode } from "../../src/wire/protocol.js";
import { Harness } from "../support/monitor-harness.js";
import { prng } from "../support/prng.js";

describe("flap damping", () => {
  /** Up, late, down and back every 600 ms: three changes a cycle, each down after 500 ms of silence. */
  const FAST = `nodes: { a: { interval: 100ms, late: 200ms, timeout: 500ms } }`;

  it("writes a flapping node's every down, and its every return from down, to the journal when it happens", async () => {
    const h = await Harness.start(FAST);
    const t0 = h.clock.monoMs();
    const beats = Array.from({ length: 10 }, (_, i) => t0 + i * 600);
    for (const t of beats) {
      h.clock.advanceTo(t);
      h.beat("a");
    }
    h.clock.advanceTo(beats.at(-1)! + 600);
    expect(h.of("node.flapping", "a")).toMatchObject([{ settled: false }]);
    expect(h.of("node.down", "a").map((e) => e.t)).toEqual(beats.map((t) => t + 500));
    const returns = h.of("node.up", "a").filter((e) => e.previous === "down");
    expect(returns.map((e) => e.t)).toEqual(beats.slice(1));
    expect(returns.every((e) => e.downMs === 100)).toBe(true);
    // What nothing else bounds is damped: the lates stop once it is flapping.
    expect(h.of("node.late", "a")).toHaveLength(2);
  });

  it("says node.flapping first when a down is the change that makes a node flapping", async () => {
    const h = await Harness.start(FAST);
    const t0 = h.clock.monoMs();
    h.beat("a");
    h.clock.advanceTo(t0 + 300); // late, then back up: two changes
    h.beat("a");
    for (let t = t0 + 900; t <= t0 + 2100; t += 600) {
      h.clock.advanceTo(t);
      h.beat("a");
    }
    // late, up, late, down, up, late, down: the seventh change is a down.
    expect(h.names("a")).toEqual([
      "node.up",
      "node.late",
      "node.up",
      "node.late",
      "node.down",
      "node.up",
      "node.late",
      "node.flapping",
      "node.down",
      "node.up",
      "node.down",
      "node.up",
    ]);
    expect(h.of("node.flapping", "a")).toMatchObject([{ settled: false, state: "down" }]);
  });

  it("keeps a flapping node's late-and-back wobble out of the journal and counts it when it settles", async () => {
    const h = await Harness.start(FAST);
    const t0 = h.clock.monoMs();
    // A heartbeat every 300 ms: late at 200 ms, up again at 300 ms, 99 times.
    for (let i = 0; i < 100; i++) {
      h.clock.advanceTo(t0 + i * 300);
      h.beat("a");
    }
    const last = t0 + 99 * 300;
    expect(h.names("a")).toEqual([
      "node.up",
      "node.late",
      "node.up",
      "node.late",
      "node.up",
      "node.late",
      "node.up",
      "node.flapping",
    ]);
    for (let t = last + 100; t <= last + FLAP_WINDOW_MS + 1000; t += 100) {
      h.clock.advanceTo(t);
      h.beat("a");
    }
    expect(h.of("node.flapping", "a")).toMatchObject([
      { settled: false, state: "late", changes: FLAP_CHANGES + 1, windowMs: FLAP_WINDOW_MS },
      { settled: true, state: "up", changes: 198, windowMs: FLAP_WINDOW_MS, t: last + FLAP_WINDOW_MS },
    ]);
    expect(h.names("a")).toHaveLength(9);
  });

  it("does not write a flapping node's down a second time when it settles down", async () => {
    const h = await Harness.start(FAST);
    const t0 = h.clock.monoMs();
    for (let cycle = 0; cycle < 5; cycle++) {
      h.clock.advanceTo(t0 + cycle * 600);
      h.beat("a");
    }
    const last = t0 + 4 * 600;
    h.clock.advanceTo(last + 600);
    expect(h.of("node.flapping", "a")).toHaveLength(1);
    expect(h.of("node.down", "a")).toHaveLength(5);
    h.clock.advanceTo(last + 500 + FLAP_WINDOW_MS + 1000);
    expect(h.of("node.flapping", "a").at(-1)).toMatchObject({
      settled: true,
      state: "down",
      t: last + 500 + FLAP_WINDOW_MS,
    });
    expect(h.names("a").at(-1)).toBe("node.flapping");
    expect(h.of("node.down", "a")).toHaveLength(5);
    expect(h.monitor.status().nodes[0]!.state).toBe("down");
  });

  it("writes at most 20 journal lines about a node that restarts 1 000 times in 60 s", async () => {
    const h = await Harness.start(`nodes: { a: {} }`);
    const t0 = h.clock.monoMs();
    const wall0 = h.clock.wallMs();
    for (let i = 0; i <= 1000; i++) {
      h.clock.advanceTo(t0 + i * 60);
      h.socket.deliver(
        encode({ kind: Kind.BEAT, nodeId: "a", incarnation: wall0 - 100_000 + i, sequence: 1 }),
      );
    }
    expect(h.monitor.status().nodes[0]).toMatchObject({ state: "up", restarts: 1000 });
    // It stops restarting and keeps beating, until it has settled.
    const last = t0 + 1000 * 60;
    for (let s = 1; s <= 70; s++) {
      h.clock.advanceTo(last + s * 1000);
      h.beat("a", { incarnation: wall0 + 1 });
    }
    const lines = h.names("a");
    expect(lines.length).toBeLessThanOrEqual(20);
    expect(lines).toEqual([
      "node.up",
      ...Array<string>(FLAP_CHANGES).fill("node.restarted"),
      "node.flapping",
      "node.flapping",
    ]);
    expect(h.of("node.flapping", "a").at(-1)).toMatchObject({ settled: true, state: "up", changes: 255 });
  });

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

  it("keeps a flapping node's planned stops and returns out of the journal", async () => {
    const h = await Harness.start(`nodes: { a: {} }`);
    const t0 = h.clock.monoMs();
    // Stopped and started again every 100 ms, 500 times: left, up (previous left), each time.
    for (let i = 1; i <= 500; i++) {
      h.clock.advanceTo(t0 + i * 100);
      h.beat("a", { incarnation: i });
      h.leave("a", i);
    }
    expect(h.names("a")).toEqual([
      "node.up",
      "node.left",
      "node.up",
      "node.left",
      "node.up",
      "node.left",
      "node.up",
      "node.flapping",
    ]);
    expect(h.of("node.flapping", "a")).toMatchObject([{ settled: false, state: "left" }]);
  });

  it("writes node.up at the first heartbeat through a healed partition, for a node flapping under 60 % loss (the journal lost the recovery)", async () => {
    const h = await Harness.start(`nodes: { a: { interval: 200ms, timeout: 1s } }`);
    const t0 = h.clock.monoMs();
    const wall0 = h.clock.wallMs();
    const lost = prng(7);
    let sequence = 0;
    let tick = 0;
    const send = (): number => {
      const t = t0 + tick++ * 200;
      h.clock.advanceTo(t);
      h.socket.deliver(encode({ kind: Kind.BEAT, nodeId: "a", incarnation: wall0, sequence: ++sequence }));
      return t;
    };
    // 20 s under 60 % loss: late and back up, and down now and then, again and again.
    while (tick < 100) {
      if (lost() < 0.6) {
        tick++;
        sequence++;
      } else send();
    }
    expect(h.of("node.flapping", "a")).toMatchObject([{ settled: false }]);
    const lines = h.names("a");
    expect(lines.slice(lines.indexOf("node.flapping"))).not.toContain("node.late");
    const beforeCut = h.monitor.status().nodes[0]!.lastSeen;
    // A partition of 4 s: nothing arrives, and the node goes down at its deadline.
    const cutAt = t0 + tick * 200;
    tick += 20;
    sequence += 20;
    h.clock.advanceTo(t0 + tick * 200 - 1);
    const down = h.of("node.down", "a").at(-1)!;
    expect(down.t).toBeGreaterThan(cutAt);
    expect(down).toMatchObject({ lastSeen: beforeCut, at: beforeCut! + 1000 });
    const seen = h.events.length;
    // Healed: the first heartbeat through is the recovery, written at once.
    const healed = send();
    expect(h.events.slice(seen)).toMatchObject([
      { event: "node.up", node: "a", previous: "down", t: healed },
    ]);
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
