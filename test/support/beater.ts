// Simulates many legitimate nodes in one process: signed heartbeats for ids n0..n{count-1},
// each every interval, until killed. Prints its incarnation first, so tests can craft replays.
// usage: node --import tsx beater.ts PORT KEYFILE COUNT INTERVAL_MS
import { createSecretKey } from "node:crypto";
import { createSocket } from "node:dgram";
import { readFileSync } from "node:fs";
import { Kind, encode } from "../../src/wire/protocol.js";

const [port, keyFile, count, intervalMs] = process.argv.slice(2) as [string, string, string, string];
const key = { id: "k1", secret: createSecretKey(Buffer.from(readFileSync(keyFile, "utf8").trim())) };
const incarnation = Date.now();
const socket = createSocket("udp4");
let sequence = 0;
process.stdout.write(`${JSON.stringify({ incarnation })}\n`);
setInterval(() => {
  sequence++;
  for (let i = 0; i < Number(count); i++) {
    socket.send(
      encode({ kind: Kind.BEAT, nodeId: `n${i}`, incarnation, sequence }, key),
      Number(port),
      "127.0.0.1",
    );
  }
}, Number(intervalMs));
