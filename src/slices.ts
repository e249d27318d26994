// Long work written once, run either at once or a slice at a time. Such work is a generator
// that yields at points where it may be interrupted (every thousand nodes or so, never in the
// middle of a change); `finish` runs it to the end, `finishInTurns` runs it for a few
// milliseconds per turn of the event loop, so that datagrams are read and judged in between.

export type Sliced<T> = Generator<void, T, void>;

/** Runs `work` to its end now. */
export function finish<T>(work: Sliced<T>): T {
  for (;;) {
    const step = work.next();
    if (step.done === true) return step.value;
  }
}

/** How long one turn's slice of work may run (measured, so it holds on a slow machine too). */
export const SLICE_MS = 4;

/**
 * Runs `work` in slices of about `sliceMs`, awaiting `pause` (the next turn of the loop)
 * between them. `now` is a monotonic clock in milliseconds.
 */
export async function finishInTurns<T>(
  work: Sliced<T>,
  pause: () => Promise<void>,
  now: () => number = () => performance.now(),
  sliceMs = SLICE_MS,
): Promise<T> {
  for (;;) {
    const until = now() + sliceMs;
    do {
      const step = work.next();
      if (step.done === true) return step.value;
    } while (now() < until);
    await pause();
  }
}
