import { createSecretKey } from "node:crypto";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { HbError } from "../../src/errors.js";
import { loadConfig } from "../../src/config/load.js";
import { Kind, encode } from "../../src/wire/protocol.js";
import { Harness, TEST_KEY, config } from "../support/monitor-harness.js";

const K2 = { id: "k2", secret: createSecretKey(Buffer.from("another-secret-key-of-32-bytes!!")) };
const keyring = () =>
  new Map([
    [TEST_KEY.id, TEST_KEY.secret],
    [K2.id, K2.secret],
  ]);
const dir = mkdtempSync(join(tmpdir(), "hb-security-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("per-node key binding", () => {
  const yaml = `auth: optional\nkeys: { k1: /x, k2: /y }\nnodes: { "a": { keys: [k1] }, "b": {} }`;

  it("refuses a node's datagram signed with a valid key it is not bound to", async () => {
    const h = await Harness.start(yaml, keyring());
    h.beat("a", { key: K2 });
    expect(h.events).toEqual([]);
    expect(h.monitor.status().datagrams.rejected.key_not_allowed).toBe(1);
    h.beat("a", { key: TEST_KEY });
    expect(h.names()).toEqual(["node.up"]);
  });

  it("requires a bound node to sign even when auth is optional; others may still send unsigned", async () => {
    const h = await Harness.start(yaml, keyring());
    h.beat("a");
    h.beat("b");
    expect(h.of("node.up").map((e) => e.node)).toEqual(["b"]);
    expect(h.monitor.status().datagrams.rejected.unauthenticated).toBe(1);
  });
});

describe("a key that signs webhooks", () => {
  it("never authenticates a heartbeat, though it is in the keyring", async () => {
    const yaml = `auth: optional\nkeys: { k1: /x, k2: /y }\nnotify:\n  - { name: chat, webhook: "https://x.example/h", sign_with: k2 }`;
    const h = await Harness.start(yaml, keyring());
    h.beat("a", { key: K2 });
    expect(h.events).toEqual([]);
    expect(h.monitor.status().datagrams.rejected.unknown_key).toBe(1);
    h.beat("a", { key: TEST_KEY });
    expect(h.names()).toEqual(["node.up"]);
  });
});

describe("rotating keys", () => {
  it("checks tags with the keys of the config loaded last: a key replaced under its id, or removed, no longer verifies", async () => {
    const yaml = `auth: required\nkeys: { k1: /x }`;
    const h = await Harness.start(yaml, new Map([[TEST_KEY.id, TEST_KEY.secret]]));
    const rejected = () => h.monitor.status().datagrams.rejected;
    h.beat("a", { key: TEST_KEY });
    expect(h.names("a")).toEqual(["node.up"]);
    const replaced = { id: "k1", secret: K2.secret };
    h.monitor.reload({
      config: config(`auth: required\nkeys: { k1: /x, k2: /y }`),
      keyring: new Map([
        [replaced.id, replaced.secret],
        [K2.id, K2.secret],
      ]),
    });
    h.beat("a", { key: TEST_KEY });
    expect(rejected().bad_tag).toBe(1);
    h.beat("a", { key: replaced });
    h.beat("a", { key: K2 });
    expect(h.monitor.status().datagrams.accepted).toBe(3);
    h.monitor.reload({
      config: config(`auth: required\nkeys: { k2: /y }`),
      keyring: new Map([[K2.id, K2.secret]]),
    });
    h.beat("a", { key: replaced });
    expect(rejected().unknown_key).toBe(1);
    h.beat("a", { key: K2 });
    expect(h.monitor.status().datagrams.accepted).toBe(4);
  });
});

describe("bounded state", () => {
  it("tracks at most max_nodes: further unlisted senders are refused, listed ones always tracked", async () => {
    const h = await Harness.start(`max_nodes: 3\nnodes: { "listed": {} }`);
    for (let i = 0; i < 1000; i++) h.beat(`random-${i}`);
    h.beat("listed");
    expect(
      h.monitor
        .status()
        .nodes.map((n) => n.node)
        .sort(),
    ).toEqual(["listed", "random-0", "random-1"]);
    expect(h.monitor.status().datagrams.rejected.too_many_nodes).toBe(998);
  });

  it("forgets unlisted nodes that stay down for forget_after, and never listed ones", async () => {
    const h = await Harness.start(`forget_after: 1m\nnodes: { "listed": {} }`);
    const t0 = h.clock.monoMs();
    h.beat("stranger");
    h.beat("listed");
    h.beat("leaver");
    h.leave("leaver");
    h.clock.advanceTo(t0 + 60_000 - 1);
    expect(h.of("node.forgotten").map((e) => e.node)).toEqual([]);
    h.clock.advanceTo(t0 + 60_000); // left at t0
    expect(h.of("node.forgotten").map((e) => e.node)).toEqual(["leaver"]);
    h.clock.advanceTo(t0 + 10_000 + 60_000 - 1);
    expect(h.of("node.forgotten").map((e) => e.node)).toEqual(["leaver"]);
    h.clock.advanceTo(t0 + 10_000 + 60_000); // down at t0 + 10s
    expect(h.of("node.forgotten").map((e) => e.node)).toEqual(["leaver", "stranger"]);
    h.clock.advance(3_600_000);
    expect(h.monitor.status().nodes.map((n) => n.node)).toEqual(["listed"]);
  });

  it("keeps a node that comes back before forget_after", async () => {
    const h = await Harness.start(`forget_after: 1m`);
    const t0 = h.clock.monoMs();
    h.beat("stranger");
    h.clock.advanceTo(t0 + 30_000);
    h.beat("stranger");
    h.clock.advanceTo(t0 + 30_000 + 50_000);
    h.beat("stranger");
    h.clock.advance(5000);
    expect(h.of("node.forgotten")).toEqual([]);
  });
});

describe("replay marks across a monitor restart", () => {
  const yaml = `keys: { k1: /x }\nnodes: { "a": {} }`;

  it("refuses, after a restart, datagrams the previous monitor had already accepted", async () => {
    const stateDir = join(dir, "marks-1");
    const first = new Harness(yaml, keyring(), stateDir);
    await first.monitor.listen();
    const captured = [1, 2, 3].map(() => first.beat("a", { key: TEST_KEY, incarnation: 7 }));
    const stranger = first.beat("b", { key: TEST_KEY, incarnation: 9 });
    await first.monitor.close();

    const second = new Harness(yaml, keyring(), stateDir);
    await second.monitor.listen();
    for (const msg of [...captured, stranger]) second.socket.deliver(msg);
    expect(second.events).toEqual([]);
    expect(second.monitor.status().datagrams.rejected.replay).toBe(4);
    // The node itself carries on where it was.
    second.socket.deliver(encode({ kind: Kind.BEAT, nodeId: "a", incarnation: 7, sequence: 4 }, TEST_KEY));
    expect(second.names()).toEqual(["node.up"]);
    expect(second.monitor.status().nodes.find((n) => n.node === "a")).toMatchObject({ lost: 0, restarts: 0 });
  });

  it("reports a node that restarted while the monitor was away as restarted", async () => {
    const stateDir = join(dir, "marks-2");
    const first = new Harness(yaml, keyring(), stateDir);
    await first.monitor.listen();
    first.beat("a", { key: TEST_KEY, incarnation: 7 });
    await first.monitor.close();
    const second = new Harness(yaml, keyring(), stateDir);
    await second.monitor.listen();
    second.beat("a", { key: TEST_KEY, incarnation: 8 });
    expect(second.names()).toEqual(["node.restarted", "node.up"]);
  });

  it("keeps a node's leave across a restart: left again, never down at the end of the grace, and back as up from left", async () => {
    const stateDir = join(dir, "marks-3");
    const first = new Harness(yaml, keyring(), stateDir);
    await first.monitor.listen();
    first.beat("a", { key: TEST_KEY, incarnation: 7 });
    first.beat("a", { key: TEST_KEY, incarnation: 7, kind: Kind.LEAVE });
    await first.monitor.close();
    expect(readFileSync(join(stateDir, "replay-marks"), "utf8")).toContain("\na 7 2 s l\n");

    const second = new Harness(yaml, keyring(), stateDir);
    await second.monitor.listen();
    expect(second.monitor.status().nodes[0]!.state).toBe("left");
    second.clock.advance(60_000);
    expect(second.events).toEqual([]);
    second.beat("a", { key: TEST_KEY, incarnation: 8 });
    expect(second.names()).toEqual(["node.up"]);
    expect(second.of("node.up")[0]).toMatchObject({ previous: "left" });
  });

  it("keeps an unlisted node's leave across a restart: its return is a first contact, not restarted", async () => {
    const stateDir = join(dir, "marks-4");
    const first = new Harness(yaml, keyring(), stateDir);
    await first.monitor.listen();
    first.beat("x", { key: TEST_KEY, incarnation: 7 });
    first.beat("x", { key: TEST_KEY, incarnation: 7, kind: Kind.LEAVE });
    await first.monitor.close();
    const second = new Harness(yaml, keyring(), stateDir);
    await second.monitor.listen();
    second.beat("x", { key: TEST_KEY, incarnation: 8 });
    expect(second.names("x")).toEqual(["node.up"]);
  });

  it("reports the return as restarted when the marks it restarted with do not hold the leave (a crash lost the last save)", async () => {
    const stateDir = join(dir, "marks-5");
    mkdirSync(stateDir);
    // What a monitor that crashed within 5 s of the leave left behind: the mark before it.
    writeFileSync(join(stateDir, "replay-marks"), "hb-replay-marks 1\na 7 1 s\n");
    const h = new Harness(yaml, keyring(), stateDir);
    await h.monitor.listen();
    h.beat("a", { key: TEST_KEY, incarnation: 8 });
    expect(h.names()).toEqual(["node.restarted", "node.up"]);
  });

  it("keeps no marks without authentication: after a restart a node's return is a first contact, left or crashed", async () => {
    const stateDir = join(dir, "marks-6");
    const open = `nodes: { "a": {}, "b": {} }`;
    const first = new Harness(open, new Map(), stateDir);
    await first.monitor.listen();
    first.beat("a", { incarnation: 7 });
    first.beat("a", { incarnation: 7, kind: Kind.LEAVE });
    first.beat("b", { incarnation: 7 });
    await first.monitor.close();
    const second = new Harness(open, new Map(), stateDir);
    await second.monitor.listen();
    second.beat("a", { incarnation: 8 });
    second.beat("b", { incarnation: 8 });
    expect(second.names()).toEqual(["node.up", "node.up"]);
    expect(second.of("node.up").map((e) => e.previous)).toEqual(["new", "new"]);
  });
});

describe("key files", () => {
  const config = (keyPath: string) => {
    const path = join(dir, `hb-${Math.random()}.yaml`);
    writeFileSync(path, `listen: 127.0.0.1:0\nkeys:\n  k1: ${keyPath}\n`);
    return path;
  };
  const problem = async (keyPath: string, code = "HB_ERR_CONFIG"): Promise<string> => {
    const path = config(keyPath);
    const err = await loadConfig(path).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(HbError);
    expect((err as HbError).code).toBe(code);
    return (err as HbError).details.join("\n").replace(path, "CONFIG");
  };
  const key = (name: string, text: string, mode: number): string => {
    const p = join(dir, name);
    writeFileSync(p, text);
    chmodSync(p, mode);
    return p;
  };

  it("accepts mode 0600 and 0640 keys of 16 bytes or more", async () => {
    for (const mode of [0o600, 0o640, 0o400]) {
      const { keyring: ring } = await loadConfig(config(key(`ok-${mode}`, "0123456789abcdef\n", mode)));
      expect(ring.has("k1")).toBe(true);
    }
  });

  it.each([
    // A key that cannot be read is missing input (exit 66); one that can but is unfit, a bad config (78).
    ["missing", () => join(dir, "nope"), "no such file", "HB_ERR_KEY_FILE"],
    ["empty", () => key("empty", "\n", 0o600), "is empty", "HB_ERR_CONFIG"],
    [
      "too short",
      () => key("short", "0123456789abcde", 0o600),
      "holds 15 bytes; keys need at least 16",
      "HB_ERR_CONFIG",
    ],
    [
      "readable by others",
      () => key("world", "0123456789abcdef", 0o644),
      "accessible to others",
      "HB_ERR_CONFIG",
    ],
    [
      "writable by its group",
      () => key("groupw", "0123456789abcdef", 0o660),
      "writable by its group",
      "HB_ERR_CONFIG",
    ],
  ])(
    "refuses a key file that is %s, with the config's line and column",
    async (_what, make, message, code) => {
      expect(await problem(make(), code)).toMatch(new RegExp(`^CONFIG:3:3: key k1: .*${message}`));
    },
  );
});
