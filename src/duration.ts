// Durations as operators write them ("250ms", "1s", "1.5s", "2m", "1h", "7d") to whole
// milliseconds, and back to the shortest exact spelling for display.

const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/;

/** Returns whole milliseconds, or undefined when `text` is not a positive-or-zero duration. */
export function parseDuration(text: string): number | undefined {
  const match = DURATION.exec(text.trim());
  if (match === null) return undefined;
  const ms = Number(match[1]) * UNIT_MS[match[2] as keyof typeof UNIT_MS];
  // 1.5ms cannot be honoured by a millisecond clock: refuse it rather than round silently.
  return Number.isSafeInteger(ms) ? ms : undefined;
}

export function formatDuration(ms: number): string {
  if (ms !== 0 && ms % 86_400_000 === 0) return `${ms / 86_400_000}d`;
  if (ms !== 0 && ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms !== 0 && ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms >= 1000 && ms % 100 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}

/** "3.2s", "450ms", "2m05s": how long ago, for humans. */
export function formatAgo(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`;
  const totalS = Math.round(ms / 1000);
  if (totalS < 3600) return `${Math.floor(totalS / 60)}m${String(totalS % 60).padStart(2, "0")}s`;
  return `${Math.floor(totalS / 3600)}h${String(Math.floor((totalS % 3600) / 60)).padStart(2, "0")}m`;
}
