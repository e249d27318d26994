// Sockets on one fake clock that reach each other by port: what one sends, the socket bound to the
// destination port receives on the next turn (after the sender's timer, as a real one would),
// unless the test drops it on the way. Every datagram sent is logged, delivered or not.
import type { HostPort } from "../../src/wire/address.js";
import type { DatagramSocket, RemoteInfo } from "../../src/wire/udp.js";
import type { FakeClock } from "./fake-clock.js";

export interface Sent {
  from: number;
  to: number;
  msg: Buffer;
  t: number;
  dropped: boolean;
}

export class FakeNetwork {
  private readonly sockets = new Map<number, NetworkSocket>();
  private queue: Sent[] = [];
  readonly log: Sent[] = [];
  /** Datagrams for which this says true are lost on the way. */
  drop: ((sent: Sent) => boolean) | undefined;

  constructor(readonly clock: FakeClock) {}

  /** A socket that sends from `port`, and receives what is sent to it (the last one made there). */
  socket(port: number): NetworkSocket {
    const socket = new NetworkSocket(this, port);
    this.sockets.set(port, socket);
    return socket;
  }

  route(from: number, to: number, msg: Buffer): void {
    const sent: Sent = { from, to, msg, t: this.clock.monoMs(), dropped: false };
    sent.dropped = this.drop?.(sent) ?? false;
    this.log.push(sent);
    if (sent.dropped) return;
    if (this.queue.push(sent) === 1) this.clock.setImmediate(() => this.flush());
  }

  private flush(): void {
    const queue = this.queue;
    this.queue = [];
    for (const { from, to, msg } of queue) this.sockets.get(to)?.receive(msg, from);
  }
}

export class NetworkSocket implements DatagramSocket {
  private handler: ((msg: Buffer, from: RemoteInfo) => void) | undefined;
  closed = false;

  constructor(
    private readonly network: FakeNetwork,
    readonly port: number,
  ) {}

  bind(address: HostPort): Promise<HostPort> {
    return Promise.resolve({ host: address.host, port: this.port });
  }
  onMessage(handler: (msg: Buffer, from: RemoteInfo) => void): void {
    this.handler = handler;
  }
  send(msg: Uint8Array, to: HostPort): Promise<void> {
    if (!this.closed) this.network.route(this.port, to.port, Buffer.from(msg));
    return Promise.resolve();
  }
  setReceiveBufferSize(bytes: number): number {
    return bytes;
  }
  close(): Promise<void> {
    this.closed = true;
    return Promise.resolve();
  }
  receive(msg: Buffer, from: number): void {
    if (this.closed) return;
    this.handler?.(msg, { address: "127.0.0.1", family: "IPv4", port: from, size: msg.length });
  }
  /** A datagram from anyone (a forger), delivered now. */
  deliver(msg: Buffer, from = 5000): void {
    this.receive(msg, from);
  }
}
