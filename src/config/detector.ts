// The `detector:` key of `defaults` and of each node: the fixed thresholds alone, or the
// φ-accrual detector with its settings, each checked where it is written. A `detector:` is read
// whole: what it leaves out is DEFAULT_PHI's, never the value of the level it replaces.

import { isMap, type Node, type Pair } from "yaml";
import type { Reader } from "./reader.js";
import { DEFAULT_PHI, type PhiSpec } from "./types.js";

export const DETECTOR_KEYS: readonly string[] = [
  "kind",
  "threshold",
  "late_threshold",
  "min_std",
  "acceptable_pause",
  "window",
];
/** φ 100 already means a 1e-100 chance that the heartbeat still comes: a higher one is a mistake. */
export const MAX_PHI = 100;
/** Each φ node keeps `window` inter-arrival times in memory: a bound per node, whatever is written. */
export const MAX_PHI_WINDOW = 100_000;

/**
 * `what.detector` (what: `defaults`, `nodes.ID`): a φ detector's settings, null for
 * `kind: fixed`, undefined when it has problems (reported). Settings that are all the defaults
 * are DEFAULT_PHI itself.
 */
export function parseDetector(r: Reader, pair: Pair, what: string): PhiSpec | null | undefined {
  const name = `${what}.detector`;
  const at = pair.key as Node;
  if (!isMap(pair.value)) {
    r.report(
      (pair.value as Node | null) ?? at,
      `${name} must be a mapping with a kind, e.g. { kind: phi, threshold: 8 } or { kind: fixed }`,
    );
    return undefined;
  }
  const before = r.problems.length;
  const fields = new Map(r.pairs(pair.value, at, name, DETECTOR_KEYS));
  const kindPair = fields.get("kind");
  if (kindPair === undefined) r.report(at, `${name} needs kind: fixed or phi`);
  const kind =
    kindPair === undefined ? undefined : r.oneOf(kindPair, `${name}.kind`, ["fixed", "phi"] as const);
  if (kind === "fixed") {
    for (const [key, p] of fields)
      if (key !== "kind")
        r.report(p.key as Node, `${name}.${key} is for kind: phi (kind fixed has no settings)`);
    return r.problems.length > before ? undefined : null;
  }

  // A kind that is neither: the other keys are still checked, as phi's.
  const read = (
    key: string,
    fallback: number,
    parse: (p: Pair, name: string) => number | undefined,
  ): number | undefined => {
    const p = fields.get(key);
    return p === undefined ? fallback : parse(p, `${name}.${key}`);
  };
  const thresholdPair = fields.get("threshold");
  let threshold = read("threshold", DEFAULT_PHI.threshold, (p, n) => r.number(p, n));
  if (threshold !== undefined && !(threshold > 0 && threshold <= MAX_PHI)) {
    r.report(
      thresholdPair!.value as Node,
      threshold > MAX_PHI
        ? `${name}.threshold must be at most ${MAX_PHI} (phi ${MAX_PHI} is a 1e-${MAX_PHI} chance that a heartbeat this late still comes)`
        : `${name}.threshold must be more than 0`,
    );
    threshold = undefined;
  }
  const latePair = fields.get("late_threshold");
  let lateThreshold = read("late_threshold", DEFAULT_PHI.lateThreshold, (p, n) => r.number(p, n));
  // Below 0.5 the silence that makes a node late can be shorter than its usual interval (φ is
  // log10 2 at the mean): every heartbeat would be followed by a late.
  if (lateThreshold !== undefined && lateThreshold < 0.5) {
    r.report(
      latePair!.value as Node,
      `${name}.late_threshold must be at least 0.5 (φ is 0.3 at the mean interval)`,
    );
    lateThreshold = undefined;
  }
  // Also when one of the two is the default: `threshold: 2` alone is below late_threshold's 3.
  if (threshold !== undefined && lateThreshold !== undefined && lateThreshold >= threshold) {
    const given = (p: Pair | undefined): string => (p === undefined ? ", the default" : "");
    r.report(
      (latePair ?? thresholdPair)!.value as Node,
      `${name}: late_threshold (${lateThreshold}${given(latePair)}) must be less than threshold (${threshold}${given(thresholdPair)})`,
    );
  }
  const minStdMs = read("min_std", DEFAULT_PHI.minStdMs, (p, n) => r.duration(p, n));
  const acceptablePauseMs = read("acceptable_pause", DEFAULT_PHI.acceptablePauseMs, (p, n) =>
    r.duration(p, n, true),
  );
  const window = read("window", DEFAULT_PHI.window, (p, n) => r.integer(p, n, 2, MAX_PHI_WINDOW));
  if (r.problems.length > before) return undefined;

  const spec: PhiSpec = {
    threshold: threshold!,
    lateThreshold: lateThreshold!,
    minStdMs: minStdMs!,
    acceptablePauseMs: acceptablePauseMs!,
    window: window!,
  };
  const all = Object.keys(spec) as (keyof PhiSpec)[];
  return all.every((f) => spec[f] === DEFAULT_PHI[f]) ? DEFAULT_PHI : Object.freeze(spec);
}
