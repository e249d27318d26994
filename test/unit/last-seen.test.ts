// lastSeen in /status is the same number on every read until another datagram arrives, though the
// wall and monotonic clocks tick apart; node.down's `at` stays exactly lastSeen + timeout.
import { describe, expect, it } from "vitest";
import { Harness } from "../support/monitor-harness.js";

const lastSeenOf = (h: Harness, node: string): number | null =>
  h.monitor.status().nodes.find((n) => n.node === node)!.lastSeen;

describe("lastSeen", () => {
  it("reads the same between datagrams while the wall clock wobbles by under a millisecond", async () => {
    const h = await Harness.start(`nodes: { "a": {} }\n`);
    h.clock.advance(0.4);
    h.beat("a");
    const first = lastSeenOf(h, "a");
    for (const wobble of [0.6, -0.3, 0.5, -0.9, 0.2]) {
      h.clock.jumpWall(wobble); // Date.now() is whole ms, the monotonic clock fractional
      h.clock.advance(250);
      expect(lastSeenOf(h, "a")).toBe(first);
    }
  });

  it("follows a real step of the wall clock", async () => {
    const h = await Harness.start(`nodes: { "a": {} }\n`);
    h.beat("a");
    const before = lastSeenOf(h, "a")!;
    h.clock.jumpWall(60_000);
    expect(lastSeenOf(h, "a")).toBe(before + 60_000);
  });

  it("is the one node.down reports, with at = lastSeen + timeout exactly", async () => {
    const h = await Harness.start(`nodes: { "a": { timeout: 10s } }\n`);
    h.clock.advance(0.2);
    h.beat("a");
    const seen = lastSeenOf(h, "a");
    h.clock.jumpWall(0.6);
    h.clock.advance(10_001);
    const [down] = h.of("node.down", "a");
    expect(down!.lastSeen).toBe(seen);
    expect(down!.at).toBe(down!.lastSeen! + 10_000);
    expect(lastSeenOf(h, "a")).toBe(seen);
  });
});
