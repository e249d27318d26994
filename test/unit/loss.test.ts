// Loss figures: a gap in a node's sequence is counted as lost datagrams, exactly at any size, and
// never for unnumbered datagrams (one-shot senders, whose sequence is the wall clock).
import { describe, expect, it } from "vitest";
import { Kind, encode } from "../../src/wire/protocol.js";
import { Harness } from "../support/monitor-harness.js";

function send(h: Harness, sequence: number, unnumbered = false): void {
  h.socket.deliver(encode({ kind: Kind.BEAT, nodeId: "a", incarnation: 7, sequence, unnumbered }));
}

describe("loss counting", () => {
  // A jump larger than the node's silence explains counts only once the next datagram continues
  // from it (the replay guard), so each jump here is followed by its successor.
  it("counts a gap of 2^32 + 3 sequence numbers as 2^32 + 3 lost datagrams", async () => {
    const h = await Harness.start(`nodes: { "a": {} }`);
    send(h, 1);
    send(h, 2 ** 32 + 4);
    send(h, 2 ** 32 + 5);
    expect(h.monitor.status().nodes[0]).toMatchObject({ received: 2, lost: 2 ** 32 + 3 });
  });

  it("adds up gaps past 2^32 in total without wrapping", async () => {
    const h = await Harness.start(`nodes: { "a": {} }`);
    send(h, 1);
    for (let i = 1; i <= 3; i++) {
      send(h, i * 2 ** 31);
      send(h, i * 2 ** 31 + 1);
    }
    expect(h.monitor.status().nodes[0]).toMatchObject({ received: 4, lost: 3 * 2 ** 31 - 3 });
  });

  it("counts no loss between unnumbered datagrams, however far apart their sequences", async () => {
    const h = await Harness.start(`nodes: { "a": {} }`);
    const wallMs = 1_795_499_260_000;
    for (let run = 0; run < 5; run++) {
      send(h, wallMs + run * 60_000, true);
      h.clock.advance(1000);
    }
    expect(h.monitor.status().nodes[0]).toMatchObject({ received: 5, lost: 0, lossPct: 0, restarts: 0 });
  });

  it("still refuses an unnumbered datagram whose sequence did not move forward", async () => {
    const h = await Harness.start(`nodes: { "a": {} }`);
    send(h, 5000, true);
    send(h, 5000, true);
    send(h, 4000, true);
    expect(h.monitor.status().datagrams.rejected.replay).toBe(2);
  });

  it("counts the gaps of numbered datagrams as before", async () => {
    const h = await Harness.start(`nodes: { "a": {} }`);
    for (const sequence of [1, 2, 5, 6, 10]) send(h, sequence);
    expect(h.monitor.status().nodes[0]).toMatchObject({ received: 5, lost: 5, lossPct: 50 });
  });
});
