// What the monitor answers about itself, read at the moment of asking: the status document (whole,
// or a piece at a time for GET /status), counts by state, what `hb reload` waits on, and what the
// notify outputs and /metrics read of a node. Nothing here changes what is judged; a large fleet
// is counted and listed in slices, so that no answer holds the event loop for long.

import type { Clock, WallTime } from "../clock.js";
import type { Config } from "../config/types.js";
import type { NodeFacts } from "../facts.js";
import { zeroCounts, type Counts, type StateName } from "../states.js";
import { VERSION } from "../version.js";
import type { Counters } from "./counters.js";
import type { Detector } from "./detector.js";
import { NodeOrder } from "./node-order.js";
import type { Annotate, NodeView } from "./views.js";
import type { Peers } from "./peers.js";
import {
  ALL_NODES,
  selectNodes,
  statusJson,
  type NodeQuery,
  type ReloadState,
  type ReloadStatus,
  type StatusDocument,
} from "./status.js";

/** Nodes counted between two chances to give the event loop a turn (status, metrics). */
const COUNT_SLICE = 65_536;

export interface StatusViewsDeps {
  clock: Clock;
  wall: WallTime;
  config: () => Config;
  detector: Detector;
  peers: Peers | null;
  counters: Counters;
  reload: () => ReloadState;
  listenAddress: () => string;
  pid: number;
  /** What the policy adds to each node's view (maintenance, via); null: nothing. */
  annotate: () => Annotate | null;
}

export class StatusViews {
  /** Display order of the nodes, kept between status requests. */
  private readonly order: NodeOrder;
  private readonly startedWall: number;

  constructor(private readonly deps: StatusViewsDeps) {
    this.order = new NodeOrder(deps.detector.reader());
    this.startedWall = deps.clock.wallMs();
  }

  counts(): Counts {
    return this.deps.detector.counts(this.deps.clock.monoMs());
  }

  /** The live view; without `nodes` the per-node list is left out (for very large fleets). */
  status(nodes: boolean): StatusDocument {
    return this.statusAt(this.deps.clock.monoMs(), nodes);
  }

  /** GET /status: the document with the nodes `query` selects, as JSON a piece at a time. */
  *statusBody(query: NodeQuery = ALL_NODES): Generator<string, void> {
    const now = this.deps.clock.monoMs();
    const reader = this.deps.detector.reader();
    const counts = zeroCounts();
    for (let slot = 0; slot >= 0; yield "") slot = reader.countFrom(counts, slot, COUNT_SLICE, now);
    const selected = selectNodes(reader, this.order, query, now);
    const annotate = this.deps.annotate();
    yield* statusJson(
      this.statusAt(now, false, counts),
      annotate === null ? selected : annotated(selected, annotate),
    );
  }

  /** Counts `COUNT_SLICE` slots from `fromSlot` on into `counts`; returns where to go on, or -1. */
  countSlice(counts: Counts, fromSlot: number): number {
    return this.deps.detector.reader().countFrom(counts, fromSlot, COUNT_SLICE, this.deps.clock.monoMs());
  }

  /** What `hb reload` waits on: no node is counted or listed. */
  reloadStatus(): ReloadStatus {
    return { version: VERSION, pid: this.deps.pid, reload: this.deps.reload() };
  }

  private statusAt(now: number, nodes: boolean, counts = this.deps.detector.counts(now)): StatusDocument {
    const { clock, counters, detector } = this.deps;
    return {
      version: VERSION,
      pid: this.deps.pid,
      now: clock.wallMs(),
      startedAt: this.startedWall,
      listen: this.deps.listenAddress(),
      config: this.deps.config().file,
      reload: this.deps.reload(),
      receiveBuffer: counters.receiveBuffer,
      kernelDrops: counters.kernelDrops(),
      counts,
      datagrams: {
        received: counters.received,
        accepted: counters.accepted,
        rejected: { ...counters.rejections.total },
      },
      cluster: this.deps.peers?.view() ?? null,
      nodes: nodes ? this.annotateAll(detector.view(now)) : [],
    };
  }

  private annotateAll(views: NodeView[]): NodeView[] {
    const annotate = this.deps.annotate();
    if (annotate === null) return views;
    return views.map((view) => {
      const extra = annotate(view.node, view.state);
      return extra === null ? view : { ...view, ...extra };
    });
  }

  /**
   * Visits the nodes in slots from `fromSlot` on, at most `max` of them: each one's id, state and
   * last arrival (epoch ms, null if never heard). Returns the slot to go on from, or -1 at the end.
   */
  forEachNode(
    fromSlot: number,
    max: number,
    visit: (id: string, state: StateName, lastSeenWallMs: number | null) => void,
  ): number {
    const reader = this.deps.detector.reader();
    const now = this.deps.clock.monoMs();
    const end = reader.slots;
    let slot = fromSlot;
    for (let visited = 0; slot < end && visited < max; slot++) {
      const id = reader.idAt(slot);
      if (id === undefined) continue;
      const lastSeen = reader.lastSeen(slot);
      visit(id, reader.state(slot, now), lastSeen === null ? null : this.deps.wall.of(lastSeen));
      visited++;
    }
    return slot < end ? slot : -1;
  }

  /** What a notice about `node` says of it, read now; null when the node is not tracked. */
  facts(node: string): NodeFacts | null {
    const config = this.deps.config();
    const spec = config.nodes.get(node);
    return this.deps.detector.reader().facts(node, spec?.labels ?? null, spec ?? config.defaults);
  }

  /** The node's state now; null when it is not tracked. */
  stateOf(node: string): StateName | null {
    const reader = this.deps.detector.reader();
    const slot = reader.slotOf(node);
    return slot === undefined ? null : reader.state(slot, this.deps.clock.monoMs());
  }

  /** Whether `node` is down now (an alert about it may still fire). */
  isDown(node: string): boolean {
    const reader = this.deps.detector.reader();
    const slot = reader.slotOf(node);
    return slot !== undefined && reader.state(slot, this.deps.clock.monoMs()) === "down";
  }
}

function* annotated(
  nodes: Iterator<NodeView | null, void>,
  annotate: Annotate,
): Generator<NodeView | null, void> {
  for (let next = nodes.next(); next.done !== true; next = nodes.next()) {
    const view = next.value;
    const extra = view === null ? null : annotate(view.node, view.state);
    yield extra === null ? view : { ...view!, ...extra };
  }
}
