// The kernel's count of datagrams it dropped for a UDP socket (receive buffer full), read from
// /proc/net/udp and /proc/net/udp6 by local port: the "drops" column, last on each line.

import { readFileSync } from "node:fs";

/** Drops for the socket bound to `port`, or null where /proc does not say (not Linux, hidden). */
export function udpDrops(port: number, procNet = "/proc/net"): number | null {
  const portHex = `:${port.toString(16).toUpperCase().padStart(4, "0")}`;
  let found: number | null = null;
  for (const file of ["udp", "udp6"]) {
    let text: string;
    try {
      text = readFileSync(`${procNet}/${file}`, "utf8");
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      const fields = line.trim().split(/\s+/);
      if (fields.length < 13 || !fields[1]!.endsWith(portHex)) continue;
      found = (found ?? 0) + Number(fields[fields.length - 1]);
    }
  }
  return found;
}
