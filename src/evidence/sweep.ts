// Scoring a trace under many detector settings: the fixed timeout at multiples of each node's
// interval, and the φ-accrual detector at a range of thresholds (its fixed cap set so high that
// φ alone judges), besides the setting the config has today. Each variant is the config with
// other thresholds, replayed through the same monitor code.

import { DEFAULT_PHI, type Config, type NodeSpec, type Thresholds } from "../config/types.js";
import { score, type QosOptions, type Scored } from "./qos.js";
import { replay, type Prepared, type ReplayRun } from "./replay.js";

export type Family = "config" | "fixed" | "phi";

export interface Setting {
  readonly family: Family;
  /** fixed: the timeout in intervals; phi: the threshold; config: null. */
  readonly value: number | null;
  readonly label: string;
}

/** Fixed timeouts swept, in intervals (late at half the timeout). */
export const FIXED_INTERVALS: readonly number[] = [1.5, 2, 3, 4, 5, 6, 8, 10, 12, 16, 20];
/** φ thresholds swept (late at min(3, threshold / 2)). */
export const PHI_THRESHOLDS: readonly number[] = [1, 2, 3, 4, 6, 8, 10, 12, 16];
/** The φ settings' fixed timeout, in intervals: far enough that it never judges first. */
export const PHI_CAP_INTERVALS = 1000;

export const TODAY: Setting = { family: "config", value: null, label: "config" };

export function settings(): Setting[] {
  return [
    TODAY,
    ...FIXED_INTERVALS.map((k): Setting => ({ family: "fixed", value: k, label: `fixed ${k}×` })),
    ...PHI_THRESHOLDS.map((t): Setting => ({ family: "phi", value: t, label: `φ ${t}` })),
  ];
}

function thresholds(th: Thresholds, setting: Setting): Thresholds {
  const k = setting.value!;
  if (setting.family === "fixed") {
    const timeoutMs = Math.round(k * th.intervalMs);
    return { intervalMs: th.intervalMs, timeoutMs, lateMs: Math.floor(timeoutMs / 2), phi: null };
  }
  const timeoutMs = PHI_CAP_INTERVALS * th.intervalMs;
  const phi = Object.freeze({ ...(th.phi ?? DEFAULT_PHI), threshold: k, lateThreshold: Math.min(3, k / 2) });
  return { intervalMs: th.intervalMs, timeoutMs, lateMs: Math.floor(timeoutMs / 2), phi };
}

/** `config` with every node (and the defaults) judged by `setting`; the config itself for today's. */
export function variant(config: Config, setting: Setting): Config {
  if (setting.family === "config") return config;
  const nodes = new Map<string, NodeSpec>();
  for (const [id, spec] of config.nodes)
    nodes.set(id, Object.freeze({ ...spec, ...thresholds(spec, setting) }));
  return Object.freeze({
    ...config,
    defaults: Object.freeze(thresholds(config.defaults, setting)),
    nodes,
  });
}

export interface Point {
  readonly setting: Setting;
  readonly run: ReplayRun;
  readonly scored: Scored;
}

/** Replays `prepared` under each setting (in order) and scores it. */
export async function sweep(
  prepared: Prepared,
  config: Config,
  options: QosOptions = {},
  under: readonly Setting[] = settings(),
): Promise<Point[]> {
  const points: Point[] = [];
  for (const setting of under) {
    const run = await replay(prepared, variant(config, setting));
    points.push({ setting, run, scored: score(prepared.trace, run.transitions, options) });
  }
  return points;
}
