// A UDP relay in front of a monitor whose link can be cut and restored, for partition tests: while
// cut it drops every datagram it receives, as a broken link would; restored, it forwards again.
// Datagrams go on from a socket of their own, so nothing sent back to their source reaches the relay.
import { createSocket, type Socket } from "node:dgram";

export class CutRelay {
  private readonly socket: Socket = createSocket("udp4");
  private readonly out: Socket = createSocket("udp4");
  private isCut = false;
  /** Datagrams passed on to the target, and dropped while cut. */
  forwarded = 0;
  dropped = 0;
  port = 0;

  constructor(readonly targetPort: number) {}

  /** Binds a free loopback port; resolves with the address to give instead of the target's. */
  async start(): Promise<string> {
    this.socket.on("message", (msg) => {
      if (this.isCut) {
        this.dropped++;
        return;
      }
      this.forwarded++;
      this.out.send(msg, this.targetPort, "127.0.0.1");
    });
    await new Promise<void>((resolve) => this.socket.bind(0, "127.0.0.1", resolve));
    this.port = this.socket.address().port;
    return `127.0.0.1:${this.port}`;
  }

  cut(): void {
    this.isCut = true;
  }

  restore(): void {
    this.isCut = false;
  }

  async close(): Promise<void> {
    await Promise.all([
      new Promise<void>((resolve) => this.socket.close(() => resolve())),
      new Promise<void>((resolve) => this.out.close(() => resolve())),
    ]);
  }
}
