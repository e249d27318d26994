// The monitor's checks after decoding (authentication, then the node's history) run in the order
// that docs/PROTOCOL.md's "Order of checks" gives: a datagram that fails two of them is counted
// under the one documented first. (The decoding steps are checked in protocol.test.ts.)
import { createSecretKey } from "node:crypto";
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { Kind, encode, type SigningKey } from "../../src/wire/protocol.js";
import { Harness, TEST_KEY } from "../support/monitor-harness.js";

const doc = readFileSync(new URL("../../docs/PROTOCOL.md", import.meta.url), "utf8");
const order = [
  ...doc
    .slice(doc.indexOf("### Order of checks"))
    .matchAll(/^\| (\d+) +\|[^|\n]*\|[^|\n]*\| `([a-z_]+)` +\|$/gm),
].map((m) => m[2]!);

const K2: SigningKey = { id: "k2", secret: createSecretKey(Buffer.from("another-secret-key-of-32-bytes!!")) };
const K9: SigningKey = { id: "k9", secret: createSecretKey(Buffer.from("a-key-the-monitor-does-not-know!")) };
const YAML = `auth: required\nunknown_nodes: ignore\nkeys: { k1: /x, k2: /y }\nnodes: { "a": { keys: [k1] } }`;

function flipTag(msg: Buffer): Buffer {
  const copy = Buffer.from(msg);
  copy[copy.length - 1] = copy[copy.length - 1]! ^ 1;
  return copy;
}

const beat = (nodeId: string, sequence: number, key?: SigningKey): Buffer =>
  encode({ kind: Kind.BEAT, nodeId, incarnation: 1, sequence }, key);

describe("the monitor's order of checks after decoding", () => {
  it("documents the authentication checks before those that need the node's history", () => {
    const after = order.slice(order.lastIndexOf("malformed") + 1);
    let at = -1;
    for (const reason of [
      "unauthenticated",
      "unknown_key",
      "key_not_allowed",
      "bad_tag",
      "unknown_node",
      "replay",
    ]) {
      at = after.indexOf(reason, at + 1);
      expect(at, reason).toBeGreaterThan(-1);
    }
  });

  it.each<[string, [string, string], (h: Harness) => Buffer]>([
    ["an unsigned datagram from an unlisted node", ["unauthenticated", "unknown_node"], () => beat("x", 1)],
    ["an unknown key from an unlisted node", ["unknown_key", "unknown_node"], () => beat("x", 1, K9)],
    ["a bad tag from an unlisted node", ["bad_tag", "unknown_node"], () => flipTag(beat("x", 1, TEST_KEY))],
    [
      "a key the node may not use, with a bad tag",
      ["key_not_allowed", "bad_tag"],
      () => flipTag(beat("a", 1, K2)),
    ],
    [
      "an unsigned replay",
      ["unauthenticated", "replay"],
      (h) => (h.socket.deliver(beat("a", 1, TEST_KEY)), beat("a", 1)),
    ],
    [
      "a replay with a bad tag",
      ["bad_tag", "replay"],
      (h) => (h.socket.deliver(beat("a", 1, TEST_KEY)), flipTag(beat("a", 1, TEST_KEY))),
    ],
  ])("counts %s under the reason documented first", async (_name, reasons, make) => {
    const h = await Harness.start(
      YAML,
      new Map([
        [TEST_KEY.id, TEST_KEY.secret],
        [K2.id, K2.secret],
      ]),
    );
    const msg = make(h);
    h.socket.deliver(msg);
    const first = [...reasons].sort((x, y) => order.indexOf(x) - order.indexOf(y))[0]!;
    expect(order).toEqual(expect.arrayContaining(reasons));
    const counted = Object.entries(h.monitor.status().datagrams.rejected).filter(([, n]) => n > 0);
    expect(counted).toEqual([[first, 1]]);
  });
});
