// An in-process monitor on a fake clock and socket, with every event it emits collected.
import { createSecretKey } from "node:crypto";
import { parseConfig } from "../../src/config/parse.js";
import type { Config } from "../../src/config/types.js";
import type { EventFields, EventName } from "../../src/events.js";
import { Monitor } from "../../src/monitor/monitor.js";
import { Kind, encode, type SigningKey } from "../../src/wire/protocol.js";
import { FakeClock } from "./fake-clock.js";
import { FakeSocket } from "./fake-socket.js";

export type Recorded = { [E in EventName]: { event: E; t: number } & EventFields[E] }[EventName];

export function config(yaml: string): Config {
  const parsed = parseConfig(yaml, "test.yaml");
  if (!parsed.ok) throw new Error(parsed.problems.map((p) => `${p.line}:${p.col}: ${p.message}`).join("\n"));
  return parsed.config;
}

export const TEST_KEY: SigningKey = {
  id: "k1",
  secret: createSecretKey(Buffer.from("0123456789abcdef0123456789abcdef")),
};

export interface HarnessOptions {
  /** The clock turns as Node's event loop does, and arrive() schedules datagrams (FakeClock.io). */
  pollPhase?: boolean;
}

export class Harness {
  readonly clock: FakeClock;
  readonly socket = new FakeSocket();
  readonly events: Recorded[] = [];
  readonly monitor: Monitor;
  private readonly seqs = new Map<string, number>();

  /** The kernel's drop counter the monitor reads (tests raise it to simulate an overflow). */
  kernelDrops = 0;

  constructor(
    yaml: string,
    keyring: Map<string, SigningKey["secret"]> = new Map(),
    stateDir?: string,
    options: HarnessOptions = {},
  ) {
    this.clock = new FakeClock(undefined, options);
    this.monitor = new Monitor(
      { config: config(yaml), keyring },
      {
        clock: this.clock,
        socket: this.socket,
        stateDir,
        kernelDrops: () => this.kernelDrops,
        emit: (event, fields) => this.events.push({ event, t: this.clock.monoMs(), ...fields } as Recorded),
      },
    );
  }

  static async start(
    yaml: string,
    keyring?: Map<string, SigningKey["secret"]>,
    options?: HarnessOptions,
  ): Promise<Harness> {
    const h = new Harness(yaml, keyring, undefined, options);
    await h.monitor.listen();
    return h;
  }

  /** Delivers a heartbeat from `node` now (sequence numbers count up per node and incarnation). */
  beat(
    node: string,
    options: { incarnation?: number; kind?: Kind; key?: SigningKey; port?: number } = {},
  ): Buffer {
    const incarnation = options.incarnation ?? 1;
    const k = `${node}/${incarnation}`;
    const sequence = (this.seqs.get(k) ?? 0) + 1;
    this.seqs.set(k, sequence);
    const msg = encode({ kind: options.kind ?? Kind.BEAT, nodeId: node, incarnation, sequence }, options.key);
    this.socket.deliver(msg, options.port);
    return msg;
  }

  /**
   * A heartbeat from `node` arriving at `atMs`, read as a live monitor reads it: in the poll
   * phase of the loop's first turn at or after it (needs `pollPhase`).
   */
  arrive(node: string, atMs: number): void {
    this.clock.io(atMs, () => this.beat(node));
  }

  leave(node: string, incarnation = 1): void {
    this.beat(node, { incarnation, kind: Kind.LEAVE });
  }

  of<E extends EventName>(event: E, node?: string): ({ event: E; t: number } & EventFields[E])[] {
    return this.events.filter(
      (e) => e.event === event && (node === undefined || (e as { node?: string }).node === node),
    ) as unknown as ({ event: E; t: number } & EventFields[E])[];
  }

  names(node?: string): string[] {
    return this.events
      .filter((e) => node === undefined || (e as { node?: string }).node === node)
      .map((e) => e.event);
  }
}
