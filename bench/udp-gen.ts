// UDP load generator: `nodes` simulated nodes, round-robin at `rate` datagrams per second in
// total (so each node sends every nodes/rate seconds), for `seconds`. Valid hb datagrams with
// increasing sequence numbers, signed when a key file is given. After `stopAfter` seconds the
// first `stopCount` nodes of a shuffled order fall silent (for detection measurements). A
// generator that fell behind catches up in bursts of up to 20 000 datagrams, or, with `maxBurst`,
// sends at most that many at once and gives up on the rest (a test on a busy machine: a late
// generator then sends slower, never in a flood that could fill any socket buffer).
// Prints {"ready":true} once running and {"sent":N,...} at the end.
import { createSecretKey } from "node:crypto";
import { createSocket } from "node:dgram";
import { readFileSync } from "node:fs";
import { Kind, encode, type SigningKey } from "../src/wire/protocol.js";

const opts = JSON.parse(process.argv[2]!) as {
  port: number;
  nodes: number;
  rate: number;
  seconds: number;
  keyFile?: string;
  prefix?: string;
  stopAfter?: number;
  stopCount?: number;
  maxBurst?: number;
};
const key: SigningKey | undefined =
  opts.keyFile === undefined
    ? undefined
    : { id: "k1", secret: createSecretKey(Buffer.from(readFileSync(opts.keyFile, "utf8").trim())) };
const prefix = opts.prefix ?? "n";
const incarnation = Date.now();
const ids = Array.from({ length: opts.nodes }, (_, i) => `${prefix}${i}`);
// Unsigned datagrams are prepared once per node and only their sequence is patched; a node's
// buffer is reused only after every other node has sent, long after its send completed.
const templates =
  key === undefined ? ids.map((nodeId) => encode({ kind: Kind.BEAT, nodeId, incarnation, sequence: 1 })) : [];
const stopped = new Uint8Array(opts.nodes);
const socket = createSocket("udp4");
socket.on("error", () => {});

socket.connect(opts.port, "127.0.0.1", () => {
  socket.setSendBufferSize(4 << 20);
  let sent = 0;
  let sequence = 1;
  let next = 0;
  const t0 = performance.now();
  const endAt = t0 + opts.seconds * 1000;
  let stopDone = opts.stopAfter === undefined;
  let forgiven = 0; // datagrams a late generator gave up on, with `maxBurst`
  process.stdout.write(`${JSON.stringify({ ready: true, incarnation })}\n`);
  const tick = (): void => {
    const now = performance.now();
    if (!stopDone && now - t0 >= opts.stopAfter! * 1000) {
      stopDone = true;
      const order = ids.map((_, i) => i).sort(() => Math.random() - 0.5);
      const chosen = order.slice(0, opts.stopCount ?? 0);
      for (const i of chosen) stopped[i] = 1;
      process.stdout.write(`${JSON.stringify({ stopped: chosen.map((i) => ids[i]) })}\n`);
    }
    if (now >= endAt) {
      process.stdout.write(`${JSON.stringify({ sent, seconds: (now - t0) / 1000 })}\n`);
      socket.close();
      return;
    }
    let due = Math.floor(((now - t0) / 1000) * opts.rate) - forgiven;
    if (opts.maxBurst !== undefined && due - sent > opts.maxBurst) {
      forgiven += due - sent - opts.maxBurst;
      due = sent + opts.maxBurst;
    }
    due = Math.min(due, sent + 20_000);
    while (sent < due) {
      const i = next;
      if (++next === opts.nodes) {
        next = 0;
        sequence++;
      }
      sent++;
      if (stopped[i] === 1) continue;
      if (key === undefined) {
        const buf = templates[i]!;
        buf.writeUInt32BE(sequence, 17);
        socket.send(buf);
      } else {
        socket.send(encode({ kind: Kind.BEAT, nodeId: ids[i]!, incarnation, sequence }, key));
      }
    }
    setImmediate(tick);
  };
  tick();
});
