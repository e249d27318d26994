// The detector's memory per tracked node, in process and exactly: V8's heap and the typed arrays
// after a full collection, before and after N nodes have each been heard twice. Unlike the RSS
// figure (memory.ts), it does not depend on a sender keeping up on a busy machine, so two builds
// or two detectors can be compared to the byte. Run: node --expose-gc --import tsx
// bench/detector-memory.ts N [fixed|phi]; prints one JSON line.
import { memoryUsage } from "node:process";
import { parseConfig } from "../src/config/parse.js";
import { Detector } from "../src/monitor/detector.js";
import { Kind, decode, emptyDatagram, encode } from "../src/wire/protocol.js";

const nodes = Number(process.argv[2] ?? 1_000_000);
const mode = process.argv[3] ?? "fixed";
const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error("run with node --expose-gc");

const detector = mode === "phi" ? ", detector: { kind: phi }" : "";
const parsed = parseConfig(`max_nodes: ${2 * nodes}\ndefaults: { interval: 1m${detector} }\n`, "bench.yaml");
if (!parsed.ok) throw new Error(parsed.problems.map((p) => p.message).join("; "));

const used = (): number => {
  gc();
  gc();
  const m = memoryUsage();
  return m.heapUsed + m.arrayBuffers;
};
const before = used();
const d = new Detector(parsed.config, 0, { emit: () => {}, toWall: (ms) => ms });
const dg = emptyDatagram();
const origin = { address: "127.0.0.1", port: 40_000 };
for (let sequence = 1; sequence <= 2; sequence++) {
  for (let i = 0; i < nodes; i++) {
    const msg = encode({ kind: Kind.BEAT, nodeId: `n${i}`, incarnation: 1, sequence });
    if (decode(msg, dg) !== null) throw new Error("bad datagram");
    d.observe(dg, sequence * 60_000 + i / 1000, origin);
  }
}
const after = used();
if (d.size !== nodes) throw new Error(`${d.size} nodes tracked, not ${nodes}`);
console.log(JSON.stringify({ nodes, mode, bytesPerNode: Math.round(((after - before) / nodes) * 10) / 10 }));
