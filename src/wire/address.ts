// "host:port" as written in configs and flags: IPv4, [IPv6], or (where allowed) a DNS name;
// parsed with a message that says what is wrong, and formatted back the same way.

import { isIP } from "node:net";

export interface HostPort {
  host: string;
  port: number;
}

const HOST_PORT = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/;
const HOSTNAME =
  /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

/** Returns the address, or a message saying what is wrong with it. */
export function parseHostPort(text: string, options: { allowNames: boolean }): HostPort | string {
  const match = HOST_PORT.exec(text);
  if (match === null) return `"${text}" is not host:port (IPv6 goes in brackets: [::1]:26722)`;
  const bracketed = match[1];
  const host = bracketed ?? match[2]!;
  const port = Number(match[3]);
  if (port > 65535) return `port ${port} is out of range (0-65535)`;
  const family = isIP(host);
  if (bracketed !== undefined && family !== 6) return `"${host}" is not an IPv6 address`;
  if (bracketed === undefined && family === 6) return `IPv6 addresses go in brackets: [${host}]:${port}`;
  if (family === 0 && !(options.allowNames && HOSTNAME.test(host))) {
    return options.allowNames ? `"${host}" is not a host name or address` : `"${host}" is not an IP address`;
  }
  return { host, port };
}

export function formatHostPort(address: HostPort): string {
  return isIP(address.host) === 6 ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`;
}
