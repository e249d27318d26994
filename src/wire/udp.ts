// The small socket interface the monitor and sender need, and its node:dgram adapter. Tests
// substitute a fake; nothing else in hb touches node:dgram.

import { createSocket, type RemoteInfo, type Socket } from "node:dgram";
import { isIP } from "node:net";
import { HbError } from "../errors.js";
import type { HostPort } from "./address.js";

export type { RemoteInfo };

export interface DatagramSocket {
  bind(address: HostPort): Promise<HostPort>;
  onMessage(handler: (msg: Buffer, from: RemoteInfo) => void): void;
  send(msg: Uint8Array, to: HostPort): Promise<void>;
  /** Asks the kernel for a receive buffer of `bytes`; returns what it granted. */
  setReceiveBufferSize(bytes: number): number;
  close(): Promise<void>;
}

export function udpSocket(family: "udp4" | "udp6"): DatagramSocket {
  const socket: Socket = createSocket({ type: family, reuseAddr: false });
  // Until bind() resolves, errors reject it; afterwards a socket error is not fatal for a UDP
  // receiver (e.g. ICMP-induced errors on send), so it is swallowed here and surfaced by send().
  socket.on("error", () => {});
  return {
    bind: (address) =>
      new Promise((resolve, reject) => {
        const onError = (err: NodeJS.ErrnoException): void => {
          reject(
            new HbError(
              "HB_ERR_BIND",
              `cannot bind UDP ${address.host}:${address.port}: ${err.code ?? err.message}`,
              {
                cause: err,
              },
            ),
          );
        };
        socket.once("error", onError);
        socket.bind(address.port, address.host, () => {
          socket.off("error", onError);
          const bound = socket.address();
          resolve({ host: bound.address, port: bound.port });
        });
      }),
    onMessage: (handler) => void socket.on("message", handler),
    send: (msg, to) =>
      new Promise((resolve, reject) => {
        socket.send(msg, to.port, to.host, (err) => (err ? reject(err) : resolve()));
      }),
    setReceiveBufferSize: (bytes) => {
      try {
        socket.setRecvBufferSize(bytes);
      } catch {
        // The kernel refuses above net.core.rmem_max only for privileged callers; report what we got.
      }
      // Linux reports twice the requested size (it counts its bookkeeping overhead).
      return Math.floor(socket.getRecvBufferSize() / 2);
    },
    close: () => new Promise((resolve) => socket.close(() => resolve())),
  };
}

/**
 * node:dgram (libuv) reads at most this many datagrams from a socket per turn of the event loop:
 * whoever wants the socket emptied must let the loop turn until a turn reads fewer.
 */
export const READS_PER_TURN = 32;

/**
 * Rests between two slices of long work: turns the loop (`turn`, e.g. setImmediate) until a turn
 * reads fewer than READS_PER_TURN datagrams (`datagramsRead` counts them), so that the socket is
 * empty before the work goes on, whatever the fleet's rate. A bare turn would read only 32. A
 * socket that is never empty (a flood beyond what the monitor can take) holds the work back for
 * at most MAX_REST_MS per rest: it still gets done, a slice at a time.
 */
export const MAX_REST_MS = 100;

export async function untilSocketEmpty(
  turn: () => Promise<void>,
  datagramsRead: () => number,
  now: () => number = () => performance.now(),
): Promise<void> {
  const until = now() + MAX_REST_MS;
  for (let read = READS_PER_TURN; read >= READS_PER_TURN && now() < until;) {
    const before = datagramsRead();
    await turn();
    read = datagramsRead() - before;
  }
}

export function familyOf(host: string): "udp4" | "udp6" {
  return isIP(host) === 6 ? "udp6" : "udp4";
}
