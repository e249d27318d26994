// Writes the traces that detector settings are judged with (README.md here describes each
// model): arrivals of a fleet's heartbeats, made up from a seeded PRNG so that every run writes
// the same bytes. `npm run traces` writes the shipped ones into this folder; `--hours`,
// `--nodes` and `--out` make larger ones elsewhere.
//
//   npx tsx bench/traces/generate.ts [--out DIR] [--hours 2] [--nodes 20]

import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { formatMs, formatTrace, type Trace } from "../../src/wire/trace.js";

/** mulberry32: a small, fast 32-bit PRNG; the same seed gives the same stream everywhere. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

class Random {
  private readonly next: () => number;
  constructor(seed: number) {
    this.next = mulberry32(seed);
  }
  /** Uniform in [lo, hi). */
  uniform(lo = 0, hi = 1): number {
    return lo + (hi - lo) * this.next();
  }
  int(lo: number, hi: number): number {
    return Math.floor(this.uniform(lo, hi + 1));
  }
  /** Exponential with this mean. */
  exponential(mean: number): number {
    return -mean * Math.log(1 - this.next());
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
}

const INTERVAL_MS = 1000;
const MINUTE_MS = 60_000;

export interface Shape {
  readonly hours: number;
  readonly nodes: number;
}

export const SHIPPED: Shape = { hours: 2, nodes: 20 };

interface Model {
  readonly name: string;
  readonly seed: number;
  readonly about: string;
  /** Per node, the times it sends at, up to `endMs` (and before its crash, if it crashes). */
  sends(r: Random, endMs: number, crashMs: number): number[];
  /** How long one datagram takes on the network; NaN: it is lost. */
  delay(r: Random, node: NodeLink): number;
  /** Spans in which the monitor could not run. */
  stalls?(r: Random, endMs: number): [number, number][];
}

/** What a node's path to the monitor is like: drawn once per node. */
interface NodeLink {
  baseMs: number;
  jitterMs: number;
  lossP: number;
  /** Datagrams still to lose in the current burst. */
  burst: number;
}

/** Beats on a schedule anchored to the start, as `hb node` sends them, with a little timer lateness. */
function steady(r: Random, endMs: number, crashMs: number): number[] {
  const phase = r.uniform(0, INTERVAL_MS);
  const out: number[] = [];
  for (let t = phase; t < endMs && t < crashMs; t += INTERVAL_MS) out.push(t + r.uniform(0, 1));
  return out;
}

const MODELS: readonly Model[] = [
  {
    name: "lan",
    seed: 0x1a2b3c,
    about: "quiet LAN: interval 1s, network delay 0.2 ms + |N(0, 0.8 ms)|, no loss",
    sends: steady,
    delay: (r) => 0.2 + Math.abs(gaussian(r) * 0.8),
  },
  {
    name: "jitter-loss",
    seed: 0x5eed01,
    about:
      "interval 1s, delay 1-5 ms + Exp(mean 30-80 ms) per node, 1-2 % independent loss, bursts of 3-8 lost every ~10 min",
    sends: steady,
    delay(r, link) {
      if (link.burst > 0) {
        link.burst--;
        return Number.NaN;
      }
      // About one burst per node per ten minutes of beats.
      if (r.chance(1 / 600)) {
        link.burst = r.int(3, 8) - 1;
        return Number.NaN;
      }
      if (r.chance(link.lossP)) return Number.NaN;
      return link.baseMs + r.exponential(link.jitterMs);
    },
  },
  {
    name: "gc-pause",
    seed: 0x6c9a05,
    about:
      "interval 1s, LAN delay; each sender pauses for 1.5-4 s about every 10 min (a GC), then beats at once and goes on",
    sends(r, endMs, crashMs) {
      // Pauses as a Poisson process; a beat due in one is sent at its end, the next on schedule.
      const pauses: [number, number][] = [];
      for (let t = r.exponential(10 * MINUTE_MS); t < endMs; t += r.exponential(10 * MINUTE_MS)) {
        const d = r.uniform(1500, 4000);
        pauses.push([t, t + d]);
        t += d;
      }
      const phase = r.uniform(0, INTERVAL_MS);
      const out: number[] = [];
      let p = 0;
      for (let k = 0; ; k++) {
        let t = phase + k * INTERVAL_MS;
        while (p < pauses.length && pauses[p]![1] <= t) p++;
        const pause = pauses[p];
        if (pause !== undefined && pause[0] <= t) {
          t = pause[1];
          k = Math.floor((t - phase) / INTERVAL_MS);
        }
        t += r.uniform(0, 1);
        if (t >= endMs || t >= crashMs) break;
        out.push(t);
      }
      return out;
    },
    delay: (r) => 0.2 + Math.abs(gaussian(r) * 0.8),
  },
  {
    name: "monitor-stall",
    seed: 0x57a11,
    about:
      "interval 1s, LAN delay; the monitor stalls for 2-5 s about every 20 min, reading what queued at the stall's end",
    sends: steady,
    delay: (r) => 0.2 + Math.abs(gaussian(r) * 0.8),
    stalls(r, endMs) {
      const out: [number, number][] = [];
      for (let t = r.exponential(20 * MINUTE_MS); t < endMs - 5000; t += r.exponential(20 * MINUTE_MS)) {
        const from = Math.round(t);
        const to = from + Math.round(r.uniform(2000, 5000));
        out.push([from, to]);
        t = to;
      }
      return out;
    },
  },
];

/** Box-Muller: a standard normal deviate. */
function gaussian(r: Random): number {
  return Math.sqrt(-2 * Math.log(1 - r.uniform())) * Math.cos(2 * Math.PI * r.uniform());
}

const round = (ms: number): number => Number(formatMs(ms));

/** The text of one model's trace. */
export function generate(modelName: string, shape: Shape = SHIPPED): string {
  const model = MODELS.find((m) => m.name === modelName);
  if (model === undefined) throw new Error(`no model ${modelName}`);
  const r = new Random(model.seed);
  const endMs = shape.hours * 60 * MINUTE_MS;
  const nodes = Array.from({ length: shape.nodes }, (_, i) => `n${String(i + 1).padStart(2, "0")}`);
  // Two nodes in five crash, at times well inside the trace, and send nothing after.
  const crashes = new Map<string, number>();
  const crashing = Math.max(1, Math.round((shape.nodes * 2) / 5));
  while (crashes.size < crashing) {
    const node = nodes[r.int(0, nodes.length - 1)]!;
    if (!crashes.has(node)) crashes.set(node, round(r.uniform(10 * MINUTE_MS, endMs - 10 * MINUTE_MS)));
  }
  const rows: { node: number; at: number }[] = [];
  nodes.forEach((id, node) => {
    const link: NodeLink = {
      baseMs: r.uniform(1, 5),
      jitterMs: r.uniform(30, 80),
      lossP: r.uniform(0.01, 0.02),
      burst: 0,
    };
    for (const sent of model.sends(r, endMs, crashes.get(id) ?? Number.POSITIVE_INFINITY)) {
      const delay = model.delay(r, link);
      if (Number.isNaN(delay) || sent + delay > endMs) continue;
      rows.push({ node, at: round(sent + delay) });
    }
  });
  const stalls = model.stalls?.(r, endMs) ?? [];
  // What arrives while the monitor is stalled is read, and stamped, when the stall ends.
  for (const row of rows) for (const [from, to] of stalls) if (row.at > from && row.at < to) row.at = to;
  rows.sort((a, b) => a.at - b.at || a.node - b.node);
  const trace: Trace = {
    startMs: 0,
    endMs,
    intervalMs: INTERVAL_MS,
    intervals: new Map(),
    stalls,
    crashes,
    nodes,
    node: Uint32Array.from(rows, (row) => row.node),
    arrivalMs: Float64Array.from(rows, (row) => row.at),
  };
  const text = formatTrace(trace);
  const firstLine = text.indexOf("\n") + 1;
  return `${text.slice(0, firstLine)}# model ${model.name}: ${model.about}\n${text.slice(firstLine)}`;
}

export const TRACE_NAMES: readonly string[] = MODELS.map((m) => m.name);

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { values } = parseArgs({
    options: { out: { type: "string" }, hours: { type: "string" }, nodes: { type: "string" } },
  });
  const out = values.out ?? fileURLToPath(new URL(".", import.meta.url));
  const shape = {
    hours: values.hours === undefined ? SHIPPED.hours : Number(values.hours),
    nodes: values.nodes === undefined ? SHIPPED.nodes : Number(values.nodes),
  };
  mkdirSync(out, { recursive: true });
  for (const name of TRACE_NAMES) {
    const path = join(out, `${name}.csv`);
    writeFileSync(path, generate(name, shape));
    process.stdout.write(`${path}\n`);
  }
}
