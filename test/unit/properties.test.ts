// Property-based tests of the wire format: whatever bytes arrive, decoding ends in a datagram
// or a stated reason, never an exception; and no single flipped bit gets a forged datagram in.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  DECODE_REASONS,
  HEADER_BYTES,
  ID_PATTERN,
  Kind,
  MAX_DATAGRAM_BYTES,
  MAX_ID_BYTES,
  decode,
  emptyDatagram,
  nodeIdOf,
  encode,
  isId,
} from "../../src/wire/protocol.js";
import { Harness, TEST_KEY } from "../support/monitor-harness.js";

const ID_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-";
const alnum = fc.constantFrom(...ID_CHARS.slice(0, 62));
const idChar = fc.constantFrom(...ID_CHARS);
const id = (max: number) =>
  fc.tuple(alnum, fc.array(idChar, { maxLength: max - 1 })).map(([first, rest]) => first + rest.join(""));

const heartbeat = fc.record({
  kind: fc.constantFrom(Kind.BEAT, Kind.LEAVE),
  nodeId: id(64),
  incarnation: fc.nat({ max: Number.MAX_SAFE_INTEGER }),
  sequence: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
});

function outcome(bytes: Buffer): string {
  const dg = emptyDatagram();
  const reason = decode(bytes, dg);
  return reason ?? "ok";
}

describe("decode (property-based)", () => {
  it("turns any bytes into a datagram or a known reason, never an exception", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: MAX_DATAGRAM_BYTES + 100 }), (bytes) => {
        expect(["ok", ...DECODE_REASONS]).toContain(outcome(Buffer.from(bytes)));
      }),
      { numRuns: 20_000 },
    );
  });

  it("turns mutated, truncated and extended valid datagrams into a datagram or a known reason", () => {
    const mutation = fc.record({
      at: fc.nat(),
      bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }),
      cut: fc.nat(),
      extra: fc.uint8Array({ maxLength: 20 }),
    });
    fc.assert(
      fc.property(heartbeat, fc.boolean(), mutation, (hb, signed, m) => {
        const good = encode(hb, signed ? TEST_KEY : undefined);
        const mutated = Buffer.from(good);
        Buffer.from(m.bytes).copy(mutated, m.at % mutated.length);
        for (const bytes of [
          mutated,
          good.subarray(0, m.cut % good.length),
          Buffer.concat([good, m.extra]),
        ]) {
          const result = outcome(bytes);
          expect(["ok", ...DECODE_REASONS]).toContain(result);
          if (result === "ok") {
            const dg = emptyDatagram();
            decode(bytes, dg);
            expect(nodeIdOf(dg)).toMatch(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/);
            expect(Number.isSafeInteger(dg.sequence) && Number.isSafeInteger(dg.incarnation)).toBe(true);
          }
        }
      }),
      { numRuns: 5000 },
    );
  });

  it("round-trips every valid heartbeat, signed or not", () => {
    fc.assert(
      fc.property(heartbeat, fc.boolean(), (hb, signed) => {
        const bytes = encode(hb, signed ? TEST_KEY : undefined);
        const dg = emptyDatagram();
        expect(decode(bytes, dg)).toBeNull();
        const { nodeId, ...fields } = hb;
        expect(nodeIdOf(dg)).toBe(nodeId);
        expect(dg).toMatchObject({ ...fields, keyId: signed ? TEST_KEY.id : "" });
        expect(bytes.length).toBeLessThanOrEqual(MAX_DATAGRAM_BYTES);
      }),
      { numRuns: 5000 },
    );
  });
});

describe("authenticated datagrams (property-based)", () => {
  it("are refused after any single-bit flip, anywhere, while the original is accepted", async () => {
    await fc.assert(
      fc.asyncProperty(heartbeat, async (hb) => {
        const h = await Harness.start(
          `auth: required\nkeys: { k1: /x }`,
          new Map([[TEST_KEY.id, TEST_KEY.secret]]),
        );
        // Incarnations are start times: one from the future is refused whatever its tag.
        const incarnation = hb.incarnation % (h.clock.wallMs() + 1);
        const good = encode({ ...hb, incarnation, kind: Kind.BEAT }, TEST_KEY);
        for (let bit = 0; bit < good.length * 8; bit++) {
          const flipped = Buffer.from(good);
          flipped[bit >> 3] = flipped[bit >> 3]! ^ (1 << (bit & 7));
          h.socket.deliver(flipped);
        }
        const { datagrams } = h.monitor.status();
        expect(datagrams.accepted).toBe(0);
        expect(datagrams.received).toBe(good.length * 8);
        expect(h.events.filter((e) => e.event.startsWith("node."))).toEqual([]);
        h.socket.deliver(good);
        expect(h.monitor.status().datagrams.accepted).toBe(1);
      }),
      { numRuns: 200 },
    );
  });
});

describe("the id check", () => {
  it("takes as an id exactly the text that ID_PATTERN and the length allow, and the decoder takes its bytes alike", () => {
    const idChars = fc.constantFrom(..."aZ09._-é ".split(""));
    fc.assert(
      fc.property(fc.string({ unit: idChars, minLength: 0, maxLength: MAX_ID_BYTES + 2 }), (text) => {
        const expected = text.length <= MAX_ID_BYTES && ID_PATTERN.test(text);
        expect(isId(text)).toBe(expected);
        // The same id as the decoder reads it: a datagram with it is refused as bad_node_id or not.
        const bytes = Buffer.from(text, "latin1");
        if (bytes.length === 0 || bytes.length > MAX_ID_BYTES) return;
        const good = encode({ kind: Kind.BEAT, nodeId: "a", incarnation: 1, sequence: 1 });
        const buf = Buffer.concat([good.subarray(0, HEADER_BYTES), Buffer.from([bytes.length]), bytes]);
        expect(decode(buf, emptyDatagram()) === "bad_node_id").toBe(!expected);
      }),
      { numRuns: 500 },
    );
  });
});
