// The socket a replay hands the monitor: nothing is bound and nothing goes on the network; the
// replay delivers each datagram itself, at its arrival on the virtual clock.

import type { HostPort } from "../wire/address.js";
import type { DatagramSocket, RemoteInfo } from "../wire/udp.js";

/** The port a replayed monitor reports as bound when its config says "any free port". */
const ANY_PORT = 26722;

export class MemorySocket implements DatagramSocket {
  private handler: ((msg: Buffer, from: RemoteInfo) => void) | undefined;

  bind(address: HostPort): Promise<HostPort> {
    return Promise.resolve({ host: address.host, port: address.port === 0 ? ANY_PORT : address.port });
  }

  onMessage(handler: (msg: Buffer, from: RemoteInfo) => void): void {
    this.handler = handler;
  }

  send(): Promise<void> {
    return Promise.resolve();
  }

  setReceiveBufferSize(bytes: number): number {
    return bytes;
  }

  close(): Promise<void> {
    this.handler = undefined;
    return Promise.resolve();
  }

  /** Hands one datagram to the monitor now. */
  deliver(msg: Buffer, from: RemoteInfo): void {
    this.handler?.(msg, from);
  }
}
