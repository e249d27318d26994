// `hb replay` judges as the live monitor does: the same arrivals, fed to a monitor on the fake
// clock (turning as Node's event loop does) and socket and replayed from a trace, give the same
// transitions to the millisecond, through jitter, loss, a crash, a false down and its return, a
// stall of the monitor, and heartbeats that arrive at the very instant a deadline falls.
import { describe, expect, it } from "vitest";
import { prepare, replay, replayConfig, type Transition } from "../../src/evidence/replay.js";
import { formatMs, formatTrace, parseTrace, type Trace } from "../../src/wire/trace.js";
import { Harness, config } from "../support/monitor-harness.js";
import { prng } from "../support/prng.js";

const YAML = `listen: 127.0.0.1:0
status: off
defaults: { interval: 1s }
nodes:
  a: {}
  b: { timeout: 4s, late: 2s }
  c: { interval: 500ms }
  p: { detector: { kind: phi, threshold: 6, min_std: 50ms } }
`;
/** FakeClock's start: the trace's clock is the harness's. */
const START_MS = 1000;
const END_MS = START_MS + 600_000;

interface Schedule {
  readonly arrivals: readonly { node: string; at: number }[];
  readonly stalls: readonly [number, number][];
  readonly endMs: number;
  /** The `# crash` lines of its trace (for the figures; the judgements do not read them). */
  readonly crashes: ReadonlyMap<string, number>;
}

const us = (ms: number): number => Number(formatMs(ms));

/**
 * Six nodes for ten minutes: jittered delays, 2 % loss, bursts of lost datagrams (b's is longer
 * than its 4 s timeout), e crashing at 5 min, d silent for 14 s at 3:20 without a restart (down,
 * then back), p judged by φ; with `stalls`, what arrives in one is read at its end.
 */
function schedule(seed: number, stalls: readonly [number, number][] = []): Schedule {
  const random = prng(seed);
  const nodes = { a: 1000, b: 1000, c: 500, d: 1000, e: 1000, p: 1000 } as const;
  const arrivals: { node: string; at: number }[] = [];
  for (const [node, interval] of Object.entries(nodes)) {
    const phase = random() * interval;
    for (let sent = START_MS + phase; sent < END_MS; sent += interval) {
      const t = sent - START_MS;
      if (node === "e" && t >= 300_000) break;
      if (node === "d" && t >= 200_000 && t < 214_000) continue;
      if (node === "a" && t >= 100_000 && t < 106_000) continue;
      if (node === "b" && t >= 150_000 && t < 155_500) continue;
      if (random() < 0.02) continue;
      let at = us(sent + 1 + random() * 80);
      for (const [from, to] of stalls) if (at > from && at < to) at = to;
      if (at <= END_MS) arrivals.push({ node, at });
    }
  }
  arrivals.sort((x, y) => x.at - y.at);
  return { arrivals, stalls, endMs: END_MS, crashes: new Map([["e", START_MS + 300_000]]) };
}

/**
 * The monitor as it runs: each datagram read at its arrival, in the poll phase of the loop's
 * turn (after the timers due then, before the judgement they start); a stall as a frozen
 * process. With `pollPhase: false`, each is handed over after all that was due at its instant
 * has run (the fake clock's default, which the other tests use).
 */
async function live(
  s: Schedule,
  yaml = YAML,
  pollPhase = true,
): Promise<{ transitions: Transition[]; harness: Harness }> {
  const h = await Harness.start(yaml, undefined, { pollPhase });
  if (pollPhase) {
    for (const { node, at } of s.arrivals) h.arrive(node, at);
    for (const [from, to] of s.stalls) {
      h.clock.advanceTo(from);
      h.clock.freeze(to - from);
    }
  } else {
    let stall = 0;
    for (const { node, at } of s.arrivals) {
      while (stall < s.stalls.length && s.stalls[stall]![0] < at) {
        const [from, to] = s.stalls[stall++]!;
        h.clock.advanceTo(from);
        h.clock.freeze(to - from);
      }
      h.clock.advanceTo(at);
      h.beat(node);
    }
  }
  h.clock.advanceTo(s.endMs);
  const transitions = h.events.flatMap((e): Transition[] =>
    e.event === "node.up" || e.event === "node.late" || e.event === "node.down"
      ? [{ node: e.node, state: e.event.slice(5) as Transition["state"], at: e.t }]
      : [],
  );
  return { transitions, harness: h };
}

/** The same arrivals, written as a trace, read back and replayed. */
async function replayed(s: Schedule, yaml = YAML): Promise<readonly Transition[]> {
  const nodes = [...new Set(s.arrivals.map((r) => r.node))];
  const written: Trace = {
    startMs: START_MS,
    endMs: s.endMs,
    intervalMs: 1000,
    intervals: new Map([["c", 500]]),
    stalls: s.stalls,
    crashes: new Map(s.crashes),
    nodes,
    node: Uint32Array.from(s.arrivals, (r) => nodes.indexOf(r.node)),
    arrivalMs: Float64Array.from(s.arrivals, (r) => r.at),
  };
  const trace = parseTrace(formatTrace(written));
  return (await replay(prepare(trace), replayConfig(config(yaml), trace))).transitions;
}

describe("hb replay judges as the live monitor does", () => {
  it("gives the same up, late and down transitions, at the same milliseconds, as a monitor fed the same arrivals", async () => {
    const s = schedule(7);
    const { transitions } = await live(s);
    // The schedule does what it is meant to: a crash found, a false down and its return.
    expect(transitions).toContainEqual(expect.objectContaining({ node: "e", state: "down" }));
    const d = transitions.filter((t) => t.node === "d").map((t) => t.state);
    expect(d.slice(1)).toEqual(expect.arrayContaining(["late", "down", "up"]));
    expect(transitions.filter((t) => t.node === "b" && t.state === "down").length).toBeGreaterThan(0);
    // φ takes p's lost heartbeats for failures: it goes down and comes back.
    expect(transitions.filter((t) => t.node === "p" && t.state === "down").length).toBeGreaterThan(0);
    expect(await replayed(s)).toEqual(transitions);
  });

  it("agrees with the live monitor on other seeds too", async () => {
    for (const seed of [1, 2, 3]) {
      const s = schedule(seed);
      expect(await replayed(s), `seed ${seed}`).toEqual((await live(s)).transitions);
    }
  });

  it("replays a `# stall` as the frozen monitor lived it: a late timer, judgement held, the same transitions", async () => {
    const s = schedule(11, [
      [START_MS + 120_000, START_MS + 125_000],
      [START_MS + 301_000, START_MS + 308_500],
    ]);
    const { transitions, harness } = await live(s);
    expect(harness.of("monitor.stalled").length).toBeGreaterThan(0);
    // Nobody is blamed for the monitor's own stall: only e (crashed at 5 min) and the planned
    // silences go down.
    const downs = new Set(transitions.filter((t) => t.state === "down").map((t) => t.node));
    expect(downs.has("c")).toBe(false);
    expect(downs.has("e")).toBe(true);
    expect(await replayed(s)).toEqual(transitions);
  });

  it("leaves out the listed nodes the trace never hears from, which would otherwise go down after the startup grace", async () => {
    const trace = parseTrace(
      "# hb-trace 1\n# start_ms 0\n# end_ms 100000\n# interval_ms 1000\nnode,arrival_ms\n",
    );
    const adjusted = replayConfig(config(YAML), trace);
    expect([...adjusted.nodes.keys()]).toEqual([]);
    expect(adjusted).toMatchObject({ auth: "off", unknownNodes: "accept", cluster: null, status: null });
    const run = await replay(prepare(trace), adjusted);
    expect(run.transitions).toEqual([]);
  });
});

describe("at a tie, the datagrams that arrived are read before the judgement, as Node polls before it runs immediates", () => {
  const TIES = `listen: 127.0.0.1:0
status: off
defaults: { interval: 1s }
nodes:
  a: { late: 2s, timeout: 4s }
`;

  it("judges a heartbeat that arrives at exactly its node's late deadline not late, and one at exactly its down deadline not down", async () => {
    // a is heard at +100 ms, then exactly 2 s later (its late deadline), then exactly 4 s after
    // that (its down deadline, 2 s into being late).
    const s: Schedule = {
      arrivals: [100, 2100, 6100].map((ms) => ({ node: "a", at: START_MS + ms })),
      stalls: [],
      endMs: START_MS + 7000,
      crashes: new Map(),
    };
    const expected: Transition[] = [
      { node: "a", state: "up", at: START_MS + 100 },
      { node: "a", state: "late", at: START_MS + 4100 },
      { node: "a", state: "up", at: START_MS + 6100 },
    ];
    expect((await live(s, TIES)).transitions).toEqual(expected);
    expect(await replayed(s, TIES)).toEqual(expected);
    // The judging timer does fall at those instants: handed over after it, each heartbeat comes
    // too late for its judgement.
    expect((await live(s, TIES, false)).transitions).toEqual([
      { node: "a", state: "up", at: START_MS + 100 },
      { node: "a", state: "late", at: START_MS + 2100 },
      { node: "a", state: "up", at: START_MS + 2100 },
      { node: "a", state: "late", at: START_MS + 4100 },
      { node: "a", state: "down", at: START_MS + 6100 },
      { node: "a", state: "up", at: START_MS + 6100 },
    ]);
  });

  it("gives no late and up at the end of a stall for the nodes whose rows are stamped at it, more of them than node reads in a turn", async () => {
    // 40 nodes beat in step every second; the judging timer, armed at their deadline (2.2 s after
    // a heartbeat), fires at 60.2 s and is armed again for 62.2 s. The monitor stalls from 60.3 s
    // to 62.7 s: each node's two heartbeats of the stall are read at its end, 80 rows at one
    // instant, and the timer fires 500 ms late, less than the stall threshold (1 s), so the
    // monitor does not take it for a stall of its own.
    const ids = Array.from({ length: 40 }, (_, i) => `n${String(i).padStart(2, "0")}`);
    const yaml = `listen: 127.0.0.1:0
status: off
defaults: { interval: 1s, late: 2200ms, timeout: 4s }
nodes:
${ids.map((id) => `  ${id}: {}`).join("\n")}
`;
    const stall: [number, number] = [START_MS + 60_300, START_MS + 62_700];
    const arrivals: { node: string; at: number }[] = [];
    for (let sent = START_MS; sent < START_MS + 70_000; sent += 1000)
      for (const node of ids)
        arrivals.push({ node, at: sent > stall[0] && sent < stall[1] ? stall[1] : sent });
    const s: Schedule = { arrivals, stalls: [stall], endMs: START_MS + 70_000, crashes: new Map() };
    expect(arrivals.filter((r) => r.at === stall[1]).length).toBe(80);

    const { transitions, harness } = await live(s, yaml);
    expect(harness.of("monitor.stalled")).toEqual([]);
    expect(transitions).toEqual(ids.map((node) => ({ node, state: "up", at: START_MS })));
    expect(await replayed(s, yaml)).toEqual(transitions);
    // Handed over after the judgement, every node is late and up again at the stall's end.
    const handedOver = (await live(s, yaml, false)).transitions;
    expect(handedOver.filter((t) => t.state === "late")).toEqual(
      ids.map((node) => ({ node, state: "late", at: stall[1] })),
    );
    expect(handedOver.filter((t) => t.state === "up" && t.at === stall[1]).length).toBe(40);
  });
});

describe("what the journal summarizes", () => {
  /** `count` unlisted nodes beating once a second from 0 to `untilMs`, 1 ms apart. */
  function fleet(count: number, untilMs: number, endMs: number): Trace {
    const rows: [number, number][] = [];
    for (let t = 0; t < untilMs; t += 1000) for (let n = 0; n < count; n++) rows.push([n, t + n * 0.001]);
    const nodes = Array.from({ length: count }, (_, n) => `n${n}`);
    return parseTrace(
      formatTrace({
        startMs: 0,
        endMs,
        intervalMs: 1000,
        intervals: new Map(),
        stalls: [],
        crashes: new Map(),
        nodes,
        node: Uint32Array.from(rows, (r) => r[0]),
        arrivalMs: Float64Array.from(rows, (r) => r[1]),
      }),
    );
  }

  it("is not counted missing when it is only 150 nodes' first contact", async () => {
    const trace = fleet(150, 30_000, 30_000);
    const run = await replay(prepare(trace), replayConfig(config(YAML), trace));
    expect(run.transitions.length).toBeLessThan(150);
    expect(run.summarized).toBe(0);
  });

  it("is counted missing when 150 unlisted nodes go down at once", async () => {
    const trace = fleet(150, 30_000, 60_000);
    const run = await replay(prepare(trace), replayConfig(config(YAML), trace));
    const downs = run.transitions.filter((t) => t.state === "down").length;
    expect(run.summarized).toBeGreaterThan(0);
    expect(downs + run.transitions.filter((t) => t.state === "late").length + run.summarized).toBe(300);
  });
});
