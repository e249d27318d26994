// A UDP relay in front of a monitor whose link can be cut and restored, for partition tests: while
// cut it drops every datagram it receives, as a broken link would; restored, it forwards again.
// It can also lose a share of what it forwards, as a bad link does, each datagram dropped or not by
// a seeded generator: the same seed drops the same datagrams at every run.
// Datagrams go on from a socket of their own, so nothing sent back to their source reaches the relay.
import { createSocket, type Socket } from "node:dgram";
import { prng } from "./prng.js";

export class CutRelay {
  private readonly socket: Socket = createSocket("udp4");
  private readonly out: Socket = createSocket("udp4");
  private readonly random: () => number;
  private isCut = false;
  /** The share of datagrams lost while the link is not cut, 0 to 1. */
  lossRate = 0;
  /** Datagrams passed on to the target, and dropped (while cut, or lost). */
  forwarded = 0;
  dropped = 0;
  port = 0;

  constructor(
    readonly targetPort: number,
    seed = 1,
  ) {
    this.random = prng(seed);
  }

  /** Binds a free loopback port; resolves with the address to give instead of the target's. */
  async start(): Promise<string> {
    this.socket.on("message", (msg) => {
      // One draw per datagram, cut or not: which datagrams are lost does not depend on the cuts.
      const lost = this.random() < this.lossRate;
      if (this.isCut || lost) {
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
