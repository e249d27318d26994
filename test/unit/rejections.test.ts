import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { Kind, encode } from "../../src/wire/protocol.js";
import { Harness, TEST_KEY } from "../support/monitor-harness.js";

const keyring = () => new Map([[TEST_KEY.id, TEST_KEY.secret]]);

describe("bad datagrams", () => {
  it("are refused and counted by reason: malformed, truncated, oversized, wrong version, replayed", async () => {
    const h = await Harness.start(`nodes: { "a": {} }`);
    const good = encode({ kind: Kind.BEAT, nodeId: "a", incarnation: 1, sequence: 1 });
    const wrongVersion = Buffer.from(good);
    wrongVersion[2] = 2;
    h.socket.deliver(Buffer.concat([good, Buffer.from("junk")]));
    h.socket.deliver(good.subarray(0, 12));
    h.socket.deliver(Buffer.alloc(2000, 0x68));
    h.socket.deliver(wrongVersion);
    h.socket.deliver(good);
    h.socket.deliver(good);
    const { datagrams } = h.monitor.status();
    expect(datagrams.received).toBe(6);
    expect(datagrams.accepted).toBe(1);
    expect(Object.fromEntries(Object.entries(datagrams.rejected).filter(([, n]) => n > 0))).toEqual({
      malformed: 1,
      truncated: 1,
      oversized: 1,
      bad_version: 1,
      replay: 1,
    });
  });

  it("are summarised at most once per interval: 100 000 of them give a handful of lines", async () => {
    const h = await Harness.start(`nodes: { "a": {} }`);
    const t0 = h.clock.monoMs();
    for (let i = 0; i < 100_000; i++) {
      if (i % 10_000 === 0) h.clock.advanceTo(t0 + i / 10); // the burst lasts 10 s of monitor time
      h.socket.deliver(i % 2 === 0 ? randomBytes(1 + (i % 600)) : Buffer.from("hb\x01\x01garbage"));
    }
    h.clock.advance(2000);
    const summaries = h.of("datagrams.rejected");
    expect(summaries.length).toBeGreaterThanOrEqual(1);
    expect(summaries.length).toBeLessThanOrEqual(12);
    expect(summaries.reduce((sum, e) => sum + e.total, 0)).toBe(100_000);
    for (let i = 1; i < summaries.length; i++)
      expect(summaries[i]!.t - summaries[i - 1]!.t).toBeGreaterThanOrEqual(1000);
    expect(h.events.length).toBe(summaries.length);
  });
});

describe("authentication", () => {
  it("with auth required, accepts only datagrams tagged with a key from the keyring", async () => {
    const h = await Harness.start(`auth: required\nkeys: { k1: /dev/null }\nnodes: { "a": {} }`, keyring());
    h.beat("a");
    h.beat("a", { key: { ...TEST_KEY, id: "k9" } });
    const forged = encode({ kind: Kind.BEAT, nodeId: "a", incarnation: 1, sequence: 50 }, TEST_KEY);
    forged[30] = forged[30]! ^ 0x01; // a flipped bit in the signed part
    h.socket.deliver(forged);
    expect(h.events).toEqual([]);
    h.beat("a", { key: TEST_KEY });
    expect(h.names()).toEqual(["node.up"]);
    expect(h.monitor.status().datagrams.rejected).toMatchObject({
      unauthenticated: 1,
      unknown_key: 1,
      bad_tag: 1,
    });
  });

  it("with auth optional, accepts untagged datagrams but still verifies tagged ones", async () => {
    const h = await Harness.start(
      `auth: optional\nkeys: { k1: /dev/null }\nnodes: { "a": {}, "b": {} }`,
      keyring(),
    );
    h.beat("a");
    const forged = encode({ kind: Kind.BEAT, nodeId: "b", incarnation: 1, sequence: 1 }, TEST_KEY);
    forged[forged.length - 1] = forged[forged.length - 1]! ^ 0x80;
    h.socket.deliver(forged);
    expect(h.names()).toEqual(["node.up"]);
    expect(h.monitor.status().datagrams.rejected.bad_tag).toBe(1);
  });

  it("does not let a datagram change how long the monitor waits", async () => {
    const h = await Harness.start(`nodes: { "a": { timeout: 3s } }`);
    const t0 = h.clock.monoMs();
    // Whatever a node puts in its fields (a huge sequence), the deadline is the config's.
    h.socket.deliver(
      encode({
        kind: Kind.BEAT,
        nodeId: "a",
        incarnation: h.clock.wallMs(),
        sequence: Number.MAX_SAFE_INTEGER,
      }),
    );
    h.clock.advanceTo(t0 + 3000);
    expect(h.of("node.down").map((e) => e.t)).toEqual([t0 + 3000]);
  });
});
