// Loopback UDP ports for processes whose addresses must be known in advance (a cluster's config).
import { createSocket } from "node:dgram";

/** Loopback UDP ports that were free when asked (each bound at once, so they differ). */
export async function freeUdpPorts(count: number): Promise<number[]> {
  const sockets = Array.from({ length: count }, () => createSocket("udp4"));
  const ports = await Promise.all(
    sockets.map(
      (s) => new Promise<number>((resolve) => s.bind(0, "127.0.0.1", () => resolve(s.address().port))),
    ),
  );
  await Promise.all(sockets.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  return ports;
}
