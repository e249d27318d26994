// `hb replay --sweep`: every setting is the config with other thresholds, replayed through the
// same monitor; and the plot is a standalone SVG document that any XML reader takes.
import { describe, expect, it } from "vitest";
import { DEFAULT_PHI } from "../../src/config/types.js";
import { plotSvg, type PlotPoint } from "../../src/evidence/plot.js";
import { prepare, replayConfig } from "../../src/evidence/replay.js";
import {
  FIXED_INTERVALS,
  PHI_CAP_INTERVALS,
  PHI_THRESHOLDS,
  settings,
  sweep,
  variant,
} from "../../src/evidence/sweep.js";
import { parseTrace } from "../../src/wire/trace.js";
import { config } from "../support/monitor-harness.js";

const YAML = `listen: 127.0.0.1:0
status: off
defaults: { interval: 1s, timeout: 7s }
nodes:
  slow: { interval: 2s }
  tuned: { detector: { kind: phi, threshold: 8, min_std: 250ms, acceptable_pause: 1s } }
`;

describe("the settings of a sweep", () => {
  it("are today's, the fixed timeouts and the φ thresholds, in that order", () => {
    const all = settings();
    expect(all[0]).toMatchObject({ family: "config", value: null });
    expect(all.filter((s) => s.family === "fixed").map((s) => s.value)).toEqual(FIXED_INTERVALS);
    expect(all.filter((s) => s.family === "phi").map((s) => s.value)).toEqual(PHI_THRESHOLDS);
  });

  it("give every node a fixed timeout of k of its own intervals, late at half of it", () => {
    const c = variant(config(YAML), { family: "fixed", value: 3, label: "fixed 3×" });
    expect(c.defaults).toEqual({ intervalMs: 1000, timeoutMs: 3000, lateMs: 1500, phi: null });
    expect(c.nodes.get("slow")).toMatchObject({ intervalMs: 2000, timeoutMs: 6000, lateMs: 3000, phi: null });
    expect(Object.isFrozen(c) && Object.isFrozen(c.nodes.get("slow"))).toBe(true);
  });

  it("give every node φ at the threshold, late at min(3, threshold / 2), its own φ settings kept, and a fixed cap far out", () => {
    const c = variant(config(YAML), { family: "phi", value: 4, label: "φ 4" });
    expect(c.defaults).toEqual({
      intervalMs: 1000,
      timeoutMs: PHI_CAP_INTERVALS * 1000,
      lateMs: (PHI_CAP_INTERVALS * 1000) / 2,
      phi: { ...DEFAULT_PHI, threshold: 4, lateThreshold: 2 },
    });
    const tuned = c.nodes.get("tuned")!;
    expect(tuned.phi).toMatchObject({ threshold: 4, lateThreshold: 2 });
    // What the node's own detector settings say, other than the threshold, stays.
    const own = config(YAML).nodes.get("tuned")!.phi;
    if (own !== null)
      expect(tuned.phi).toMatchObject({ minStdMs: own.minStdMs, acceptablePauseMs: own.acceptablePauseMs });
    expect(
      variant(config(YAML), { family: "phi", value: 16, label: "φ 16" }).defaults.phi?.lateThreshold,
    ).toBe(3);
  });

  it("leave today's config as it is", () => {
    const c = config(YAML);
    expect(variant(c, settings()[0]!)).toBe(c);
  });
});

describe("a sweep", () => {
  const beats = Array.from({ length: 100 }, (_, i) => `x,${i * 1000}\n`).join("");
  const trace = parseTrace(
    `# hb-trace 1\n# start_ms 0\n# end_ms 200000\n# interval_ms 1000\n# crash x 99500\nnode,arrival_ms\n${beats}`,
  );

  it("replays the trace under each setting: a fixed timeout of k intervals finds a crash k intervals after the last beat", async () => {
    const fixed = settings().filter((s) => s.family !== "phi");
    const points = await sweep(prepare(trace), replayConfig(config(YAML), trace), {}, fixed);
    expect(points.map((p) => p.scored.total.detectionMs?.mean)).toEqual([
      7000 - 500,
      ...FIXED_INTERVALS.map((k) => k * 1000 - 500),
    ]);
  });

  it("lets φ judge alone, well before its far cap, sooner at a lower threshold", async () => {
    const phi = settings().filter((s) => s.family === "phi");
    const points = await sweep(prepare(trace), replayConfig(config(YAML), trace), {}, phi);
    const detection = points.map((p) => p.scored.total.detectionMs!.mean);
    // Beats like a clock: φ's deviation is its floor, min_std (100ms), so even φ 16 is down less
    // than 2 s after the last beat (1.5 s after the crash); the cap is 1000 s.
    for (const ms of detection) expect(ms).toBeLessThan(1500);
    expect([...detection].sort((a, b) => a - b)).toEqual(detection);
    expect(new Set(detection).size).toBe(detection.length);
  });
});

/** Well-formed XML: one root, tags that nest and close, quoted attributes, escaped text. */
function wellFormed(xml: string): string | null {
  let rest = xml.replace(/^<\?xml [^?]*\?>\s*/, "");
  const open: string[] = [];
  let roots = 0;
  while (rest.length > 0) {
    const lt = rest.indexOf("<");
    const text = lt < 0 ? rest : rest.slice(0, lt);
    if (/&(?!(amp|lt|gt|quot|apos|#\d+);)/.test(text) || text.includes(">")) return `bad text: ${text}`;
    if (open.length === 0 && text.trim() !== "") return `text outside the root: ${text}`;
    if (lt < 0) break;
    rest = rest.slice(lt);
    const tag =
      /^<(\/?)([A-Za-z][\w:.-]*)((?:\s+[\w:.-]+="[^"<&]*(?:&(?:amp|lt|gt|quot|apos);[^"<&]*)*")*)\s*(\/?)>/.exec(
        rest,
      );
    if (tag === null) return `bad tag at: ${rest.slice(0, 60)}`;
    const [whole, closing, name, , selfClosing] = tag;
    if (closing === "/") {
      if (open.pop() !== name) return `</${name}> closes nothing open`;
    } else if (selfClosing !== "/") {
      if (open.length === 0) roots++;
      open.push(name!);
    } else if (open.length === 0) roots++;
    rest = rest.slice(whole.length);
  }
  if (open.length > 0) return `unclosed: ${open.join(", ")}`;
  return roots === 1 ? null : `${roots} roots`;
}

describe("the plot", () => {
  const points: PlotPoint[] = [
    { family: "config", label: "today", detectionS: 9.5, mistakesPerDay: 1.3 },
    ...[2, 5, 10, 20].map((k, i): PlotPoint => ({
      family: "fixed",
      label: `${k}×`,
      detectionS: k - 0.5,
      mistakesPerDay: [700, 100, 1.3, 0][i]!,
    })),
    { family: "phi", label: "4", detectionS: 2.1, mistakesPerDay: 30 },
    { family: "phi", label: "16", detectionS: null, mistakesPerDay: 0 },
  ];
  const svg = plotSvg("Detection time against mistakes: a & b <trace>.csv", points);

  it("is a standalone SVG document: well-formed XML, the SVG namespace, a size", () => {
    expect(wellFormed(svg)).toBeNull();
    expect(svg).toMatch(
      /^<\?xml version="1.0" encoding="UTF-8"\?>\n<svg xmlns="http:\/\/www.w3.org\/2000\/svg" width="\d+" height="\d+" viewBox="/,
    );
  });

  it("has its title, both curves with their labels, today's mark, the zero row, and says what it could not place", () => {
    expect(svg).toContain("<title>Detection time against mistakes: a &amp; b &lt;trace&gt;.csv</title>");
    expect(svg.match(/<polyline points="[^"]+" fill="none" stroke="#1f77b4"/g)).toHaveLength(1);
    for (const label of ["2×", "5×", "10×", "20×", ">4<", ">today<", ">0<", "mean detection time T_D (s)"])
      expect(svg).toContain(label.startsWith(">") ? label : `>${label}<`);
    expect(svg).toContain("not plotted (no crash detected): 16");
    for (const legend of ["fixed timeout", "φ-accrual", "today&apos;s setting"])
      expect(svg).toContain(legend);
  });

  it("puts a setting without mistakes on the zero row, below the lowest decade", () => {
    /** Where the y axis's label `label` is. */
    const row = (label: string): number =>
      Number(
        new RegExp(
          `<text x="[\\d.]+" y="([\\d.]+)" text-anchor="end" dominant-baseline="middle">${label}<`,
        ).exec(svg)![1],
      );
    expect(row("1")).toBeLessThan(row("0"));
    expect(row("1000")).toBeLessThan(row("1"));
    // 20× made no mistake: its point is on the zero row.
    expect(svg).toContain(`cy="${row("0")}" r="4" fill="#1f77b4"`);
  });
});
