// Notify in process, on a fake clock, with outputs that keep what they are given: only the
// speaker of a cluster offers notices, every monitor tells of recoveries, and a monitor that
// starts speaking says again what is down (nodes and peers) with the dedup keys they began with.
import { describe, expect, it } from "vitest";
import type { NotifySpec } from "../../src/config/types.js";
import type { EventFields, EventName } from "../../src/events.js";
import { BATCH_WAIT_MS } from "../../src/notify/lane.js";
import type { Notice } from "../../src/notify/notice.js";
import type { NodeFacts } from "../../src/notify/notices.js";
import { Notify } from "../../src/notify/notify.js";
import { DELIVERED, type Outcome, type Output } from "../../src/notify/output.js";
import { FakeClock } from "../support/fake-clock.js";

class KeptOutput implements Output {
  readonly kind = "exec" as const;
  constructor(
    readonly name: string,
    private readonly kept: Notice[],
  ) {}
  deliver(notices: readonly Notice[]): Promise<Outcome> {
    this.kept.push(...notices);
    return Promise.resolve(DELIVERED);
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

const pager = {
  kind: "exec",
  name: "pager",
  argv: ["/bin/true"],
  on: null,
  timeoutMs: 30_000,
  queue: 10_000,
  attempts: 1,
  line: 1,
  col: 1,
} as NotifySpec;

interface Node {
  state: string;
  lastSeen: number | null;
  incarnation: number | null;
  sequence: number | null;
}

const TIMEOUT_MS = 10_000;
const facts = (node: Node | undefined): NodeFacts | null =>
  node === undefined
    ? null
    : {
        labels: null,
        incarnation: node.incarnation,
        sequence: node.sequence,
        lastSeen: node.lastSeen,
        lateMs: TIMEOUT_MS / 2,
        timeoutMs: TIMEOUT_MS,
      };

/** Lets the promises of ended deliveries settle. */
const settle = () => new Promise((resolve) => setImmediate(resolve));

/**
 * A monitor's Notify as `hb monitor` wires it, with a cluster when `speaking` is given (what the
 * peers say of who speaks; the test changes it), its nodes and the peers it sees down.
 */
function monitor(
  name: string,
  clock: FakeClock,
  cluster: { speaking: boolean; downPeers?: Record<string, unknown>[] } | null,
  nodes = new Map<string, Node>(),
  peers = new Map<string, Node>(),
) {
  const delivered: Notice[] = [];
  const journal: { event: string; fields: Record<string, unknown> }[] = [];
  const ids = () => [...nodes.keys()];
  const notify = new Notify({
    clock,
    log: (event, fields) => journal.push({ event, fields }),
    monitor: name,
    facts: (node) => facts(nodes.get(node)),
    isDown: (node) => nodes.get(node)?.state === "down",
    statusUrl: () => null,
    forEachNode: (from, max, visit) => {
      const all = ids();
      const to = Math.min(all.length, from + max);
      for (let slot = from; slot < to; slot++) {
        const node = nodes.get(all[slot]!)!;
        visit(all[slot]!, node.state, node.lastSeen);
      }
      return to < all.length ? to : -1;
    },
    ...(cluster === null
      ? {}
      : {
          cluster: {
            speaking: () => cluster.speaking,
            peerFacts: (peer: string) => facts(peers.get(peer)),
            downPeers: () => cluster.downPeers ?? [],
          },
        }),
    makeOutput: (spec) => new KeptOutput(spec.name, delivered),
  });
  notify.configure([pager], new Map());
  const emit = <E extends EventName>(event: E, fields: EventFields[E]) => notify.emit(event, fields);
  /** Lets what was offered go out: the batch wait, then the deliveries' turns. */
  const run = async (ms = BATCH_WAIT_MS): Promise<void> => {
    clock.advance(ms);
    for (let i = 0; i < 4; i++) {
      clock.runImmediates();
      await settle();
    }
  };
  return { notify, emit, delivered, journal, run };
}

const WALL_LAST_SEEN = 1_800_000_000_000;
const downFields = (node: string, lastSeen: number | null) => ({
  node,
  lastSeen,
  silentMs: TIMEOUT_MS,
  timeoutMs: TIMEOUT_MS,
  at: (lastSeen ?? WALL_LAST_SEEN) + TIMEOUT_MS,
});
const told = (notices: Notice[]) => notices.map((n) => `${n.event}:${n.node ?? String(n.fields.peer)}`);

describe("Notify: who speaks", () => {
  it("without a cluster, offers every event an output carries", async () => {
    const m = monitor("solo", new FakeClock(), null);
    m.emit("node.down", downFields("a", WALL_LAST_SEEN));
    await m.run();
    expect(told(m.delivered)).toEqual(["node.down:a"]);
    expect(m.journal[0]!.fields).not.toHaveProperty("speaking");
  });

  it("only the speaker offers notices; the others write the event to the journal alone", async () => {
    const clock = new FakeClock();
    const a = monitor("mon-a", clock, { speaking: true });
    const b = monitor("mon-b", clock, { speaking: false });
    a.notify.speakingChanged(true);
    b.notify.speakingChanged(false);
    for (const m of [a, b]) {
      m.emit("node.down", downFields("n1", WALL_LAST_SEEN));
      m.emit("node.late", { node: "n2", silentMs: 6000, lateMs: 5000 });
    }
    await a.run();
    await b.run();
    expect(told(a.delivered)).toEqual(["node.down:n1", "node.late:n2"]);
    expect(b.delivered).toEqual([]);
    expect(a.journal.map((j) => [j.event, j.fields.monitor, j.fields.speaking])).toEqual([
      ["node.down", "mon-a", true],
      ["node.late", "mon-a", true],
    ]);
    expect(b.journal.map((j) => [j.event, j.fields.monitor, j.fields.speaking])).toEqual([
      ["node.down", "mon-b", false],
      ["node.late", "mon-b", false],
    ]);
  });

  it("speaks until it is told that it no longer does, then tells nothing that is not a recovery", async () => {
    const cluster = { speaking: true };
    const m = monitor("mon-b", new FakeClock(), cluster);
    m.notify.speakingChanged(true);
    // A monitor ranked before it came back: the event that ends this one's turn is still its own.
    cluster.speaking = false;
    m.emit("node.down", downFields("n1", WALL_LAST_SEEN));
    await m.run();
    m.notify.speakingChanged(false);
    m.emit("node.down", downFields("n2", WALL_LAST_SEEN));
    await m.run();
    expect(told(m.delivered)).toEqual(["node.down:n1"]);
    expect(m.journal.map((j) => j.fields.speaking)).toEqual([true, false]);
  });

  it("drops what it was about to send when it stops speaking, and says how much", async () => {
    const cluster = { speaking: true };
    const m = monitor("mon-b", new FakeClock(), cluster);
    m.notify.speakingChanged(true);
    m.emit("node.down", downFields("n1", WALL_LAST_SEEN));
    cluster.speaking = false;
    m.notify.speakingChanged(false);
    await m.run();
    expect(m.delivered).toEqual([]);
    const dropped = m.journal.find((j) => j.event === "notify.dropped");
    expect(dropped?.fields).toMatchObject({ output: "pager", notices: 1 });
  });
});

describe("Notify: recoveries", () => {
  it("are told by every monitor, speaking or not", async () => {
    const m = monitor("mon-b", new FakeClock(), { speaking: false });
    m.notify.speakingChanged(false);
    m.emit("node.up", { node: "n1", from: "10.0.0.1:4000", previous: "down", downMs: 30_000 });
    m.emit("node.up", { node: "n2", from: "10.0.0.2:4000", previous: "late" });
    m.emit("peer.up", { peer: "mon-a", from: "10.0.0.5:26722", previous: "down", downMs: 9000 });
    // Not recoveries: a first contact, a return from a planned stop, a new trouble.
    m.emit("node.up", { node: "n3", from: "10.0.0.3:4000", previous: "new" });
    m.emit("node.up", { node: "n4", from: "10.0.0.4:4000", previous: "left" });
    m.emit("node.late", { node: "n5", silentMs: 6000, lateMs: 5000 });
    await m.run();
    expect(told(m.delivered)).toEqual(["node.up:n1", "node.up:n2", "peer.up:mon-a"]);
    expect(m.journal.map((j) => j.fields.speaking)).toEqual([false, false, false, false, false, false]);
  });

  it("are not told by a monitor that has not yet been told whether it speaks", async () => {
    const m = monitor("mon-b", new FakeClock(), { speaking: false });
    m.emit("node.up", { node: "n1", from: "10.0.0.1:4000", previous: "down", downMs: 30_000 });
    await m.run();
    expect(m.delivered).toEqual([]);
    expect(m.journal).toHaveLength(1);
  });
});

describe("Notify: a hand-over", () => {
  it("says again what is down, nodes and peers, with the dedup keys they began with", async () => {
    const clock = new FakeClock();
    const nodes = new Map<string, Node>();
    const peers = new Map<string, Node>([
      ["mon-x", { state: "down", lastSeen: WALL_LAST_SEEN, incarnation: 5, sequence: 9 }],
    ]);
    const peerDown = {
      peer: "mon-x",
      lastSeen: WALL_LAST_SEEN,
      silentMs: TIMEOUT_MS,
      timeoutMs: TIMEOUT_MS,
      at: WALL_LAST_SEEN + TIMEOUT_MS,
    };
    // The speaker that saw them go down, before it died.
    const first = monitor("mon-a", clock, { speaking: true }, nodes, peers);
    first.notify.speakingChanged(true);
    nodes.set("a", { state: "down", lastSeen: WALL_LAST_SEEN, incarnation: 3, sequence: 7 });
    nodes.set("b", { state: "up", lastSeen: WALL_LAST_SEEN + 9000, incarnation: 4, sequence: 2 });
    nodes.set("c", { state: "down", lastSeen: null, incarnation: null, sequence: null });
    first.emit("node.down", downFields("a", WALL_LAST_SEEN));
    first.emit("peer.down", peerDown);
    await first.run();

    const cluster = { speaking: false, downPeers: [peerDown] };
    const next = monitor("mon-b", clock, cluster, nodes, peers);
    next.notify.speakingChanged(false);
    await next.run();
    expect(next.delivered).toEqual([]);
    // mon-a is down: mon-b, ranked next, speaks.
    cluster.speaking = true;
    next.notify.speakingChanged(true);
    await next.run();

    expect(told(next.delivered)).toEqual(["peer.down:mon-x", "node.down:a", "node.down:c"]);
    const [peer, a, c] = next.delivered;
    expect(first.delivered.map((n) => n.dedupKey)).toEqual(["a/down/3.7", "peer/mon-x/down/5.9"]);
    expect(a).toMatchObject({ dedupKey: "a/down/3.7", since: WALL_LAST_SEEN + TIMEOUT_MS, monitor: "mon-b" });
    expect(peer).toMatchObject({ dedupKey: "peer/mon-x/down/5.9", since: WALL_LAST_SEEN + TIMEOUT_MS });
    expect(c).toMatchObject({ dedupKey: "c/down/-", lastSeen: null });
    expect(c!.fields).toMatchObject({ lastSeen: null, silentMs: 0 });
    for (const n of next.delivered) expect(n.fields.reasserted).toBe(true);
    expect(first.delivered.some((n) => n.fields.reasserted === true)).toBe(false);
    // Said again through the outputs only: the journal has each down once, from when it began.
    expect(next.journal.filter((j) => j.event === "node.down")).toEqual([]);
  });

  it("goes through a large fleet a slice at a time, and stops if it stops speaking on the way", async () => {
    const many = () =>
      new Map<string, Node>(
        Array.from({ length: 5000 }, (_, i) => [
          `n${i}`,
          { state: "down", lastSeen: WALL_LAST_SEEN, incarnation: 1, sequence: i },
        ]),
      );
    const clock = new FakeClock();
    const whole = monitor("mon-b", clock, { speaking: true }, many());
    whole.notify.speakingChanged(true);
    await whole.run();
    await whole.run();
    expect(whole.delivered).toHaveLength(5000);
    expect(new Set(whole.delivered.map((n) => n.dedupKey)).size).toBe(5000);

    const cluster = { speaking: true };
    const cut = monitor("mon-c", clock, cluster, many());
    cut.notify.speakingChanged(true);
    // A monitor ranked before it came back between two slices.
    cluster.speaking = false;
    await cut.run();
    await cut.run();
    expect(cut.delivered.length).toBeGreaterThan(0);
    expect(cut.delivered.length).toBeLessThan(5000);
  });
});
