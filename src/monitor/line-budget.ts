// A budget of journal lines for the lines that come in floods: lines about nodes the config does
// not list, and first contacts. Unlisted senders are whoever sends: a flood of random ids would
// otherwise write a `node.up`, later a `node.down`, per id, without end as the full table evicts
// and admits. A monitor that starts in front of 100 000 nodes hears them all within an interval:
// 100 000 `node.up` lines (new -> up) would cost it the datagrams it could not read meanwhile.
// Past LINES_PER_WINDOW such lines in a window, they are counted instead, and one
// `nodes.summarized` line says how many of each; /status has every node. Every other line about
// a listed node (late, down, back up, left, restarted) is always written.

import type { Clock } from "../clock.js";
import type { Emit, EventFields, EventName } from "../events.js";
import { Throttle } from "../throttle.js";

export const LINES_PER_WINDOW = 100;
export const LINE_WINDOW_MS = 1000;

export class LineBudget {
  private windowStart = Number.NEGATIVE_INFINITY;
  private used = 0;
  private held: Record<string, number> = {};
  private heldTotal = 0;
  private readonly summary: Throttle;

  constructor(
    private readonly clock: Clock,
    private readonly emit: Emit,
    /** True when the config lists `node`. */
    private readonly listed: (node: string) => boolean,
  ) {
    this.summary = new Throttle(clock, LINE_WINDOW_MS, () => this.report());
  }

  /** The Emit the detector uses: node lines about unlisted nodes go through the budget. */
  readonly filter: Emit = <E extends EventName>(event: E, fields: EventFields[E]): void => {
    const { node, previous } = fields as { node?: unknown; previous?: unknown };
    if (typeof node !== "string" || !event.startsWith("node.")) return this.emit(event, fields);
    const firstContact = event === "node.up" && previous === "new";
    if ((!firstContact && this.listed(node)) || this.spend()) return this.emit(event, fields);
    this.held[event] = (this.held[event] ?? 0) + 1;
    this.heldTotal++;
    this.summary.trigger();
  };

  private spend(): boolean {
    const now = this.clock.monoMs();
    if (now - this.windowStart >= LINE_WINDOW_MS) {
      this.windowStart = now;
      this.used = 0;
    }
    return ++this.used <= LINES_PER_WINDOW;
  }

  private report(): void {
    if (this.heldTotal === 0) return;
    this.emit("nodes.summarized", { counts: this.held, total: this.heldTotal, windowMs: LINE_WINDOW_MS });
    this.held = {};
    this.heldTotal = 0;
  }

  /** At stop: what is held is reported now. */
  flush(): void {
    this.summary.cancel();
    this.report();
  }
}
