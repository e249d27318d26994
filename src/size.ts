// Sizes as operators write them ("64MiB", "512KiB", "1048576") to bytes, and back to the
// shortest exact spelling for display. Binary units only: a MiB is 1 048 576 bytes.

const SIZE = /^(\d+)\s*(B|KiB|MiB|GiB)?$/;
const SIZE_UNITS = { B: 1, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3 } as const;

/** Whole bytes, or undefined when `text` is not a size above 0. */
export function parseSize(text: string): number | undefined {
  const match = SIZE.exec(text.trim());
  if (match === null || Number(match[1]) === 0) return undefined;
  const bytes = Number(match[1]) * SIZE_UNITS[(match[2] ?? "B") as keyof typeof SIZE_UNITS];
  return Number.isSafeInteger(bytes) ? bytes : undefined;
}

/** 8388608 -> "8MiB": the largest unit that holds it exactly, as parseSize reads it back. */
export function formatSize(bytes: number): string {
  for (const unit of ["GiB", "MiB", "KiB"] as const) {
    if (bytes >= SIZE_UNITS[unit] && bytes % SIZE_UNITS[unit] === 0)
      return `${bytes / SIZE_UNITS[unit]}${unit}`;
  }
  return String(bytes);
}
