// One forged datagram changes nothing: not a huge incarnation or sequence, not an unsigned
// datagram for a node that signs, not a capture replayed after the node was forgotten; and a
// full table makes room for a newcomer instead of locking it out.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { Kind, encode } from "../../src/wire/protocol.js";
import { Harness, TEST_KEY } from "../support/monitor-harness.js";

const MAX = Number.MAX_SAFE_INTEGER;
const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));
const stateDir = (): string => {
  const d = mkdtempSync(join(tmpdir(), "hb-marks-"));
  dirs.push(d);
  return d;
};
const forge = (
  h: Harness,
  nodeId: string,
  incarnation: number,
  sequence: number,
  kind: Kind = Kind.BEAT,
): void => h.socket.deliver(encode({ kind, nodeId, incarnation, sequence }));
const rejected = (h: Harness): Record<string, number> =>
  Object.fromEntries(Object.entries(h.monitor.status().datagrams.rejected).filter(([, n]) => n > 0));
const stateOf = (h: Harness, node: string): string | undefined =>
  h.monitor.status().nodes.find((n) => n.node === node)?.state;
const keyring = new Map([[TEST_KEY.id, TEST_KEY.secret]]);

describe("a forged incarnation or sequence", () => {
  it("is refused when the incarnation is more than a day ahead of the monitor's clock, and the node stays up", async () => {
    const h = await Harness.start(`nodes: { a: {} }`);
    const t0 = h.clock.monoMs();
    h.beat("a");
    forge(h, "a", MAX, MAX);
    expect(rejected(h)).toEqual({ future_incarnation: 1 });
    for (let s = 1; s <= 30; s++) {
      h.clock.advanceTo(t0 + s * 1000);
      h.beat("a");
    }
    expect(h.names("a")).toEqual(["node.up"]);
    expect(stateOf(h, "a")).toBe("up");
  });

  it("is refused when the sequence jumps further than the node's silence explains, unless a second datagram continues it", async () => {
    const h = await Harness.start(`nodes: { a: {} }`);
    const t0 = h.clock.monoMs();
    h.beat("a"); // incarnation 1, sequence 1
    forge(h, "a", 1, 1_000_000);
    expect(rejected(h)).toEqual({ unconfirmed_jump: 1 });
    h.clock.advanceTo(t0 + 1000);
    h.beat("a"); // sequence 2: still accepted
    expect(rejected(h)).toEqual({ unconfirmed_jump: 1 });
    // A real node that numbers faster than the monitor expects is believed on its second datagram.
    forge(h, "a", 1, 5_000_000);
    h.clock.advanceTo(t0 + 2000);
    forge(h, "a", 1, 5_000_001);
    expect(rejected(h)).toEqual({ unconfirmed_jump: 2 });
    expect(h.monitor.status().nodes[0]).toMatchObject({ node: "a", received: 3 });
  });

  it("keeps a forged leave from silencing the node beyond a few intervals", async () => {
    const h = await Harness.start(`nodes: { a: {} }`);
    const t0 = h.clock.monoMs();
    h.beat("a");
    forge(h, "a", 1, 100_000, Kind.LEAVE); // far ahead: refused
    expect(stateOf(h, "a")).toBe("up");
    forge(h, "a", 1, 11, Kind.LEAVE); // within the slack: accepted, the node is "left"...
    expect(stateOf(h, "a")).toBe("left");
    for (let s = 1; s <= 12; s++) {
      h.clock.advanceTo(t0 + s * 1000);
      h.beat("a"); // ...and the real node is back as soon as it numbers past the forgery
    }
    expect(stateOf(h, "a")).toBe("up");
  });

  it("accepts a restarted node whose clock runs hours ahead on its second datagram", async () => {
    const h = await Harness.start(`nodes: { a: {} }`);
    h.beat("a");
    const ahead = h.clock.wallMs() + 2 * 3_600_000;
    forge(h, "a", ahead, 1);
    expect(h.of("node.restarted")).toEqual([]);
    forge(h, "a", ahead, 2);
    expect(h.of("node.restarted")).toHaveLength(1);
  });
});

describe("how far one datagram may move a mark (docs/PROTOCOL.md, Incarnation and sequence)", () => {
  const unnumbered = (h: Harness, nodeId: string, sequence: number): void =>
    h.socket.deliver(encode({ kind: Kind.BEAT, nodeId, incarnation: 0, sequence, unnumbered: true }));

  it("judges a node's first datagram by its incarnation only: a day ahead refused, a minute ahead held, any sequence taken", async () => {
    const h = await Harness.start(`nodes: { a: {}, b: {}, c: {} }`);
    const wall = h.clock.wallMs();
    forge(h, "a", wall + 25 * 3_600_000, 1);
    forge(h, "b", wall + 23 * 3_600_000, 1);
    forge(h, "c", 5, MAX);
    expect(rejected(h)).toEqual({ future_incarnation: 1, unconfirmed_jump: 1 });
    expect(h.names()).toEqual(["node.up"]);
    h.clock.advance(1000);
    forge(h, "c", 5, 2); // below the mark it took: the real node of that incarnation is refused
    expect(rejected(h)).toEqual({ future_incarnation: 1, unconfirmed_jump: 1, replay: 1 });
    forge(h, "b", wall + 23 * 3_600_000, 2); // continues the held one: believed
    expect(stateOf(h, "b")).toBe("up");
  });

  it("holds a sequence jump larger than 10 + ceil(2 x silence / interval), and accepts one that size at once", async () => {
    const h = await Harness.start(`nodes: { a: {} }`); // interval 1s
    h.socket.deliver(encode({ kind: Kind.BEAT, nodeId: "a", incarnation: 1, sequence: 100 }));
    h.clock.advance(3200); // 10 + ceil(6.4) = 17
    forge(h, "a", 1, 118);
    expect(rejected(h)).toEqual({ unconfirmed_jump: 1 });
    forge(h, "a", 1, 117);
    expect(rejected(h)).toEqual({ unconfirmed_jump: 1 });
    expect(h.monitor.status().nodes[0]).toMatchObject({ received: 2, lost: 16 });
  });

  it("measures an unnumbered node's jump in milliseconds: 2 x its silence + 60 000", async () => {
    const h = await Harness.start(`nodes: { cron: {} }`);
    unnumbered(h, "cron", 1_000_000);
    h.clock.advance(10);
    unnumbered(h, "cron", 1_060_020); // 2 x 10 + 60 000: accepted at once
    expect(rejected(h)).toEqual({});
    h.clock.advance(10);
    unnumbered(h, "cron", 1_120_041); // one more than 2 x 10 + 60 000: held
    expect(rejected(h)).toEqual({ unconfirmed_jump: 1 });
  });

  it("does not give a numbered node the milliseconds allowance for a datagram that says it is unnumbered", async () => {
    const h = await Harness.start(`nodes: { a: {} }`);
    const t0 = h.clock.monoMs();
    h.beat("a"); // incarnation 1, sequence 1
    h.clock.advanceTo(t0 + 1000);
    h.socket.deliver(
      encode({ kind: Kind.LEAVE, nodeId: "a", incarnation: 1, sequence: 60_001, unnumbered: true }),
    );
    expect(rejected(h)).toEqual({ unconfirmed_jump: 1 });
    for (let s = 1; s <= 30; s++) {
      h.clock.advanceTo(t0 + 1000 + s * 1000);
      h.beat("a");
    }
    expect(h.names("a")).toEqual(["node.up"]);
  });
});

describe("under auth: optional", () => {
  const yaml = `auth: optional\nkeys: { k1: /dev/null }\nnodes: { a: {}, b: {} }`;

  it("refuses unsigned datagrams for a node once it was heard with a valid tag, also after a monitor restart", async () => {
    const dir = stateDir();
    const h = new Harness(yaml, keyring, dir);
    await h.monitor.listen();
    h.beat("a", { key: TEST_KEY });
    forge(h, "a", 1, 2);
    expect(rejected(h)).toEqual({ unauthenticated: 1 });
    h.beat("b"); // a node that never signed may go on unsigned
    expect(stateOf(h, "b")).toBe("up");
    await h.monitor.close();

    const again = new Harness(yaml, keyring, dir);
    await again.monitor.listen();
    forge(again, "a", 2, 1);
    expect(rejected(again)).toEqual({ unauthenticated: 1 });
    again.beat("a", { key: TEST_KEY, incarnation: 2 });
    expect(stateOf(again, "a")).toBe("up");
  });
});

describe("replay marks", () => {
  it("outlive forgetting: a captured datagram does not bring a forgotten node back", async () => {
    const h = await Harness.start(`forget_after: 1m`);
    const t0 = h.clock.monoMs();
    const captured = h.beat("x");
    h.clock.advanceTo(t0 + 10_000 + 60_000);
    expect(h.of("node.forgotten", "x")).toHaveLength(1);
    h.socket.deliver(captured);
    expect(rejected(h)).toEqual({ replay: 1 });
    expect(h.monitor.status().nodes).toEqual([]);
  });

  it("are bounded in the file across restarts", async () => {
    const dir = stateDir();
    for (let restart = 0; restart < 4; restart++) {
      const h = new Harness(`max_nodes: 100\nauth: optional\nkeys: { k1: /dev/null }`, keyring, dir);
      await h.monitor.listen();
      const t0 = h.clock.monoMs();
      for (let i = 0; i < 100; i++) h.beat(`r${restart}-n${i}`, { key: TEST_KEY });
      h.clock.advanceTo(t0 + 11_000); // all down: evictable
      await h.monitor.close();
    }
    const lines = readFileSync(join(dir, "replay-marks"), "utf8").trim().split("\n").length - 1;
    expect(lines).toBeLessThanOrEqual(2 * 100);
  });

  it("are cleared for one node by an operator (hb forget), without a restart", async () => {
    const h = await Harness.start(`nodes: { a: {} }`);
    h.beat("a", { incarnation: 5 });
    forge(h, "a", 4, 1);
    expect(rejected(h)).toEqual({ replay: 1 });
    expect(h.monitor.forget("a")).toBe(true);
    expect(h.of("node.forgotten", "a")).toMatchObject([{ by: "operator" }]);
    expect(stateOf(h, "a")).toBe("new");
    forge(h, "a", 4, 1);
    expect(stateOf(h, "a")).toBe("up");
    expect(h.monitor.forget("nobody")).toBe(false);
  });
});

describe("a full table", () => {
  it("evicts the longest-silent unlisted node that is down before refusing a newcomer, never a listed one", async () => {
    const h = await Harness.start(`max_nodes: 5\nnodes: { l1: {}, l2: {} }`);
    const t0 = h.clock.monoMs();
    for (const id of ["x1", "x2", "x3"]) h.beat(id);
    h.beat("y0"); // table full: 2 listed + 3 unlisted, all up
    expect(rejected(h)).toEqual({ too_many_nodes: 1 });
    h.clock.advanceTo(t0 + 10_000); // x1..x3 (and the silent listed ones) go down
    h.clock.advanceTo(t0 + 10_001);
    h.beat("y1");
    h.beat("y2");
    const nodes = h.monitor
      .status()
      .nodes.map((n) => n.node)
      .sort();
    expect(nodes).toEqual(["l1", "l2", "x3", "y1", "y2"]);
    expect(h.monitor.status().nodes.find((n) => n.node === "y1")?.state).toBe("up");
  });
});

describe("max_nodes", () => {
  it("counts every listed node, heard or not, so that unlisted ones get only the room left", async () => {
    const h = await Harness.start(`max_nodes: 3\nnodes: { l1: {}, l2: {} }`);
    h.beat("x");
    h.beat("y");
    expect(rejected(h)).toEqual({ too_many_nodes: 1 });
    expect(h.names()).toEqual(["node.up"]);
    expect(h.monitor.status().nodes.map((n) => [n.node, n.state])).toEqual([
      ["l1", "new"],
      ["l2", "new"],
      ["x", "up"],
    ]);
  });
});

describe("its own overload", () => {
  it("holds judgement when the kernel dropped datagrams, says so once, and judges again once it stops", async () => {
    const h = await Harness.start(`nodes: { a: {}, b: {} }`);
    const t0 = h.clock.monoMs();
    h.beat("a");
    h.beat("b");
    h.clock.advanceTo(t0 + 4000);
    h.beat("b");
    h.kernelDrops = 5000; // a's beats may be among them
    h.clock.advanceTo(t0 + 5000);
    expect(h.of("node.late")).toEqual([]);
    expect(h.of("monitor.overloaded")).toMatchObject([{ cause: "kernel_drops", kernelDrops: 5000 }]);
    h.kernelDrops = 9000;
    h.clock.advanceTo(t0 + 7500);
    expect(h.of("node.late")).toEqual([]);
    expect(h.of("monitor.overloaded")).toHaveLength(1);
    // Drops stopped: a, still silent, is judged once the hold is over.
    h.clock.advanceTo(t0 + 30_000);
    expect(h.names("a")).toEqual(["node.up", "node.late", "node.down"]);
  });

  it("holds judgement for as long as the drops go on, not just two intervals after each look", async () => {
    const h = await Harness.start(`nodes: { a: {} }`);
    const t0 = h.clock.monoMs();
    h.beat("a"); // then its datagrams are lost with the rest, for 30 s
    for (let s = 1; s <= 30; s++) {
      h.kernelDrops += 1000;
      h.clock.advanceTo(t0 + s * 1000);
    }
    expect(h.names("a")).toEqual(["node.up"]);
    expect(h.of("monitor.overloaded")).toHaveLength(1);
    h.clock.advanceTo(t0 + 60_000); // the drops stopped: silence is proof again
    expect(h.names("a")).toEqual(["node.up", "node.late", "node.down"]);
  });
});
