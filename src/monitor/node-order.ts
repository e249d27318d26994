// The nodes in display order for /status, kept between requests and rebuilt only when a node was
// added or forgotten, so a million ids are not re-sorted for every request. The rebuild is a
// generator that yields every few thousand steps (collect, sort runs, merge passes): its caller
// decides when to give the event loop a turn, and no step holds it for long.

import { compareIds, type NodeReader } from "./views.js";

export interface Order {
  readonly membership: number;
  /** Slots in display order; a slot whose id is no longer ids[i] was forgotten since. */
  readonly slots: Int32Array;
  readonly ids: readonly string[];
}

/** Units of work between two yields (small: the first steps run before the JIT has warmed up). */
const STEP = 1024;
/** Length of the runs sorted directly before merging; one run per yield. */
const RUN = 512;

export class NodeOrder {
  private order: Order | null = null;
  private building: Iterator<void, Order> | null = null;
  private builds = 0;

  constructor(private readonly reader: NodeReader) {}

  /**
   * Yields while the order is being rebuilt, then returns it. Concurrent callers share one
   * rebuild, and a caller that waited through one takes its result even if a node came or went
   * meanwhile: under constant churn every request still finishes.
   */
  *current(): Generator<void, Order> {
    const buildsBefore = this.builds;
    for (;;) {
      const order = this.order;
      if (order !== null && (order.membership === this.reader.membership || this.builds > buildsBefore))
        return order;
      this.building ??= this.build();
      const step = this.building.next();
      if (step.done === true) {
        this.order = step.value;
        this.building = null;
        this.builds++;
        continue;
      }
      yield;
    }
  }

  private *build(): Generator<void, Order> {
    const reader = this.reader;
    const membership = reader.membership;
    const end = reader.slots;
    // Sized once: a million pushes would copy growing arrays while the loop waits.
    const slots = new Int32Array(end);
    const ids = new Array<string>(end);
    let n = 0;
    for (let slot = 0; slot < end; slot++) {
      const id = reader.idAt(slot);
      if (id !== undefined) {
        slots[n] = slot;
        ids[n++] = id;
      }
      if (slot % STEP === STEP - 1) yield;
    }
    const compare = (x: number, y: number): number => compareIds(ids[x]!, ids[y]!);

    let perm = new Int32Array(n);
    for (let i = 0; i < n; i++) perm[i] = i;
    for (let lo = 0; lo < n; lo += RUN) {
      perm.subarray(lo, Math.min(n, lo + RUN)).sort(compare);
      yield;
    }
    let other = new Int32Array(n);
    let work = 0;
    for (let width = RUN; width < n; width *= 2) {
      for (let lo = 0; lo < n; lo += 2 * width) {
        const mid = Math.min(n, lo + width);
        const hi = Math.min(n, lo + 2 * width);
        let i = lo;
        let j = mid;
        for (let k = lo; k < hi; k++) {
          other[k] = i < mid && (j >= hi || compare(perm[j]!, perm[i]!) >= 0) ? perm[i++]! : perm[j++]!;
          if (++work % STEP === 0) yield;
        }
      }
      [perm, other] = [other, perm];
    }
    const sortedSlots = new Int32Array(n);
    const sortedIds: string[] = new Array<string>(n);
    for (let i = 0; i < n; i++) {
      sortedSlots[i] = slots[perm[i]!]!;
      sortedIds[i] = ids[perm[i]!]!;
      if (i % STEP === STEP - 1) yield;
    }
    return { membership, slots: sortedSlots, ids: sortedIds };
  }
}
