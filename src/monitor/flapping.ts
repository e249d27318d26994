// Flap damping: a node that changes state more than FLAP_CHANGES times within FLAP_WINDOW_MS
// (crash-looping, a flaky link, up/left alternating) is reported once as `node.flapping`, and
// again only when it has been quiet for a window. Meanwhile the changes nothing else bounds
// (late and back up, restarts, leaves and returns) are kept out of the journal; a down, and the
// return from one, are always written (each takes a timeout of silence). Its state is still
// tracked exactly (status and metrics stay true), so journal lines are bounded by nodes,
// windows and timeouts, never by datagrams.

import { DeadlineHeap } from "./deadline-heap.js";
import type { DetectorState } from "./detector-state.js";
import { F_FLAPPING } from "./node-table.js";

export const FLAP_CHANGES = 6;
export const FLAP_WINDOW_MS = 60_000;

export class Flapping {
  /** Flapping nodes by when they may have settled (lazily: an entry may be stale). */
  private readonly settles = new DeadlineHeap<number>();

  constructor(private readonly s: DetectorState) {}

  /**
   * A transition of `slot` is about to be reported at `nowMs`. Returns "report", "quiet" (it is
   * flapping), or "started" (this change makes it flapping: `node.flapping` is said first).
   */
  change(slot: number, nowMs: number): "report" | "quiet" | "started" {
    const t = this.s.t;
    if ((t.flags[slot]! & F_FLAPPING) !== 0) {
      t.flapStart[slot] = nowMs; // while flapping: the last change
      t.flapCount[slot] = Math.min(255, t.flapCount[slot]! + 1);
      this.settles.push(nowMs + FLAP_WINDOW_MS, slot);
      return "quiet";
    }
    if (nowMs - t.flapStart[slot]! > FLAP_WINDOW_MS) {
      t.flapStart[slot] = nowMs;
      t.flapCount[slot] = 0;
    }
    t.flapCount[slot] = t.flapCount[slot]! + 1;
    if (t.flapCount[slot] <= FLAP_CHANGES) return "report";
    t.flags[slot] = t.flags[slot]! | F_FLAPPING;
    t.flapStart[slot] = nowMs;
    this.settles.push(nowMs + FLAP_WINDOW_MS, slot);
    return "started";
  }

  /** When the next flapping node may settle (+Infinity when none is flapping). */
  nextSettle(): number {
    return this.settles.peekKey();
  }

  /** Calls `settled` for every flapping node quiet for a window by `nowMs`, clearing its flag. */
  settle(nowMs: number, settled: (slot: number, changes: number) => void): void {
    const t = this.s.t;
    while (this.settles.peekKey() <= nowMs) {
      const slot = this.settles.peekItem()!;
      this.settles.pop();
      if ((t.flags[slot]! & F_FLAPPING) === 0 || t.flapStart[slot]! + FLAP_WINDOW_MS > nowMs) continue;
      t.flags[slot] = t.flags[slot]! & ~F_FLAPPING;
      const changes = t.flapCount[slot]!;
      t.flapCount[slot] = 0;
      t.flapStart[slot] = nowMs;
      settled(slot, changes);
    }
  }
}
