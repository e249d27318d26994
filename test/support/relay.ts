// A UDP relay between a real node and a monitor that keeps a copy of every datagram: captured
// traffic for replay tests.
import { createSocket, type Socket } from "node:dgram";

export class Relay {
  readonly captured: Buffer[] = [];
  private readonly socket: Socket = createSocket("udp4");
  private readonly out: Socket = createSocket("udp4");
  target: number;
  port = 0;

  constructor(targetPort: number) {
    this.target = targetPort;
  }

  async start(): Promise<string> {
    this.socket.on("message", (msg) => {
      this.captured.push(Buffer.from(msg));
      this.out.send(msg, this.target, "127.0.0.1");
    });
    await new Promise<void>((resolve) => this.socket.bind(0, "127.0.0.1", resolve));
    this.port = this.socket.address().port;
    return `127.0.0.1:${this.port}`;
  }

  /** Sends datagrams straight to a monitor, as an attacker would. */
  async replay(datagrams: Buffer[], port = this.target): Promise<void> {
    for (const msg of datagrams) {
      await new Promise<void>((resolve, reject) =>
        this.out.send(msg, port, "127.0.0.1", (err) => (err ? reject(err) : resolve())),
      );
    }
  }

  close(): void {
    this.socket.close();
    this.out.close();
  }
}
