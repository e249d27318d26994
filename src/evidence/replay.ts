// Replays a trace through the monitor's own code: a real Monitor on a virtual clock and an
// in-memory socket, each row delivered as a heartbeat datagram at exactly its arrival, in the
// poll phase of the event loop's turn (after the timers due then, before their immediates), and
// a `# stall` span skipped without running anything (the monitor then meets its late timer and
// holds judgement, as it did live). What comes out is every judgement the monitor made of a
// node, on the trace's clock.

import type { Config, NodeSpec } from "../config/types.js";
import type { EventFields, EventName } from "../events.js";
import { Monitor } from "../monitor/monitor.js";
import { Kind, encode, setSequence } from "../wire/protocol.js";
import type { Trace } from "../wire/trace.js";
import type { RemoteInfo } from "../wire/udp.js";
import { MemorySocket } from "./memory-socket.js";
import { VirtualClock } from "./virtual-clock.js";

export type JudgedState = "up" | "late" | "down";

export interface Transition {
  readonly node: string;
  readonly state: JudgedState;
  /** When the monitor made the judgement, in ms on the trace's clock. */
  readonly at: number;
}

export interface ReplayRun {
  /** Every judgement of a node, in the order the monitor made them. */
  readonly transitions: readonly Transition[];
  /** How often the monitor found it had stalled (`monitor.stalled`), holding judgement back. */
  readonly stalls: number;
  /**
   * Judgements missing from `transitions` because the monitor summarized their journal lines
   * (`nodes.summarized`: past 100 a second about unlisted nodes), at most. First contacts (a
   * node's first `up`) are not counted: the figures do not need them.
   */
  readonly summarized: number;
}

/** What a replay sends: per node one datagram, its sequence counted up for each of its rows. */
export interface Prepared {
  readonly trace: Trace;
  /** Per node, an unsigned heartbeat of incarnation 1 (a replay sets its sequence as it goes). */
  readonly datagrams: readonly Buffer[];
  /** Per node, where its datagrams come from (one object each: nothing is made per row). */
  readonly origins: readonly RemoteInfo[];
}

/** The first port the replayed nodes appear to send from; node i sends from FIRST_PORT + i. */
const FIRST_PORT = 10_000;

/** Made once per trace, and used by every replay of it (a sweep's too), one at a time. */
export function prepare(trace: Trace): Prepared {
  const datagrams = trace.nodes.map((nodeId) =>
    encode({ kind: Kind.BEAT, nodeId, incarnation: 1, sequence: 1 }),
  );
  const origins = trace.nodes.map((_, i): RemoteInfo => ({
    address: "127.0.0.1",
    family: "IPv4",
    port: FIRST_PORT + i,
    size: 0,
  }));
  return { trace, datagrams, origins };
}

/**
 * The config as the replay runs it: judging as configured, and nothing else. No keys to check
 * (the rows carry no tags), any sender taken in and room for all, no peers, outputs, state or
 * status server; and the listed nodes the trace never hears from are left out, since they
 * would go down after the startup grace for want of rows, not of a heartbeat.
 */
export function replayConfig(config: Config, trace: Trace): Config {
  const heard = new Set(trace.nodes);
  const nodes = new Map<string, NodeSpec>();
  for (const [id, spec] of config.nodes) if (heard.has(id)) nodes.set(id, spec);
  const children = new Map<string, readonly string[]>();
  for (const [parent, kids] of config.children) {
    const kept = kids.filter((id) => nodes.has(id));
    if (nodes.has(parent) && kept.length > 0) children.set(parent, Object.freeze(kept));
  }
  return Object.freeze({
    ...config,
    status: null,
    auth: "off",
    keys: Object.freeze([]),
    unknownNodes: "accept",
    maxNodes: Math.max(config.maxNodes, trace.nodes.length),
    nodes,
    notify: Object.freeze([]),
    cluster: null,
    children,
  });
}

const STATE_OF: Partial<Record<EventName, JudgedState>> = {
  "node.up": "up",
  "node.late": "late",
  "node.down": "down",
};

/** Runs the monitor over `prepared`'s trace with `config` (already adjusted: replayConfig). */
export async function replay(prepared: Prepared, config: Config): Promise<ReplayRun> {
  const { trace, datagrams, origins } = prepared;
  const clock = new VirtualClock(trace.startMs);
  const socket = new MemorySocket();
  const transitions: Transition[] = [];
  let stalls = 0;
  const held: Record<string, number> = {};
  const emit = <E extends EventName>(event: E, fields: EventFields[E]): void => {
    const state = STATE_OF[event];
    if (state !== undefined) {
      transitions.push({ node: (fields as { node: string }).node, state, at: clock.monoMs() });
    } else if (event === "monitor.stalled") stalls++;
    else if (event === "nodes.summarized")
      for (const [name, n] of Object.entries((fields as EventFields["nodes.summarized"]).counts))
        held[name] = (held[name] ?? 0) + n;
  };
  const monitor = new Monitor(
    { config, keyring: new Map() },
    { clock, emit, socket, kernelDrops: () => null },
  );
  await monitor.listen();

  const { node, arrivalMs } = trace;
  const rows = node.length;
  // Each row is its node's next heartbeat: the sequence counts up, so none looks like a replay.
  const sequences = new Float64Array(trace.nodes.length);
  let next = 0;
  // A row is read in the poll phase of the first turn at or after its arrival: after the timers
  // due then, before the judgement they start. One stamped inside a stall is read at its end.
  clock.setPollSource({
    nextMs: () => (next < rows ? arrivalMs[next]! : Number.POSITIVE_INFINITY),
    read: (nowMs) => {
      for (; next < rows && arrivalMs[next]! <= nowMs; next++) {
        const n = node[next]!;
        const datagram = datagrams[n]!;
        setSequence(datagram, ++sequences[n]!);
        socket.deliver(datagram, origins[n]!);
      }
    },
  });
  for (const [from, to] of [...trace.stalls].sort((a, b) => a[0] - b[0])) {
    if (from >= trace.endMs) break;
    clock.advanceTo(from);
    // On waking, the timers that fell due come first; what queued up is read after them.
    clock.freezeTo(to);
  }
  clock.advanceTo(trace.endMs);
  await monitor.close();
  // Every node of the trace was heard, so each had a first up: those not written were held.
  const upsWritten = new Set(transitions.filter((t) => t.state === "up").map((t) => t.node)).size;
  const firstContactsHeld = trace.nodes.length - upsWritten;
  const summarized =
    (held["node.late"] ?? 0) +
    (held["node.down"] ?? 0) +
    Math.max(0, (held["node.up"] ?? 0) - firstContactsHeld);
  return { transitions, stalls, summarized };
}
