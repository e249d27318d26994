// The node side: one datagram per interval to each monitor, on a schedule anchored to the
// monotonic clock (no drift, no bursts after a pause), and a `leave` on a planned stop. Monitor
// names are resolved again every 30 s and after a failed send, so a monitor moved by DNS is
// found, without a lookup per beat. Network errors are logged (first of a streak, then every
// 60th) and retried at the next beat: a sender never dies of an unreachable monitor.

import { lookup } from "node:dns/promises";
import { isIP } from "node:net";
import type { Clock, Timer } from "../clock.js";
import type { Emit } from "../events.js";
import { formatHostPort, type HostPort } from "../wire/address.js";
import { Kind, encode, type SigningKey } from "../wire/protocol.js";
import { familyOf, type DatagramSocket } from "../wire/udp.js";

const LOG_EVERY_FAILURES = 60;
/** How long a resolved monitor address is used before its name is looked up again. */
export const RESOLVE_EVERY_MS = 30_000;

export interface SenderOptions {
  nodeId: string;
  monitors: readonly HostPort[];
  intervalMs: number;
  incarnation: number;
  key?: SigningKey | undefined;
  /** Sequences move forward but do not count datagrams (see startSequenceAt). */
  unnumbered?: boolean | undefined;
}

export interface SenderDeps {
  clock: Clock;
  emit: Emit;
  socket: (family: "udp4" | "udp6") => DatagramSocket;
  resolve?: (host: string) => Promise<string>;
}

async function resolveHost(host: string): Promise<string> {
  return isIP(host) !== 0 ? host : (await lookup(host)).address;
}

interface Target {
  configured: HostPort;
  name: string;
  resolved: HostPort | undefined;
  /** Monotonic instant after which the name is looked up again. */
  resolveAtMs: number;
  failures: number;
}

export class Sender {
  private sequence = 0;
  private sent = 0;
  private timer: Timer | undefined;
  private anchor = 0;
  private beats = 0;
  private stopped = false;
  private readonly sockets = new Map<string, DatagramSocket>();
  private readonly targets: Target[];
  private readonly resolve: (host: string) => Promise<string>;

  constructor(
    private readonly options: SenderOptions,
    private readonly deps: SenderDeps,
  ) {
    this.resolve = deps.resolve ?? resolveHost;
    this.targets = options.monitors.map((m) => ({
      configured: m,
      name: formatHostPort(m),
      resolved: undefined,
      resolveAtMs: 0,
      failures: 0,
    }));
  }

  /** The next datagram carries sequence `value` (one-shot senders use the wall clock). */
  startSequenceAt(value: number): void {
    this.sequence = value - 1;
  }

  start(): void {
    this.anchor = this.deps.clock.monoMs();
    this.deps.emit("sender.started", {
      node: this.options.nodeId,
      monitors: this.targets.map((t) => t.name),
      intervalMs: this.options.intervalMs,
      incarnation: this.options.incarnation,
      keyId: this.options.key?.id ?? null,
    });
    this.tick();
  }

  private tick(): void {
    if (this.stopped) return;
    void this.sendAll(Kind.BEAT);
    // The next beat is the next multiple of the interval from the start that is still ahead.
    const now = this.deps.clock.monoMs();
    this.beats = Math.max(this.beats + 1, Math.floor((now - this.anchor) / this.options.intervalMs) + 1);
    const delay = Math.max(0, this.anchor + this.beats * this.options.intervalMs - now);
    this.timer = this.deps.clock.setTimeout(() => this.tick(), delay);
  }

  /** Sends one datagram of `kind` to every monitor; resolves when all sends have settled. */
  async sendAll(kind: Kind): Promise<void> {
    this.sequence++;
    const datagram = encode(
      {
        kind,
        nodeId: this.options.nodeId,
        incarnation: this.options.incarnation,
        sequence: this.sequence,
        unnumbered: this.options.unnumbered,
      },
      this.options.key,
    );
    await Promise.all(this.targets.map((target) => this.sendTo(target, datagram)));
  }

  private async sendTo(target: Target, datagram: Buffer): Promise<void> {
    try {
      const to = await this.addressOf(target);
      const family = familyOf(to.host);
      let socket = this.sockets.get(family);
      if (socket === undefined) {
        socket = this.deps.socket(family);
        this.sockets.set(family, socket);
      }
      await socket.send(datagram, to);
      this.sent++;
      target.failures = 0;
    } catch (err) {
      // Resolve again next time: the name may point elsewhere once the network is back.
      target.resolved = undefined;
      target.failures++;
      if (target.failures === 1 || target.failures % LOG_EVERY_FAILURES === 0) {
        this.deps.emit("sender.failed", {
          node: this.options.nodeId,
          monitor: target.name,
          error: (err as NodeJS.ErrnoException).code ?? (err as Error).message,
          failures: target.failures,
        });
      }
    }
  }

  private async addressOf(target: Target): Promise<HostPort> {
    const nowMs = this.deps.clock.monoMs();
    if (target.resolved !== undefined && nowMs < target.resolveAtMs) return target.resolved;
    try {
      target.resolved = { host: await this.resolve(target.configured.host), port: target.configured.port };
      target.resolveAtMs = nowMs + RESOLVE_EVERY_MS;
    } catch (err) {
      // A failed refresh keeps the last address (and tries again next beat): a resolver outage
      // must not silence a node whose monitor has not moved.
      if (target.resolved === undefined) throw err;
    }
    return target.resolved;
  }

  /** Stops beating; with `leave`, tells the monitors this is a planned stop. */
  async stop(signal: string, leave: boolean): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.timer !== undefined) this.deps.clock.clearTimeout(this.timer);
    if (leave) await this.sendAll(Kind.LEAVE);
    this.deps.emit("sender.stopping", { node: this.options.nodeId, signal, sent: this.sent });
    await Promise.all([...this.sockets.values()].map((s) => s.close()));
  }
}
