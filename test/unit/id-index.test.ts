// The node id index: HalfSipHash-2-4 as its reference implementation computes it, and an
// open-addressing table that always agrees with a Map through inserts, removals and growth,
// looked up by string and by the bytes of a datagram alike.
import { describe, expect, it } from "vitest";
import { IdIndex, halfSipHash } from "../../src/monitor/id-index.js";

/** The reference implementation's first vectors (key 00..07, message 00..i-1, 32-bit tag). */
const VECTORS = [
  [0xa9, 0x35, 0x9f, 0x5b],
  [0x27, 0x47, 0x5a, 0xb8],
  [0xfa, 0x62, 0xa6, 0x03],
  [0x8a, 0xfe, 0xe7, 0x04],
  [0x2a, 0x6e, 0x46, 0x89],
  [0xc5, 0xfa, 0xb6, 0x69],
  [0x58, 0x63, 0xfc, 0x23],
  [0x8b, 0xcf, 0x63, 0xc5],
];

describe("halfSipHash", () => {
  it("gives the reference implementation's HalfSipHash-2-4 vectors", () => {
    const key = Buffer.from([0, 1, 2, 3, 4, 5, 6, 7]);
    const k0 = key.readInt32LE(0);
    const k1 = key.readInt32LE(4);
    const message = Buffer.from(VECTORS.map((_, i) => i));
    VECTORS.forEach((expected, i) => {
      const tag = Buffer.alloc(4);
      tag.writeInt32LE(halfSipHash(k0, k1, message, 0, i));
      expect([...tag], `vector ${i}`).toEqual(expected);
    });
  });

  it("hashes the same bytes alike wherever they sit in a buffer", () => {
    const id = Buffer.from("node-17.example");
    const framed = Buffer.concat([Buffer.from("xx"), id, Buffer.from("yyy")]);
    expect(halfSipHash(1, 2, framed, 2, id.length)).toBe(halfSipHash(1, 2, id, 0, id.length));
    expect(halfSipHash(1, 2, id, 0, id.length)).not.toBe(halfSipHash(1, 3, id, 0, id.length));
  });
});

/** A deterministic stream of pseudo-random integers. */
function* randoms(seed: number): Generator<number> {
  let x = seed;
  for (;;) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    yield x >>> 0;
  }
}

describe("IdIndex", () => {
  it("agrees with a Map through 20 000 random inserts and removals, by string and by bytes", () => {
    const ids: (string | undefined)[] = [];
    const index = new IdIndex(ids, Buffer.from("fixedkey"));
    const model = new Map<string, number>();
    const free: number[] = [];
    const rnd = randoms(7);
    for (let step = 0; step < 20_000; step++) {
      const id = `n${rnd.next().value! % 3000}`;
      const slot = model.get(id);
      if (slot === undefined) {
        const fresh = free.pop() ?? ids.length;
        ids[fresh] = id;
        index.insert(fresh);
        model.set(id, fresh);
      } else if (rnd.next().value! % 2 === 0) {
        index.remove(slot);
        ids[slot] = undefined;
        model.delete(id);
        free.push(slot);
      }
      if (step % 97 === 0) {
        for (let k = 0; k < 3000; k += 7) {
          const probe = `n${k}`;
          expect(index.get(probe)).toBe(model.get(probe));
          const bytes = Buffer.from(`..${probe}`);
          expect(index.getBytes(bytes, 2, probe.length)).toBe(model.get(probe) ?? -1);
        }
        expect(index.size).toBe(model.size);
      }
    }
  });

  it("stays exact when every id lands in the same place (removals shift the rest back)", () => {
    const ids: (string | undefined)[] = [];
    const index = new IdIndex(ids, Buffer.alloc(8));
    // Force collisions: a table whose hash is known, and ids chosen to share a home position.
    const sameHome: string[] = [];
    const home = index.hashOfString("a0") & 1023;
    for (let k = 0; sameHome.length < 40; k++) {
      const id = `a${k}`;
      if ((index.hashOfString(id) & 1023) === home) sameHome.push(id);
    }
    sameHome.forEach((id, slot) => {
      ids[slot] = id;
      index.insert(slot);
    });
    for (let slot = 0; slot < sameHome.length; slot += 3) {
      index.remove(slot);
      ids[slot] = undefined;
    }
    sameHome.forEach((id, slot) => expect(index.get(id)).toBe(slot % 3 === 0 ? undefined : slot));
  });

  it("makes room ahead: reserved, it takes 100 000 ids without growing again", () => {
    const ids: (string | undefined)[] = [];
    const index = new IdIndex(ids);
    index.reserve(100_000);
    const before = (index as unknown as { entries: Int32Array }).entries;
    for (let slot = 0; slot < 100_000; slot++) {
      ids[slot] = `node-${slot}`;
      index.insert(slot);
    }
    expect((index as unknown as { entries: Int32Array }).entries).toBe(before);
    expect(index.get("node-99999")).toBe(99_999);
    expect(index.get("node-100000")).toBeUndefined();
  });
});
