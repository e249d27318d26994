// The QoS figures of a replay (Chen, Toueg, Aguilera 2002), with "suspected" read as "judged
// down": detection time of crashes, mistakes, their rate, duration and recurrence, and the query
// accuracy; and the crash rule, from a `# crash` line or from a silence up to the trace's end.
import { describe, expect, it } from "vitest";
import { score } from "../../src/evidence/qos.js";
import type { Transition } from "../../src/evidence/replay.js";
import type { TraceError } from "../../src/wire/trace.js";
import { formatHeader, parseTrace } from "../../src/wire/trace.js";

/** A trace whose nodes beat once a second, over [from, to) each (ms), ending at `endMs`. */
function trace(
  endMs: number,
  beats: Record<string, [number, number][]>,
  header = "",
): ReturnType<typeof parseTrace> {
  const rows: [string, number][] = [];
  for (const [node, spans] of Object.entries(beats))
    for (const [from, to] of spans) for (let t = from; t < to; t += 1000) rows.push([node, t]);
  rows.sort((a, b) => a[1] - b[1]);
  return parseTrace(
    `# hb-trace 1\n# start_ms 0\n# end_ms ${endMs}\n# interval_ms 1000\n${header}node,arrival_ms\n` +
      rows.map(([n, t]) => `${n},${t}\n`).join(""),
  );
}

const t = (node: string, state: Transition["state"], at: number): Transition => ({ node, state, at });

describe("detection time", () => {
  it("is the time from a marked crash to the down judgement", () => {
    const tr = trace(300_000, { x: [[0, 101_000]] }, "# crash x 100500\n");
    const { total, nodes } = score(tr, [t("x", "up", 0), t("x", "late", 105_000), t("x", "down", 110_000)]);
    expect(nodes[0]!.crash).toEqual({ atMs: 100_500, marked: true });
    expect(total).toMatchObject({ crashes: 1, detected: 1, undetected: 0, mistakes: 0, lates: 1 });
    expect(total.detectionMs).toEqual({ mean: 9500, p99: 9500, max: 9500 });
    // After the crash the node is not alive: its down costs no accuracy.
    expect(total.queryAccuracy).toBe(1);
    expect(total.uptimeMs).toBe(100_500);
  });

  it("takes a node silent for 30 intervals before the end as crashed at its last arrival, or as told by --crash-silence", () => {
    const tr = trace(200_000, { x: [[0, 151_000]], y: [[0, 200_000]] });
    const judged = [t("x", "up", 0), t("y", "up", 0), t("x", "down", 160_000)];
    const byRule = score(tr, judged);
    expect(byRule.nodes[0]!.crash).toEqual({ atMs: 150_000, marked: false });
    expect(byRule.total.detectionMs?.mean).toBe(10_000);
    // Silent 50 s: not a crash if 60 s of silence are asked for. Its down then stands unexplained.
    const longer = score(tr, judged, { crashSilenceMs: 60_000 });
    expect(longer.nodes[0]!.crash).toBeNull();
    expect(longer.total).toMatchObject({ crashes: 0, detected: 0, mistakes: 0, open: 1 });
    expect(longer.total.queryAccuracy).toBeCloseTo(1 - 40_000 / 400_000, 12);
  });

  it("counts a crashed node never judged down as undetected, and gives mean, p99 and max over the rest", () => {
    const tr = trace(
      400_000,
      { a: [[0, 100_000]], b: [[0, 200_000]], c: [[0, 300_000]] },
      "# crash a 99500\n# crash b 199000\n# crash c 299900\n",
    );
    const { total } = score(tr, [t("a", "down", 109_000), t("b", "down", 209_000)]);
    expect(total).toMatchObject({ crashes: 3, detected: 2, undetected: 1 });
    expect(total.detectionMs).toEqual({ mean: 9750, p99: 10_000, max: 10_000 });
  });
});

describe("mistakes", () => {
  it("are downs of a node heard from again: their count, rate per day and hour of uptime, duration and recurrence", () => {
    const tr = trace(3_600_000, { x: [[0, 3_600_000]] });
    const judged = [
      t("x", "up", 0),
      t("x", "down", 50_000),
      t("x", "up", 53_000),
      t("x", "down", 80_000),
      t("x", "up", 81_000),
    ];
    const { total, nodes } = score(tr, judged);
    expect(nodes[0]).toMatchObject({ mistakes: 2, mistakeMs: 2000, recurrenceMs: 30_000, crash: null });
    expect(total.mistakesPerHour).toBeCloseTo(2, 12);
    expect(total.mistakesPerDay).toBeCloseTo(48, 12);
    expect(total.queryAccuracy).toBeCloseTo(1 - 4000 / 3_600_000, 12);
  });

  it("has no recurrence with fewer than two, and none of them without a down", () => {
    const tr = trace(100_000, { x: [[0, 100_000]] });
    expect(score(tr, [t("x", "up", 0), t("x", "down", 20_000), t("x", "up", 21_000)]).total).toMatchObject({
      mistakes: 1,
      recurrenceMs: null,
    });
    expect(score(tr, [t("x", "up", 0)]).total).toMatchObject({
      mistakes: 0,
      mistakeMs: null,
      mistakesPerDay: 0,
      queryAccuracy: 1,
    });
  });

  it("leaves out what a listed node was judged before it was first heard (the startup grace)", () => {
    const tr = trace(100_000, { x: [[30_000, 100_000]] });
    const { total } = score(tr, [t("x", "down", 20_000), t("x", "up", 30_000)]);
    expect(total).toMatchObject({ mistakes: 0, uptimeMs: 70_000, queryAccuracy: 1 });
  });

  it("sums every node's mistakes over every node's uptime for the whole trace", () => {
    const tr = trace(86_400_000 / 24, { x: [[0, 3_600_000]], y: [[0, 3_600_000]] });
    const { total } = score(tr, [t("x", "down", 10_000), t("x", "up", 11_000)]);
    expect(total.nodes).toBe(2);
    expect(total.mistakesPerHour).toBeCloseTo(0.5, 12);
  });
});

describe("the trace's # crash lines", () => {
  it("are written and read back", () => {
    const header = {
      startMs: 0,
      endMs: 10_000,
      intervalMs: 1000,
      intervals: new Map(),
      stalls: [],
      crashes: new Map([["web-1", 4000.5]]),
    };
    const text = formatHeader(header);
    expect(text).toContain("# crash web-1 4000.5\n");
    expect(parseTrace(text).crashes).toEqual(new Map([["web-1", 4000.5]]));
  });

  it("refuse a bad node id, a second crash of a node, and a crash outside the trace, naming the line", () => {
    const bad = (line: string): TraceError => {
      try {
        parseTrace(
          `# hb-trace 1\n# start_ms 0\n# end_ms 1000\n# interval_ms 100\n${line}\nnode,arrival_ms\n`,
        );
      } catch (err) {
        return err as TraceError;
      }
      throw new Error("accepted");
    };
    expect(bad("# crash -x 10")).toMatchObject({ line: 5 });
    expect(bad("# crash x 10\n# crash x 20")).toMatchObject({ line: 6 });
    expect(bad("# crash x 2000").message).toContain("outside the trace");
    expect(bad("# crash x soon").message).toContain("a crash's time must be a number");
  });
});
