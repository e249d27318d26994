// The monitor's counts of its own traffic: datagrams read and accepted, those refused by reason
// (with their throttled summary, rejections.ts), the receive buffer it asked for and got, and the
// kernel's drop counter for its socket. Counted on the hot path, read by /status and /metrics.

import type { Rejections } from "./rejections.js";
import { udpDrops } from "./udp-drops.js";

export interface DatagramCounts {
  received: number;
  accepted: number;
  rejected: Readonly<Record<string, number>>;
}

export class Counters {
  /** Datagrams read from the socket, whatever became of them. */
  received = 0;
  accepted = 0;
  receiveBuffer = { asked: 0, granted: 0 };
  /** The bound UDP port, once bound: the kernel counts drops by port. */
  private port: number | undefined;

  constructor(
    readonly rejections: Rejections,
    private readonly readDrops: (port: number) => number | null = udpDrops,
  ) {}

  bound(port: number, receiveBuffer: { asked: number; granted: number }): void {
    this.port = port;
    this.receiveBuffer = receiveBuffer;
  }

  /** Null before the socket is bound, or where the kernel does not say. */
  kernelDrops(): number | null {
    return this.port === undefined ? null : this.readDrops(this.port);
  }

  /** The counts as they stand (`rejected` is the live table: copy it to keep it). */
  datagrams(): DatagramCounts {
    return { received: this.received, accepted: this.accepted, rejected: this.rejections.total };
  }

  /** A problem with how the socket was set up that the operator should fix; null: none. */
  receiveBufferProblem(): string | null {
    const { asked, granted } = this.receiveBuffer;
    return granted < asked
      ? `asked for a ${asked}-byte UDP receive buffer, the kernel granted ${granted}: raise net.core.rmem_max (see systemd/90-hb.conf)`
      : null;
  }
}
