import type { HostPort } from "../../src/wire/address.js";
import type { DatagramSocket, RemoteInfo } from "../../src/wire/udp.js";

export class FakeSocket implements DatagramSocket {
  private handler: ((msg: Buffer, from: RemoteInfo) => void) | undefined;
  readonly sent: { msg: Buffer; to: HostPort }[] = [];
  closed = false;
  failSends: Error | undefined;

  bind(address: HostPort): Promise<HostPort> {
    return Promise.resolve({ host: address.host, port: address.port === 0 ? 40000 : address.port });
  }
  onMessage(handler: (msg: Buffer, from: RemoteInfo) => void): void {
    this.handler = handler;
  }
  send(msg: Uint8Array, to: HostPort): Promise<void> {
    if (this.failSends !== undefined) return Promise.reject(this.failSends);
    this.sent.push({ msg: Buffer.from(msg), to });
    return Promise.resolve();
  }
  setReceiveBufferSize(bytes: number): number {
    return bytes;
  }
  close(): Promise<void> {
    this.closed = true;
    return Promise.resolve();
  }
  deliver(msg: Buffer, port = 5000): void {
    this.handler!(msg, { address: "127.0.0.1", family: "IPv4", port, size: msg.length });
  }
}
