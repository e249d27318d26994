// hb tune: the model's figures, the YAML it prints (which must paste into a config as is), and,
// on the shipped traces, suggestions from the first half that make no mistake on the second.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { parse } from "yaml";
import { describe, expect, it } from "vitest";
import { formatDuration } from "../../src/duration.js";
import { summarize, traceGaps } from "../../src/evidence/gaps.js";
import { score } from "../../src/evidence/qos.js";
import { prepare, replay, replayConfig } from "../../src/evidence/replay.js";
import {
  DEFAULT_MISTAKES_PER_DAY,
  MIN_GAPS,
  formatTune,
  roundUp,
  suggest,
  tune,
  type TuneInput,
} from "../../src/evidence/tune.js";
import { parseTrace, type Trace } from "../../src/wire/trace.js";
import { config } from "../support/monitor-harness.js";
import { prng } from "../support/prng.js";

/** Gaps of a node beating every second with ±`jitter` ms and `loss` of its heartbeats lost. */
function gaps(count: number, jitter: number, loss: number, seed = 1): number[] {
  const random = prng(seed);
  return Array.from({ length: count }, () => {
    let gap = 1000;
    while (random() < loss) gap += 1000;
    return gap + (random() - 0.5) * 2 * jitter;
  });
}

const node = (id: string, g: number[] | null, extra: Partial<TuneInput> = {}): TuneInput => ({
  node: id,
  intervalMs: 1000,
  lateMs: 5000,
  timeoutMs: 10_000,
  detector: "fixed",
  expected: true,
  gaps: g === null ? null : summarize(g),
  ...extra,
});

describe("hb tune", () => {
  it("rounds up to a step a person would write", () => {
    expect([roundUp(3), roundUp(999.1), roundUp(1001), roundUp(12_300), roundUp(61_000)]).toEqual([
      10, 1000, 1100, 13_000, 65_000,
    ]);
  });

  it("puts timeout past the tail the gaps support, late before it, and both past the largest gap", () => {
    const g = summarize(gaps(86_400, 20, 0.01))!;
    const s = suggest(g, 1000, 0.01)!;
    expect(s.fitted).toBe(true);
    expect(s.timeoutMs).toBeGreaterThan(g.maxMs * 1.25);
    expect(s.lateMs).toBeLessThan(s.timeoutMs);
    expect(s.lateMs).toBeGreaterThanOrEqual(g.maxMs * 1.25);
    // A rate of mistakes 100 times higher asks for a shorter timeout, never a longer one.
    expect(suggest(g, 1000, 1)!.timeoutMs).toBeLessThanOrEqual(s.timeoutMs);
    // Worse loss, a longer timeout.
    expect(suggest(summarize(gaps(86_400, 20, 0.05))!, 1000, 0.01)!.timeoutMs).toBeGreaterThan(s.timeoutMs);
  });

  it("leaves room for the losses in a row its loss rate makes as likely as the target", () => {
    const g = summarize(gaps(20_000, 200, 0.03, 2))!;
    // 3 % lost: 5 in a row once in 41 million gaps, about one in 476 days at 1 s: past 5.5 s.
    const s = suggest({ ...g, loss: 0.03 }, 1000, 0.01)!;
    expect(s.timeoutMs).toBeGreaterThanOrEqual(5500);
    expect(suggest(g, 1000, 0.01)!.timeoutMs).toBeLessThan(s.timeoutMs);
  });

  it("never suggests what check-config refuses: timeout above 2 x interval, late below timeout", () => {
    const g = summarize(Array<number>(5000).fill(1000))!;
    const s = suggest(g, 1000, 0.01)!;
    expect(s.timeoutMs).toBeGreaterThan(2000);
    expect(s.lateMs).toBeLessThan(s.timeoutMs);
  });

  it("keeps a set's settings when some node has too few gaps to fit a tail", () => {
    const [set] = tune([node("a", gaps(MIN_GAPS - 1, 20, 0))], 0.01);
    expect(set!.suggestion).toEqual({ lateMs: 5000, timeoutMs: 10_000, fitted: false });
    expect(formatTune([set!], 0.01, "test")).toContain("too few to suggest anything");
  });

  it("groups nodes by their settings now, and gives each set the largest of its nodes' suggestions", () => {
    const sets = tune(
      [
        node("a", gaps(20_000, 20, 0.01, 1), { expected: false }),
        node("b", gaps(20_000, 200, 0.03, 2), { expected: false }),
        node("c", gaps(20_000, 5, 0, 3), { timeoutMs: 30_000, lateMs: 10_000 }),
        node("d", null, { timeoutMs: 30_000, lateMs: 10_000 }),
      ],
      0.01,
    );
    expect(sets).toHaveLength(2);
    const [defaults, own] = sets;
    expect(defaults!.defaults).toBe(true);
    expect(defaults!.maxNode).toBe("b");
    const a = suggest(summarize(gaps(20_000, 20, 0.01, 1))!, 1000, 0.01)!;
    const b = suggest(summarize(gaps(20_000, 200, 0.03, 2))!, 1000, 0.01)!;
    expect(defaults!.suggestion).toEqual({
      lateMs: Math.max(a.lateMs, b.lateMs),
      timeoutMs: Math.max(a.timeoutMs, b.timeoutMs),
      fitted: true,
    });
    expect(own!.unheard).toBe(1);
    expect(own!.nodes).toEqual(["c", "d"]);
  });

  it("prints YAML that pastes into a config and passes its checks", () => {
    const sets = tune(
      [
        node("web-1", gaps(20_000, 20, 0.01, 1), { expected: false }),
        node("3", gaps(20_000, 20, 0, 4), { intervalMs: 500, lateMs: 2500, timeoutMs: 5000 }),
        node("db.1", gaps(20_000, 20, 0, 5), { intervalMs: 500, lateMs: 2500, timeoutMs: 5000 }),
      ],
      0.01,
    );
    const text = formatTune(sets, 0.01, "test");
    const doc = parse(text) as { defaults: object; nodes: Record<string, object> };
    expect(Object.keys(doc.nodes)).toEqual(["3", "db.1"]);
    // The intervals are the operator's to keep; the suggestion is late and timeout.
    const yaml = `defaults: ${JSON.stringify({ ...doc.defaults, interval: "1s" })}\nnodes:\n${Object.entries(
      doc.nodes,
    )
      .map(([id, v]) => `  "${id}": ${JSON.stringify({ ...v, interval: "500ms" })}`)
      .join("\n")}\n`;
    const c = config(yaml);
    expect(c.nodes.get("3")!.timeoutMs).toBe(sets[1]!.suggestion!.timeoutMs);
    expect(c.defaults.timeoutMs).toBe(sets[0]!.suggestion!.timeoutMs);
  });
});

/** The part of `trace` in [from, to): its rows, crashes and stalls there. */
function slice(trace: Trace, from: number, to: number): Trace {
  const rows: [string, number][] = [];
  for (let i = 0; i < trace.node.length; i++) {
    const at = trace.arrivalMs[i]!;
    if (at >= from && at < to) rows.push([trace.nodes[trace.node[i]!]!, at]);
  }
  const nodes = [...new Set(rows.map(([n]) => n))];
  const index = new Map(nodes.map((n, i) => [n, i]));
  return {
    ...trace,
    startMs: from,
    endMs: to,
    crashes: new Map([...trace.crashes].filter(([n, at]) => at >= from && at < to && index.has(n))),
    stalls: trace.stalls.filter(([a, b]) => a >= from && b < to),
    nodes,
    node: Uint32Array.from(rows, ([n]) => index.get(n)!),
    arrivalMs: Float64Array.from(rows, ([, at]) => at),
  };
}

describe("hb tune on the shipped traces", () => {
  const root = fileURLToPath(new URL("../../bench/traces/", import.meta.url));
  for (const name of ["lan", "jitter-loss", "gc-pause", "monitor-stall"]) {
    it(`${name}: what it suggests from the first hour makes no mistake in the second`, async () => {
      const trace = parseTrace(readFileSync(`${root}${name}.csv`, "utf8"));
      const mid = (trace.startMs + trace.endMs) / 2;
      const first = slice(trace, trace.startMs, mid);
      const second = slice(trace, mid, trace.endMs);
      const inputs = traceGaps(first).map(({ node, intervalMs, gaps }) => ({
        node,
        intervalMs,
        lateMs: 5000,
        timeoutMs: 10_000,
        detector: "fixed",
        expected: false,
        gaps,
      }));
      const sets = tune(inputs, DEFAULT_MISTAKES_PER_DAY);
      expect(sets).toHaveLength(1);
      const s = sets[0]!.suggestion!;
      expect(s.fitted).toBe(true);
      const yaml = `defaults: { interval: 1s, late: ${formatDuration(s.lateMs)}, timeout: ${formatDuration(s.timeoutMs)} }\n`;
      const run = await replay(prepare(second), replayConfig(config(yaml), second));
      const { total } = score(second, run.transitions);
      console.log(
        `${name}: tuned on the first hour to late ${s.lateMs} ms, timeout ${s.timeoutMs} ms; second hour: ${total.mistakes} mistakes, ${total.detected}/${total.crashes} crashes found, mean ${Math.round(total.detectionMs?.mean ?? 0)} ms`,
      );
      expect(total.mistakes).toBe(0);
      expect(total.detected).toBe(total.crashes);
    });
  }
});
