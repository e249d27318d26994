// The sweep as a picture: mean detection time against mistake rate, one curve per detector
// family, as a standalone SVG written by hand. The mistake rate is on a log scale; settings that
// made no mistake sit on a "0" row below it, where a log scale cannot reach.

import type { Family } from "./sweep.js";

export interface PlotPoint {
  readonly family: Family;
  /** Beside the point: the multiple or the threshold. */
  readonly label: string;
  /** Mean T_D in seconds; null when no crash was detected (the point cannot be placed). */
  readonly detectionS: number | null;
  /** λ_M per day; null without uptime. */
  readonly mistakesPerDay: number | null;
}

const WIDTH = 860;
const HEIGHT = 560;
const LEFT = 80;
const RIGHT = WIDTH - 210;
const TOP = 60;
/** The bottom of the log scale; the zero row is below it, then the x axis. */
const LOG_BOTTOM = HEIGHT - 140;
const ZERO_ROW = LOG_BOTTOM + 40;
const AXIS = ZERO_ROW + 20;

const STYLE: Record<Family, { color: string; name: string }> = {
  fixed: { color: "#1f77b4", name: "fixed timeout (× interval)" },
  phi: { color: "#d62728", name: "φ-accrual (threshold)" },
  config: { color: "#000000", name: "today's setting (config)" },
};

function escape(text: string): string {
  return text
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;")
    .replace(/'/g, "&apos;");
}

const r = (v: number): string => String(Math.round(v * 10) / 10);

/** A step of 1, 2 or 5 × 10^n that cuts `span` into about `parts` pieces. */
function niceStep(span: number, parts: number): number {
  const raw = span / parts;
  const decade = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 5]) if (m * decade >= raw) return m * decade;
  return 10 * decade;
}

function decadeLabel(exp: number): string {
  return exp >= 0 ? String(10 ** exp) : (10 ** exp).toFixed(-exp);
}

interface Box {
  readonly x: number;
  readonly y: number;
  readonly w: number;
  readonly h: number;
}

/** Puts labels beside their points, each where it overlaps no label or point placed before. */
class Labels {
  private readonly boxes: Box[] = [];

  occupy(x: number, y: number, w: number, h: number): void {
    this.boxes.push({ x, y, w, h });
  }

  /** The top left corner for a label of `w` × `h` beside the point (px, py). */
  place(px: number, py: number, w: number, h: number): { x: number; y: number } {
    const candidates = [
      [7, -h - 2],
      [7, 2],
      [-w - 7, -h - 2],
      [-w - 7, 2],
      [-w / 2, -h - 8],
      [-w / 2, 8],
      [7, -2 * h - 4],
      [7, h + 4],
      [-w - 7, -2 * h - 4],
      [-w - 7, h + 4],
    ] as const;
    const fits = (b: Box): boolean =>
      b.x >= LEFT &&
      b.x + b.w <= RIGHT &&
      b.y >= TOP - 10 &&
      b.y + b.h <= AXIS &&
      !this.boxes.some((o) => b.x < o.x + o.w && o.x < b.x + b.w && b.y < o.y + o.h && o.y < b.y + b.h);
    const boxes = candidates.map(([dx, dy]) => ({ x: px + dx, y: py + dy, w, h }));
    const chosen = boxes.find(fits) ?? boxes[0]!;
    this.boxes.push(chosen);
    return chosen;
  }
}

/** Runs of consecutive points closer than CROWD_PX to the first of their run. */
function crowds(
  points: readonly PlotPoint[],
  x: (s: number) => number,
  y: (perDay: number) => number,
): PlotPoint[][] {
  const out: PlotPoint[][] = [];
  for (const p of points) {
    const run = out.at(-1);
    const head = run?.[0];
    if (
      run !== undefined &&
      head !== undefined &&
      Math.hypot(x(p.detectionS!) - x(head.detectionS!), y(p.mistakesPerDay!) - y(head.mistakesPerDay!)) <
        CROWD_PX
    )
      run.push(p);
    else out.push([p]);
  }
  return out;
}

/** Points nearer than this to each other get one label. */
const CROWD_PX = 9;

export function plotSvg(title: string, points: readonly PlotPoint[]): string {
  const placed = points.filter((p) => p.detectionS !== null && p.mistakesPerDay !== null);
  const left = points.filter((p) => !placed.includes(p));
  const maxX = Math.max(1, ...placed.map((p) => p.detectionS!));
  const xStep = niceStep(maxX, 6);
  const xMax = Math.ceil((maxX * 1.05) / xStep) * xStep;
  const positive = placed.map((p) => p.mistakesPerDay!).filter((y) => y > 0);
  const hi = positive.length === 0 ? 1 : Math.ceil(Math.log10(Math.max(...positive)));
  // At least two decades, so that the scale reads as one.
  const lo = Math.min(hi - 2, positive.length === 0 ? -1 : Math.floor(Math.log10(Math.min(...positive))));
  const x = (s: number): number => LEFT + (s / xMax) * (RIGHT - LEFT);
  const y = (perDay: number): number =>
    perDay <= 0 ? ZERO_ROW : LOG_BOTTOM - ((Math.log10(perDay) - lo) / (hi - lo)) * (LOG_BOTTOM - TOP);

  const out: string[] = [
    `<?xml version="1.0" encoding="UTF-8"?>`,
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" viewBox="0 0 ${WIDTH} ${HEIGHT}" font-family="sans-serif" font-size="12">`,
    `<title>${escape(title)}</title>`,
    `<rect width="${WIDTH}" height="${HEIGHT}" fill="#ffffff"/>`,
    `<text x="${WIDTH / 2}" y="28" text-anchor="middle" font-size="16" font-weight="bold">${escape(title)}</text>`,
  ];
  // Grid and ticks.
  for (let v = 0; v <= xMax + xStep / 1e6; v += xStep) {
    const px = r(x(v));
    out.push(`<line x1="${px}" y1="${TOP}" x2="${px}" y2="${AXIS}" stroke="#e5e5e5"/>`);
    out.push(`<line x1="${px}" y1="${AXIS}" x2="${px}" y2="${AXIS + 5}" stroke="#000000"/>`);
    out.push(
      `<text x="${px}" y="${AXIS + 18}" text-anchor="middle">${escape(String(Math.round(v * 1000) / 1000))}</text>`,
    );
  }
  for (let e = lo; e <= hi; e++) {
    const py = r(y(10 ** e));
    out.push(`<line x1="${LEFT}" y1="${py}" x2="${RIGHT}" y2="${py}" stroke="#e5e5e5"/>`);
    out.push(`<line x1="${LEFT - 5}" y1="${py}" x2="${LEFT}" y2="${py}" stroke="#000000"/>`);
    out.push(
      `<text x="${LEFT - 8}" y="${py}" text-anchor="end" dominant-baseline="middle">${decadeLabel(e)}</text>`,
    );
    for (let m = 2; m < 10 && e < hi; m++) {
      const my = r(y(m * 10 ** e));
      out.push(`<line x1="${LEFT - 3}" y1="${my}" x2="${LEFT}" y2="${my}" stroke="#000000"/>`);
    }
  }
  out.push(
    `<line x1="${LEFT}" y1="${ZERO_ROW}" x2="${RIGHT}" y2="${ZERO_ROW}" stroke="#e5e5e5"/>`,
    `<line x1="${LEFT - 5}" y1="${ZERO_ROW}" x2="${LEFT}" y2="${ZERO_ROW}" stroke="#000000"/>`,
    `<text x="${LEFT - 8}" y="${ZERO_ROW}" text-anchor="end" dominant-baseline="middle">0</text>`,
    // The break between the log scale and the zero row.
    `<line x1="${LEFT}" y1="${(LOG_BOTTOM + ZERO_ROW) / 2}" x2="${RIGHT}" y2="${(LOG_BOTTOM + ZERO_ROW) / 2}" stroke="#999999" stroke-dasharray="4 4"/>`,
    `<polyline points="${LEFT},${TOP} ${LEFT},${AXIS} ${RIGHT},${AXIS}" fill="none" stroke="#000000"/>`,
    `<text x="${(LEFT + RIGHT) / 2}" y="${AXIS + 42}" text-anchor="middle">mean detection time T_D (s)</text>`,
    `<text transform="translate(22 ${(TOP + ZERO_ROW) / 2}) rotate(-90)" text-anchor="middle">mistakes per day λ_M (log scale)</text>`,
  );
  // One curve per family, in the order of its settings; the labels go where they overlap nothing.
  const labels = new Labels();
  for (const p of placed) labels.occupy(x(p.detectionS!) - 5, y(p.mistakesPerDay!) - 5, 10, 10);
  for (const family of ["fixed", "phi"] as const) {
    const { color } = STYLE[family];
    const curve = placed.filter((p) => p.family === family);
    if (curve.length > 1)
      out.push(
        `<polyline points="${curve.map((p) => `${r(x(p.detectionS!))},${r(y(p.mistakesPerDay!))}`).join(" ")}" fill="none" stroke="${color}" stroke-width="1.5"/>`,
      );
    for (const p of curve) {
      const px = x(p.detectionS!);
      const py = y(p.mistakesPerDay!);
      out.push(
        family === "fixed"
          ? `<circle cx="${r(px)}" cy="${r(py)}" r="4" fill="${color}"/>`
          : `<rect x="${r(px - 3.5)}" y="${r(py - 3.5)}" width="7" height="7" fill="${color}"/>`,
      );
    }
  }
  for (const p of placed.filter((q) => q.family === "config")) {
    const px = x(p.detectionS!);
    const py = y(p.mistakesPerDay!);
    out.push(
      `<path d="M ${r(px)} ${r(py - 7)} L ${r(px + 7)} ${r(py)} L ${r(px)} ${r(py + 7)} L ${r(px - 7)} ${r(py)} Z" fill="none" stroke="#000000" stroke-width="2"/>`,
    );
  }
  // Today's label first: it is the one the reader looks for. Points of a family that lie on top
  // of each other share one label ("8–16").
  const config = placed.filter((p) => p.family === "config");
  const groups = [
    ...config.map((p) => [p]),
    ...crowds(
      placed.filter((p) => p.family === "fixed"),
      x,
      y,
    ),
    ...crowds(
      placed.filter((p) => p.family === "phi"),
      x,
      y,
    ),
  ];
  for (const group of groups) {
    const p = group[0]!;
    const bold = p.family === "config";
    const text =
      group.length === 1
        ? p.label
        : group.length === 2
          ? `${p.label}, ${group[1]!.label}`
          : `${p.label}–${group.at(-1)!.label}`;
    const at = labels.place(x(p.detectionS!), y(p.mistakesPerDay!), text.length * (bold ? 7 : 6.2), 12);
    out.push(
      `<text x="${r(at.x)}" y="${r(at.y + 10)}" fill="${STYLE[p.family].color}" font-size="11"${bold ? ` font-weight="bold"` : ""}>${escape(text)}</text>`,
    );
  }
  // Legend.
  const lx = RIGHT + 20;
  out.push(
    `<rect x="${lx - 8}" y="${TOP - 4}" width="${WIDTH - lx - 4}" height="80" fill="#ffffff" stroke="#cccccc"/>`,
  );
  (["fixed", "phi", "config"] as const).forEach((family, i) => {
    const ly = TOP + 14 + i * 24;
    const { color, name } = STYLE[family];
    out.push(
      family === "config"
        ? `<path d="M ${lx + 10} ${ly - 6} L ${lx + 16} ${ly} L ${lx + 10} ${ly + 6} L ${lx + 4} ${ly} Z" fill="none" stroke="#000000" stroke-width="2"/>`
        : `<line x1="${lx}" y1="${ly}" x2="${lx + 20}" y2="${ly}" stroke="${color}" stroke-width="1.5"/>` +
            (family === "fixed"
              ? `<circle cx="${lx + 10}" cy="${ly}" r="4" fill="${color}"/>`
              : `<rect x="${lx + 6.5}" y="${ly - 3.5}" width="7" height="7" fill="${color}"/>`),
      `<text x="${lx + 28}" y="${ly}" dominant-baseline="middle" font-size="11">${escape(name)}</text>`,
    );
  });
  if (left.length > 0)
    out.push(
      `<text x="${LEFT}" y="${HEIGHT - 12}" font-size="11" fill="#555555">${escape(`not plotted (no crash detected): ${left.map((p) => p.label).join(", ")}`)}</text>`,
    );
  out.push(`</svg>`, ``);
  return out.join("\n");
}
