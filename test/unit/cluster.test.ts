// Monitors that watch each other, in process on a fake clock: peers judged at their deadlines,
// who speaks derived from their states, settling after a start, refusal of forged peer
// datagrams, isolation, and the cluster section of the config.
import { createSecretKey } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseConfig } from "../../src/config/parse.js";
import { formatProblem } from "../../src/config/types.js";
import { Monitor } from "../../src/monitor/monitor.js";
import { Kind, decode, emptyDatagram, encode, nodeIdOf, type SigningKey } from "../../src/wire/protocol.js";
import { FakeClock } from "../support/fake-clock.js";
import { FakeSocket } from "../support/fake-socket.js";
import { TEST_KEY, config, type Recorded } from "../support/monitor-harness.js";

const KC: SigningKey = { id: "kc", secret: createSecretKey(Buffer.from("cluster-secret-0123456789abcdef!")) };
const keyring = () =>
  new Map([
    [TEST_KEY.id, TEST_KEY.secret],
    [KC.id, KC.secret],
  ]);

const yaml = (self: string, extra = "") => `
keys: { k1: /x, kc: /y }
auth: optional
defaults: { interval: 100ms, timeout: 1s }
nodes: { n1: {}, n2: {} }
cluster:
  self: ${self}
  monitors: { mon-a: "127.0.0.1:1", mon-b: "127.0.0.1:2", mon-c: "127.0.0.1:3" }
  interval: 100ms
  timeout: 500ms
  key: kc
${extra}`;

class ClusterHarness {
  readonly clock = new FakeClock();
  readonly socket = new FakeSocket();
  readonly events: Recorded[] = [];
  readonly speaking: boolean[] = [];
  readonly monitor: Monitor;
  private readonly seqs = new Map<string, number>();

  constructor(self: string, extra = "") {
    this.monitor = new Monitor(
      { config: config(yaml(self, extra)), keyring: keyring() },
      {
        clock: this.clock,
        socket: this.socket,
        emit: (event, fields) => this.events.push({ event, t: this.clock.monoMs(), ...fields } as Recorded),
        onSpeaking: (speaking) => this.speaking.push(speaking),
      },
    );
  }

  /** A heartbeat of `id`, signed with `key` (null: unsigned). */
  beat(id: string, key: SigningKey | null = KC, incarnation = 1): void {
    const sequence = (this.seqs.get(id) ?? 0) + 1;
    this.seqs.set(id, sequence);
    this.socket.deliver(encode({ kind: Kind.BEAT, nodeId: id, incarnation, sequence }, key ?? undefined));
  }

  /** `ids` beat every 100 ms for `ms`. */
  run(ms: number, ids: string[]): void {
    for (let t = 0; t < ms; t += 100) {
      for (const id of ids) this.beat(id, id.startsWith("mon-") ? KC : null);
      this.clock.advance(100);
    }
  }

  names(): string[] {
    return this.events.map((e) => e.event);
  }

  of(event: string) {
    return this.events.filter((e) => e.event === event) as unknown as Record<string, unknown>[];
  }
}

describe("monitors that watch each other", () => {
  it("beat to every other monitor, signed with the cluster key, and leave when they stop", async () => {
    const h = new ClusterHarness("mon-b");
    await h.monitor.listen();
    h.clock.advance(250);
    const sent = h.socket.sent.map(({ msg, to }) => {
      const dg = emptyDatagram();
      expect(decode(msg, dg)).toBeNull();
      return { to: to.port, id: nodeIdOf(dg), key: dg.keyId, kind: dg.kind };
    });
    expect(sent.slice(0, 2)).toEqual([
      { to: 1, id: "mon-b", key: "kc", kind: Kind.BEAT },
      { to: 3, id: "mon-b", key: "kc", kind: Kind.BEAT },
    ]);
    expect(sent).toHaveLength(6);
    await h.monitor.close();
    const kinds = h.socket.sent.slice(-2).map(({ msg }) => {
      const dg = emptyDatagram();
      decode(msg, dg);
      return dg.kind;
    });
    expect(kinds).toEqual([Kind.LEAVE, Kind.LEAVE]);
  });

  it("judges a peer down at its exact deadline, and the next in rank then speaks", async () => {
    const h = new ClusterHarness("mon-b");
    await h.monitor.listen();
    h.run(1000, ["mon-a", "mon-c", "n1", "n2"]);
    expect(h.monitor.peers!.speaker()).toBe("mon-a");
    expect(h.monitor.peers!.speaking()).toBe(false);
    const lastA = h.clock.monoMs() - 100;
    h.run(1000, ["mon-c", "n1", "n2"]);
    const down = h.of("peer.down");
    expect(down).toHaveLength(1);
    expect(down[0]).toMatchObject({ peer: "mon-a", timeoutMs: 500, t: lastA + 500 });
    expect(h.monitor.peers!.speaker()).toBe("mon-b");
    expect(h.speaking).toEqual([false, true]);
    expect(h.of("monitor.speaking").at(-1)).toMatchObject({ speaking: true, speaker: "mon-b" });
    // The voice moves with the peer.down, never ahead of it.
    const names = h.names();
    expect(names.lastIndexOf("monitor.speaking")).toBeGreaterThan(names.indexOf("peer.down"));
    // Back: mon-a speaks again once it has stayed up for the settle time (the timeout here).
    h.run(300, ["mon-a", "mon-c", "n1", "n2"]);
    expect(h.of("peer.up").at(-1)).toMatchObject({ peer: "mon-a", previous: "down" });
    expect(h.speaking).toEqual([false, true]);
    h.run(400, ["mon-a", "mon-c", "n1", "n2"]);
    expect(h.speaking).toEqual([false, true, false]);
  });

  it("writes a flapping peer's every peer.down and return from down, and the voice moves with each", async () => {
    const h = new ClusterHarness("mon-b");
    await h.monitor.listen();
    h.run(1000, ["mon-a", "mon-c", "n1", "n2"]);
    // mon-a is silent for 700 ms, then beats for 700 ms, six times: late, down, up each time.
    for (let cycle = 0; cycle < 6; cycle++) {
      h.run(700, ["mon-c", "n1", "n2"]);
      h.run(700, ["mon-a", "mon-c", "n1", "n2"]);
    }
    expect(h.of("peer.down")).toHaveLength(6);
    expect(h.of("peer.up").filter((e) => e.previous === "down")).toHaveLength(6);
    expect(h.of("peer.late").length).toBeLessThan(6);
    // Down: this monitor speaks; back and up for the settle time: mon-a speaks again.
    expect(h.speaking).toEqual([false, ...Array.from({ length: 6 }, () => [true, false]).flat()]);
    const voice = h.names().filter((e) => e === "peer.down" || e === "peer.up" || e === "monitor.speaking");
    const cycle = ["peer.down", "monitor.speaking", "peer.up", "monitor.speaking"];
    expect(voice.slice(voice.indexOf("peer.down"))).toEqual(Array.from({ length: 6 }, () => cycle).flat());
  });

  it("does not speak after a start until it has heard the monitors ranked before it, or the settle time passed", async () => {
    const h = new ClusterHarness("mon-b", "  settle: 800ms");
    await h.monitor.listen();
    h.run(700, ["n1", "n2"]);
    expect(h.monitor.peers!.speaking()).toBe(false);
    expect(h.monitor.peers!.speaker()).toBeNull();
    h.run(200, ["n1", "n2"]);
    expect(h.monitor.peers!.speaking()).toBe(true);
  });

  it("speaks always with speak: all", async () => {
    const h = new ClusterHarness("mon-c", "  speak: all");
    await h.monitor.listen();
    h.run(500, ["mon-a", "mon-b", "n1", "n2"]);
    expect(h.monitor.peers!.speaking()).toBe(true);
  });

  it("refuses forged peer datagrams: unsigned, signed with a node's key, or a node signing with the cluster key", async () => {
    const h = new ClusterHarness("mon-b");
    await h.monitor.listen();
    h.beat("mon-a", null);
    h.beat("mon-a", TEST_KEY);
    h.beat("n1", KC);
    const rejected = h.monitor.status().datagrams.rejected;
    expect(rejected).toMatchObject({ unauthenticated: 1, key_not_allowed: 2 });
    expect(h.names().filter((e) => e !== "monitor.speaking")).toEqual([]);
    const forged = encode({ kind: Kind.BEAT, nodeId: "mon-a", incarnation: 1, sequence: 1 }, KC);
    forged[forged.length - 1]! ^= 1;
    h.socket.deliver(forged);
    expect(h.monitor.status().datagrams.rejected).toMatchObject({ bad_tag: 1 });
    expect(h.of("peer.up")).toEqual([]);
  });

  it("finds itself cut off when it hears no peer and no node, says so once, and judges no one until it hears again", async () => {
    const h = new ClusterHarness("mon-a");
    await h.monitor.listen();
    h.run(1000, ["mon-b", "mon-c", "n1", "n2"]);
    h.run(3000, []);
    expect(h.of("monitor.isolated")).toHaveLength(1);
    expect(h.of("node.down")).toEqual([]);
    expect(h.of("peer.down")).toEqual([]);
    // Heard again: the ones that came back are up, the rest are judged down.
    h.run(1000, ["mon-b", "n1"]);
    expect(h.of("node.down").map((e) => e.node)).toEqual(["n2"]);
    expect(h.of("peer.down").map((e) => e.peer)).toEqual(["mon-c"]);
    expect(h.of("monitor.isolated")).toHaveLength(1);
  });

  it("reports the other monitors and who speaks in /status", async () => {
    const h = new ClusterHarness("mon-b");
    await h.monitor.listen();
    h.run(300, ["mon-a", "n1", "n2"]);
    expect(h.monitor.status({ nodes: false }).cluster).toMatchObject({
      self: "mon-b",
      speak: "leader",
      speaker: "mon-a",
      speaking: false,
      peers: [
        { peer: "mon-a", address: "127.0.0.1:1", state: "up" },
        { peer: "mon-c", address: "127.0.0.1:3", state: "new", lastSeen: null },
      ],
    });
  });
});

describe("a monitor whose peer has an address of the other family", () => {
  it("warns at start that its heartbeats cannot reach that peer", async () => {
    const text = yaml("mon-a").replace('mon-c: "127.0.0.1:3"', 'mon-c: "[::1]:3"');
    const monitor = new Monitor(
      { config: config(text), keyring: keyring() },
      { clock: new FakeClock(), socket: new FakeSocket(), emit: () => undefined },
    );
    await monitor.listen();
    expect(monitor.startupWarnings()).toEqual([
      [
        "cluster",
        "cluster.monitors.mon-c: [::1]:3 cannot be reached from listen 0.0.0.0:26722 (udp4): use an address of the same family",
      ],
    ]);
    await monitor.close();
  });
});

describe("the cluster section of the config", () => {
  const problems = (text: string) => {
    const r = parseConfig(text, "hb.yaml");
    return r.ok ? [] : r.problems.map((p) => formatProblem("hb.yaml", p));
  };

  it("needs a key of the monitors' own, two monitors, and ids that are not nodes'", () => {
    expect(problems("cluster: { monitors: { a: '127.0.0.1:1' } }")).toEqual([
      "hb.yaml:1:1: cluster needs key: the key id peer heartbeats are signed with (peer traffic is always authenticated)",
      "hb.yaml:1:12: cluster.monitors: a cluster has at least two monitors",
    ]);
    expect(
      problems(
        "keys: { kc: /k }\nnodes: { a: { keys: [kc] } }\ncluster: { monitors: { a: '127.0.0.1:1', b: '127.0.0.1:2' }, key: kc, self: c }",
      ),
    ).toEqual([
      `hb.yaml:2:22: nodes.a.keys: "kc" is the monitors' or a webhook's; a node needs a key of its own`,
      'hb.yaml:3:24: cluster.monitors: "a" is also a node under nodes; ids must differ',
      'hb.yaml:3:77: cluster.self: "c" is not one of cluster.monitors',
    ]);
  });

  it("defaults its thresholds from the interval, and does not turn authentication on", () => {
    const r = parseConfig(
      "keys: { kc: /k }\ncluster: { monitors: { a: '127.0.0.1:1', b: '127.0.0.1:2' }, key: kc, interval: 2s }",
      "hb.yaml",
    );
    expect(r.ok && r.config.cluster).toMatchObject({
      intervalMs: 2000,
      timeoutMs: 10_000,
      lateMs: 5000,
      settleMs: 10_000,
      speak: "leader",
      self: null,
    });
    expect(r.ok && r.config.auth).toBe("off");
  });
});

describe("a site chained to an upstream monitor", () => {
  it("beats upstream from the leader alone, as the site's node id, and from the next leader after a hand-over", async () => {
    const extra = "  upstream: { monitor: '127.0.0.1:9', id: site-a, key: k1 }";
    const a = new ClusterHarness("mon-a", extra);
    const b = new ClusterHarness("mon-b", extra);
    await a.monitor.listen();
    await b.monitor.listen();
    const upstreamOf = (h: ClusterHarness) =>
      h.socket.sent
        .filter(({ to }) => to.port === 9)
        .map(({ msg }) => {
          const dg = emptyDatagram();
          expect(decode(msg, dg)).toBeNull();
          return { id: nodeIdOf(dg), key: dg.keyId, incarnation: dg.incarnation };
        });
    a.run(1000, ["mon-b", "mon-c"]);
    b.run(1000, ["mon-a", "mon-c"]);
    expect(upstreamOf(a).length).toBeGreaterThan(5);
    expect(upstreamOf(a)[0]).toMatchObject({ id: "site-a", key: "k1" });
    expect(upstreamOf(b)).toEqual([]);
    // mon-a gone: mon-b leads, and beats upstream with a later incarnation.
    b.run(1000, ["mon-c"]);
    expect(upstreamOf(b).length).toBeGreaterThan(0);
    expect(upstreamOf(b)[0]!.incarnation).toBeGreaterThan(upstreamOf(a)[0]!.incarnation);
  });
});

describe("monitors that watch each other, where it is hard", () => {
  it("stops beating while cut off, so that a monitor that can send but not hear does not keep the others quiet", async () => {
    const h = new ClusterHarness("mon-a");
    await h.monitor.listen();
    h.run(1000, ["mon-b", "mon-c", "n1", "n2"]);
    const sentBefore = h.socket.sent.length;
    h.run(600, []);
    expect(h.of("monitor.isolated")).toHaveLength(1);
    const sentWhileCut = h.socket.sent.length;
    h.run(1000, []);
    expect(h.socket.sent.length).toBe(sentWhileCut);
    expect(sentWhileCut).toBeGreaterThan(sentBefore);
    // Heard again: it beats again.
    h.run(300, ["mon-b", "n1", "n2"]);
    expect(h.socket.sent.length).toBeGreaterThan(sentWhileCut);
  });

  it("yields after a stall longer than a peer timeout, for the settle time, though ranked first", async () => {
    const h = new ClusterHarness("mon-a");
    await h.monitor.listen();
    h.run(1000, ["mon-b", "mon-c", "n1", "n2"]);
    expect(h.monitor.peers!.speaking()).toBe(true);
    h.clock.freeze(1500); // SIGSTOP, then SIGCONT
    h.run(100, ["mon-b", "mon-c", "n1", "n2"]);
    expect(h.of("monitor.stalled")).toHaveLength(1);
    expect(h.monitor.peers!.speaker()).toBe("mon-b");
    expect(h.of("node.down")).toEqual([]);
    expect(h.of("peer.down")).toEqual([]);
    h.run(500, ["mon-b", "mon-c", "n1", "n2"]);
    expect(h.monitor.peers!.speaker()).toBe("mon-a");
  });

  it("does not speak after a start, even ranked first, until it has heard the others or settled", async () => {
    const h = new ClusterHarness("mon-a", "  settle: 800ms");
    await h.monitor.listen();
    expect(h.monitor.peers!.speaking()).toBe(false);
    h.run(200, ["mon-b", "mon-c"]);
    expect(h.monitor.peers!.speaking()).toBe(true);
  });

  it("counts a replayed peer heartbeat as a rejection", async () => {
    const h = new ClusterHarness("mon-b");
    await h.monitor.listen();
    const old = encode({ kind: Kind.BEAT, nodeId: "mon-a", incarnation: 1, sequence: 1 }, KC);
    h.socket.deliver(old);
    h.socket.deliver(old);
    expect(h.monitor.status().datagrams.rejected.replay).toBe(1);
  });

  it("starts a new upstream incarnation when a monitor that may have led meanwhile is back", async () => {
    const h = new ClusterHarness("mon-a", "  upstream: { monitor: '127.0.0.1:9', id: site-a }");
    await h.monitor.listen();
    h.run(500, ["mon-b", "mon-c"]);
    const incarnations = () =>
      new Set(
        h.socket.sent
          .filter(({ to }) => to.port === 9)
          .map(({ msg }) => {
            const dg = emptyDatagram();
            decode(msg, dg);
            return dg.incarnation;
          }),
      );
    expect(incarnations().size).toBe(1);
    h.run(1500, ["mon-c"]); // mon-b down
    h.run(500, ["mon-b", "mon-c"]); // and back: it may have beaten upstream meanwhile
    expect(incarnations().size).toBe(2);
  });
});

describe("a peer's restart", () => {
  it("is a return after a clean stop (peer.left, then peer.up from left) and a crash without one (peer.restarted)", async () => {
    const h = new ClusterHarness("mon-b");
    await h.monitor.listen();
    h.run(300, ["mon-a", "mon-c"]);
    h.socket.deliver(encode({ kind: Kind.LEAVE, nodeId: "mon-a", incarnation: 1, sequence: 4 }, KC));
    h.clock.advance(100);
    h.beat("mon-a", KC, 2);
    const ofA = () => h.events.filter((e) => (e as { peer?: string }).peer === "mon-a").map((e) => e.event);
    expect(ofA()).toEqual(["peer.up", "peer.left", "peer.up"]);
    expect(h.of("peer.up").at(-1)).toMatchObject({ peer: "mon-a", previous: "left" });
    h.clock.advance(100);
    h.beat("mon-a", KC, 3);
    expect(ofA()).toEqual(["peer.up", "peer.left", "peer.up", "peer.restarted"]);
  });
});

describe("peer replay marks", () => {
  it("outlive a restart: a heartbeat captured from a monitor, replayed after it, changes nothing", async () => {
    const dir = mkdtempSync(join(tmpdir(), "hb-peers-"));
    try {
      const first = new Monitor(
        { config: config(yaml("mon-b")), keyring: keyring() },
        { clock: new FakeClock(), socket: new FakeSocket(), emit: () => undefined, stateDir: dir },
      );
      await first.listen();
      const captured = [1, 2, 3].map((sequence) =>
        encode({ kind: Kind.BEAT, nodeId: "mon-a", incarnation: 7, sequence }, KC),
      );
      const socket = (first as unknown as { deps: { socket: FakeSocket } }).deps.socket;
      for (const msg of captured) socket.deliver(msg);
      await first.close();

      const events: string[] = [];
      const clock = new FakeClock();
      const again = new FakeSocket();
      const second = new Monitor(
        { config: config(yaml("mon-b")), keyring: keyring() },
        { clock, socket: again, emit: (event) => events.push(event), stateDir: dir },
      );
      await second.listen();
      for (const msg of captured) again.deliver(msg);
      expect(second.status().datagrams.rejected.replay).toBe(3);
      expect(events).not.toContain("peer.up");
      await second.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("two monitors with one id", () => {
  it("are refused and said once: they could not see each other", async () => {
    const h = new ClusterHarness("mon-b");
    await h.monitor.listen();
    h.beat("mon-b");
    h.beat("mon-b");
    expect(h.monitor.status().datagrams.rejected.key_not_allowed).toBe(2);
    expect(h.of("monitor.warning")).toEqual([
      expect.objectContaining({
        problem: "cluster",
        detail: expect.stringContaining("another monitor sends heartbeats as mon-b") as unknown,
      }),
    ]);
  });
});
