// State shared between the monitors of a cluster: a Replica alone (a map with a digest), and
// replicas kept alike by monitors on one fake clock and a fake network: local changes pushed,
// losses repaired by the digests, an old record that comes back refused, a large map paced over
// several intervals, forged sync datagrams refused and counted, a sync datagram as proof of life.
import { createSecretKey } from "node:crypto";
import { describe, expect, it } from "vitest";
import { renderTable } from "../../src/cli/status-table.js";
import { HbError } from "../../src/errors.js";
import { Monitor } from "../../src/monitor/monitor.js";
import { Replica, type ReplicaCodec } from "../../src/monitor/replica.js";
import { MAX_SYNC_DATAGRAMS_PER_INTERVAL } from "../../src/monitor/sync.js";
import {
  Kind,
  MAX_SYNC_PAYLOAD_BYTES,
  decode,
  emptyDatagram,
  encode,
  type SigningKey,
} from "../../src/wire/protocol.js";
import { FakeClock } from "../support/fake-clock.js";
import { FakeNetwork, type NetworkSocket, type Sent } from "../support/fake-network.js";
import { TEST_KEY, config, type Recorded } from "../support/monitor-harness.js";

interface Stamped {
  value: string;
  at: number;
}

/** The later stamp wins; at equal stamps, the larger value (a total order). */
const codec: ReplicaCodec<Stamped> = {
  wins: (a, b) => a.at > b.at || (a.at === b.at && a.value > b.value),
  encode: (v) => ({ value: v.value, at: v.at }),
  decode: (raw) => {
    const r = raw as Partial<Stamped> | null;
    return typeof r?.value === "string" && typeof r.at === "number" ? { value: r.value, at: r.at } : null;
  },
};

const v = (value: string, at: number): Stamped => ({ value, at });

describe("a replica alone (no cluster)", () => {
  it("is a map: set, get, entries and size; a value that does not win is not stored", () => {
    const r = new Replica("test", codec);
    r.set("a", v("one", 2));
    r.set("b", v("two", 1));
    r.set("a", v("older", 1));
    expect(r.get("a")).toEqual(v("one", 2));
    expect(r.size).toBe(2);
    expect([...r.entries()]).toEqual([
      ["a", v("one", 2)],
      ["b", v("two", 1)],
    ]);
    r.set("a", v("newer", 3));
    expect(r.get("a")).toEqual(v("newer", 3));
  });

  it("never tells onChange of its own changes", () => {
    const r = new Replica("test", codec);
    const changes: unknown[] = [];
    r.onChange = (...change) => changes.push(change);
    r.set("a", v("one", 1));
    r.set("a", v("two", 2));
    expect(changes).toEqual([]);
  });

  it("has a digest that depends on the records only, not on the order they came in", () => {
    const x = new Replica("test", codec);
    const y = new Replica("test", codec);
    const empty = x.digest();
    expect(empty).toMatch(/^[0-9a-f]{32}$/);
    x.set("a", v("one", 1));
    x.set("b", v("two", 1));
    x.set("a", v("three", 2));
    y.set("b", v("two", 1));
    y.set("a", v("three", 2));
    expect(x.digest()).toBe(y.digest());
    expect(x.digest()).not.toBe(empty);
    y.set("b", v("four", 2));
    expect(x.digest()).not.toBe(y.digest());
  });

  it("refuses a record too large for one sync datagram, with HB_ERR_USAGE, and keeps what it had", () => {
    const r = new Replica("test", codec);
    const big = v("x".repeat(MAX_SYNC_PAYLOAD_BYTES), 1);
    expect(r.fits("a", big)).toBe(false);
    expect(r.fits("a", v("small", 1))).toBe(true);
    r.set("a", v("small", 1));
    let error: unknown;
    try {
      r.set("a", v(big.value, 2));
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(HbError);
    expect((error as HbError).code).toBe("HB_ERR_USAGE");
    expect(r.get("a")).toEqual(v("small", 1));
  });

  it("drops at prune what keep refuses, and its digest with it", () => {
    const r = new Replica("test", { ...codec, keep: (value, wallMs) => value.at > wallMs - 100 });
    const other = new Replica("test", codec);
    r.set("old", v("one", 1));
    r.set("new", v("two", 500));
    other.set("new", v("two", 500));
    r.prune(550);
    expect([...r.entries()].map(([k]) => k)).toEqual(["new"]);
    expect(r.digest()).toBe(other.digest());
  });

  it("takes only a name that is an id of up to 32 characters", () => {
    expect(() => new Replica("no spaces", codec)).toThrow(HbError);
    expect(() => new Replica("x".repeat(33), codec)).toThrow(HbError);
  });
});

const KC: SigningKey = { id: "kc", secret: createSecretKey(Buffer.from("cluster-secret-0123456789abcdef!")) };
const keyring = () =>
  new Map([
    [TEST_KEY.id, TEST_KEY.secret],
    [KC.id, KC.secret],
  ]);
const INTERVAL_MS = 100;

interface Member {
  id: string;
  port: number;
  monitor: Monitor;
  replica: Replica<Stamped>;
  socket: NetworkSocket;
  events: Recorded[];
  /** What onChange was told. */
  changes: [string, Stamped, Stamped | undefined][];
}

/** Monitors of one cluster on one fake clock, mon-a on port 1, mon-b on 2, and so on. */
class Site {
  readonly clock = new FakeClock();
  readonly net = new FakeNetwork(this.clock);

  constructor(readonly ids: string[]) {}

  portOf(id: string): number {
    return this.ids.indexOf(id) + 1;
  }

  yaml(self: string): string {
    const monitors = this.ids.map((id) => `${id}: "127.0.0.1:${this.portOf(id)}"`).join(", ");
    return `
listen: 127.0.0.1:${this.portOf(self)}
keys: { k1: /x, kc: /y }
auth: optional
defaults: { interval: 100ms, timeout: 1s }
nodes: { n1: {} }
cluster:
  self: ${self}
  monitors: { ${monitors} }
  interval: 100ms
  timeout: 500ms
  key: kc
`;
  }

  /** Starts monitor `id`; `before` fills its replica before it starts (a copy kept from before). */
  async start(id: string, before?: (replica: Replica<Stamped>) => void): Promise<Member> {
    const port = this.portOf(id);
    const socket = this.net.socket(port);
    const events: Recorded[] = [];
    const monitor = new Monitor(
      { config: config(this.yaml(id)), keyring: keyring() },
      {
        clock: this.clock,
        socket,
        emit: (event, fields) => events.push({ event, t: this.clock.monoMs(), ...fields } as Recorded),
      },
    );
    const replica = monitor.peers!.replica("test", codec);
    const member: Member = { id, port, monitor, replica, socket, events, changes: [] };
    replica.onChange = (key, value, old) => member.changes.push([key, value, old]);
    before?.(replica);
    await monitor.listen();
    return member;
  }

  run(ms: number): void {
    this.clock.advance(ms);
  }
}

function sorted(m: Member): [string, Stamped][] {
  return [...m.replica.entries()].sort(([a], [b]) => (a < b ? -1 : 1));
}

function rejected(m: Member): Record<string, number> {
  return Object.fromEntries(Object.entries(m.monitor.status().datagrams.rejected).filter(([, n]) => n > 0));
}

/** The payload of a sync datagram, parsed; null for the other kinds. */
function syncPayload(msg: Buffer): { digests?: unknown; records?: unknown[] } | null {
  const dg = emptyDatagram();
  if (decode(msg, dg) !== null || dg.kind !== Kind.SYNC) return null;
  return JSON.parse(msg.toString("utf8", dg.payloadOffset, dg.payloadOffset + dg.payloadLength)) as {
    records?: unknown[];
  };
}

const isRecords = (sent: Sent): boolean => syncPayload(sent.msg)?.records !== undefined;

describe("replicas shared by the monitors of a cluster", () => {
  it("converge between two monitors after local changes on each, within one peer interval, with no refusal", async () => {
    const site = new Site(["mon-a", "mon-b"]);
    const a = await site.start("mon-a");
    const b = await site.start("mon-b");
    site.run(3 * INTERVAL_MS);
    a.replica.set("x", v("from-a", 1));
    b.replica.set("y", v("from-b", 1));
    site.run(INTERVAL_MS / 4);
    expect(sorted(a)).toEqual([
      ["x", v("from-a", 1)],
      ["y", v("from-b", 1)],
    ]);
    expect(sorted(b)).toEqual(sorted(a));
    expect(a.replica.digest()).toBe(b.replica.digest());
    expect(a.changes).toEqual([["y", v("from-b", 1), undefined]]);
    expect(b.changes).toEqual([["x", v("from-a", 1), undefined]]);
    site.run(5 * INTERVAL_MS);
    for (const m of [a, b]) {
      expect(rejected(m)).toEqual({});
      expect(m.events.filter((e) => e.event === "datagrams.rejected")).toEqual([]);
    }
    // Digests went both ways every interval, and nothing was sent again once they agreed.
    expect(site.net.log.filter((s) => syncPayload(s.msg)?.digests !== undefined).length).toBeGreaterThan(10);
    expect(site.net.log.filter(isRecords)).toHaveLength(2);
  });

  it("converge among three monitors to the record that wins, whichever monitor had it", async () => {
    const site = new Site(["mon-a", "mon-b", "mon-c"]);
    const [a, b, c] = [await site.start("mon-a"), await site.start("mon-b"), await site.start("mon-c")];
    site.run(3 * INTERVAL_MS);
    a.replica.set("k", v("a", 1));
    b.replica.set("k", v("b", 3));
    c.replica.set("k", v("c", 2));
    c.replica.set("only-c", v("c", 1));
    site.run(INTERVAL_MS);
    for (const m of [a, b, c]) {
      expect(sorted(m), m.id).toEqual([
        ["k", v("b", 3)],
        ["only-c", v("c", 1)],
      ]);
      expect(m.replica.digest()).toBe(a.replica.digest());
      expect(rejected(m)).toEqual({});
    }
    expect(b.changes.map(([key]) => key)).toEqual(["only-c"]);
  });

  it("repair a lost push at the next digest", async () => {
    const site = new Site(["mon-a", "mon-b"]);
    const a = await site.start("mon-a");
    const b = await site.start("mon-b");
    site.run(3 * INTERVAL_MS);
    site.net.drop = (s) => s.from === a.port && isRecords(s);
    a.replica.set("x", v("one", 1));
    site.run(INTERVAL_MS / 4);
    expect(b.replica.get("x")).toBeUndefined();
    site.net.drop = undefined;
    site.run(INTERVAL_MS + INTERVAL_MS / 4);
    expect(b.replica.get("x")).toEqual(v("one", 1));
    expect(b.replica.digest()).toBe(a.replica.digest());
    // The loss is counted as loss of mon-a's datagrams, and nothing was refused.
    expect(rejected(b)).toEqual({});
  });

  it("send only the changes of a copy that changes steadily on both monitors, never the whole copy again", async () => {
    const site = new Site(["mon-a", "mon-b"]);
    const a = await site.start("mon-a", (r) => {
      for (let i = 0; i < 3000; i++) r.set(`node-${i}`, v("down", i));
    });
    const b = await site.start("mon-b");
    site.run(10 * INTERVAL_MS);
    expect(b.replica.digest()).toBe(a.replica.digest());
    const before = site.net.log.length;
    let changes = 0;
    // Changes on each side at every phase of the beat, a few per interval.
    for (let t = 0; t < 50 * INTERVAL_MS; t += 10) {
      if (t % 70 === 0) {
        a.replica.set(`a-${t}`, v("x", t));
        changes++;
      }
      if (t % 110 === 30) {
        b.replica.set(`b-${t}`, v("x", t));
        changes++;
      }
      site.run(10);
    }
    site.run(INTERVAL_MS);
    expect(b.replica.digest()).toBe(a.replica.digest());
    expect(site.net.log.slice(before).filter(isRecords)).toHaveLength(changes);
  });

  it("keep the record that replaced another while a monitor was stopped, when it comes back with the old one", async () => {
    const site = new Site(["mon-a", "mon-b", "mon-c"]);
    const [a, b, c] = [await site.start("mon-a"), await site.start("mon-b"), await site.start("mon-c")];
    site.run(3 * INTERVAL_MS);
    a.replica.set("window", v("open", 1));
    site.run(INTERVAL_MS);
    expect(c.replica.get("window")).toEqual(v("open", 1));
    await c.monitor.close();
    site.run(INTERVAL_MS);
    a.replica.set("window", v("ended", 2));
    site.run(INTERVAL_MS);
    expect(b.replica.get("window")).toEqual(v("ended", 2));
    const seen = [a.changes.length, b.changes.length];

    const back = await site.start("mon-c", (r) => r.set("window", v("open", 1)));
    site.run(5 * INTERVAL_MS);
    for (const m of [a, b, back]) expect(m.replica.get("window"), m.id).toEqual(v("ended", 2));
    expect([a.changes.length, b.changes.length]).toEqual(seen);
    expect(back.changes).toEqual([["window", v("ended", 2), v("open", 1)]]);
  });

  it(`converge with 100 000 records over several intervals, at most ${MAX_SYNC_DATAGRAMS_PER_INTERVAL} record datagrams per peer per interval`, async () => {
    const site = new Site(["mon-a", "mon-b"]);
    const count = 100_000;
    const a = await site.start("mon-a", (r) => {
      for (let i = 0; i < count; i++) r.set(`node-${i}`, v("down", i));
    });
    const start = site.clock.monoMs();
    const b = await site.start("mon-b");
    b.replica.set("only-b", v("up", 1));
    let intervals = 0;
    while (b.replica.digest() !== a.replica.digest() && intervals < 100) {
      site.run(INTERVAL_MS);
      intervals++;
    }
    expect(b.replica.size).toBe(count + 1);
    expect(a.replica.get("only-b")).toEqual(v("up", 1));
    expect(b.changes).toHaveLength(count);
    // Paced: not in a burst, and not for ever.
    expect(intervals).toBeGreaterThan(count / MAX_SYNC_DATAGRAMS_PER_INTERVAL / 30);
    expect(intervals).toBeLessThan(60);
    const perInterval = new Map<number, number>();
    for (const sent of site.net.log)
      if (sent.from === a.port && isRecords(sent)) {
        const window = Math.floor((sent.t - start) / INTERVAL_MS);
        perInterval.set(window, (perInterval.get(window) ?? 0) + 1);
      }
    expect(Math.max(...perInterval.values())).toBeLessThanOrEqual(MAX_SYNC_DATAGRAMS_PER_INTERVAL);
    expect(rejected(b)).toEqual({});
    // Once alike, they send digests only.
    const before = site.net.log.length;
    site.run(3 * INTERVAL_MS);
    expect(site.net.log.slice(before).filter(isRecords)).toEqual([]);
  }, 60_000);

  it("refuse, count and ignore forged sync datagrams: another key, a bad tag, not from a monitor, unsigned, replayed", async () => {
    const site = new Site(["mon-a", "mon-b"]);
    const b = await site.start("mon-b");
    const payload = Buffer.from(JSON.stringify({ replica: "test", records: [["x", v("forged", 99)]] }));
    const sync = (nodeId: string, sequence: number, key: SigningKey, body = payload) =>
      encode({ kind: Kind.SYNC, nodeId, incarnation: site.clock.wallMs(), sequence, payload: body }, key);
    const flipped = sync("mon-a", 2, KC);
    flipped[flipped.length - 1] = flipped[flipped.length - 1]! ^ 1;
    const signed = sync("mon-a", 3, KC);
    const unsigned = Buffer.from(signed.subarray(0, signed.length - 1 - KC.id.length - 32));
    unsigned[4] = 0;
    for (const msg of [
      sync("mon-a", 1, TEST_KEY),
      flipped,
      sync("n1", 1, TEST_KEY),
      sync("n1", 1, KC),
      sync("mon-b", 1, KC),
      unsigned,
    ])
      b.socket.deliver(msg);
    site.run(INTERVAL_MS);
    expect(b.replica.size).toBe(0);
    expect(b.monitor.peers!.view().peers[0]!.state).toBe("new");
    expect(rejected(b)).toEqual({ key_not_allowed: 1, bad_tag: 1, not_a_monitor: 3, malformed: 1 });
    // Counted, and said in one line.
    expect(b.events.filter((e) => e.event === "datagrams.rejected")).toHaveLength(1);

    // A genuine one, then a later one, then the first again: the replay is refused by the mark.
    const older = Buffer.from(JSON.stringify({ replica: "test", records: [["x", v("older", 1)]] }));
    const first = sync("mon-a", 10, KC, older);
    b.socket.deliver(first);
    expect(b.replica.get("x")).toEqual(v("older", 1));
    b.socket.deliver(sync("mon-a", 11, KC, Buffer.from(JSON.stringify({ digests: {} }))));
    b.socket.deliver(first);
    expect(rejected(b).replay).toBe(1);
  });

  it("count what a genuine peer sends that is no sync message or no record, and a failing onChange, and go on", async () => {
    const site = new Site(["mon-a", "mon-b"]);
    const b = await site.start("mon-b");
    const incarnation = site.clock.wallMs();
    let sequence = 0;
    const send = (body: unknown) =>
      b.socket.deliver(
        encode(
          {
            kind: Kind.SYNC,
            nodeId: "mon-a",
            incarnation,
            sequence: ++sequence,
            payload: Buffer.from(typeof body === "string" ? body : JSON.stringify(body)),
          },
          KC,
        ),
      );
    send("not json");
    send({ something: "else" });
    send({ replica: "unknown", records: [["x", v("one", 1)]] });
    send({ replica: "test", records: [["x", { value: 1 }], [1, v("one", 1)], "x", ["ok", v("one", 1)]] });
    b.replica.onChange = () => {
      throw new Error("the owner's bug");
    };
    send({ replica: "test", records: [["fails", v("one", 1)]] });
    expect(b.monitor.peers!.syncCounts()).toMatchObject({
      received: 5,
      malformed: 2,
      refused: 3,
      taken: 1,
      failed: 1,
    });
    expect(b.replica.get("ok")).toEqual(v("one", 1));
    expect(b.replica.get("fails")).toEqual(v("one", 1));
    expect(rejected(b)).toEqual({});
  });

  it("take a sync datagram as proof of life of the monitor that sent it", async () => {
    const site = new Site(["mon-a", "mon-b"]);
    const b = await site.start("mon-b");
    const incarnation = site.clock.wallMs();
    const digests = Buffer.from(JSON.stringify({ digests: { test: b.replica.digest() } }));
    let sequence = 0;
    for (let t = 0; t < 10 * INTERVAL_MS; t += INTERVAL_MS) {
      b.socket.deliver(
        encode({ kind: Kind.SYNC, nodeId: "mon-a", incarnation, sequence: ++sequence, payload: digests }, KC),
      );
      site.run(INTERVAL_MS);
    }
    expect(b.events.filter((e) => e.event === "peer.up")).toHaveLength(1);
    expect(b.monitor.peers!.view().peers[0]!.state).toBe("up");
    expect(b.monitor.peers!.speaker()).toBe("mon-a");
    expect(rejected(b)).toEqual({});
  });

  it("show in the status which peers share them, and name a peer that beats but shares nothing", async () => {
    const site = new Site(["mon-a", "mon-b", "mon-c"]);
    const a = await site.start("mon-a");
    await site.start("mon-b");
    // mon-c is of an older version: it beats, and never sends a sync datagram.
    const older = site.net.socket(site.portOf("mon-c"));
    const incarnation = site.clock.wallMs();
    for (let sequence = 1; sequence <= 5; sequence++) {
      void older.send(encode({ kind: Kind.BEAT, nodeId: "mon-c", incarnation, sequence }, KC), {
        host: "127.0.0.1",
        port: a.port,
      });
      site.run(INTERVAL_MS);
    }
    const doc = a.monitor.status({ nodes: false });
    expect(doc.cluster!.peers.map((p) => [p.peer, p.state, p.shares])).toEqual([
      ["mon-b", "up", true],
      ["mon-c", "up", false],
    ]);
    expect(renderTable(doc)).toMatch(
      /mon-b up \(heard [^)]+\), mon-c up \(heard [^)]+\) \(shares no state: upgrade it\)/,
    );
  });

  it("are registered once per name", async () => {
    const site = new Site(["mon-a", "mon-b"]);
    const a = await site.start("mon-a");
    expect(() => a.monitor.peers!.replica("test", codec)).toThrow(HbError);
  });

  it("send no sync datagram where no replica is shared", async () => {
    const site = new Site(["mon-a", "mon-b"]);
    const socket = site.net.socket(1);
    const monitor = new Monitor(
      { config: config(site.yaml("mon-a")), keyring: keyring() },
      { clock: site.clock, socket, emit: () => {} },
    );
    await monitor.listen();
    site.run(5 * INTERVAL_MS);
    expect(site.net.log.length).toBeGreaterThan(4);
    expect(site.net.log.filter((s) => syncPayload(s.msg) !== null)).toEqual([]);
    await monitor.close();
  });
});
