// The monitor's own HMAC-SHA-256 (src/wire/hmac.ts): RFC 4231's test vectors, node:crypto's
// answer for random keys and every message length a datagram can have, and a tag compare that
// reads every byte of the tag whichever differs.
import { createHmac } from "node:crypto";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { hmac, hmacKey, verifyHmac } from "../../src/wire/hmac.js";
import { MAX_DATAGRAM_BYTES } from "../../src/wire/protocol.js";

const hex = (text: string): Uint8Array => Buffer.from(text, "hex");
const ascii = (text: string): Uint8Array => Buffer.from(text, "latin1");
const bytes = (length: number, value: number): Uint8Array => new Uint8Array(length).fill(value);

/** RFC 4231, section 4 (test case 5 is truncated to 128 bits there). */
const RFC_4231 = [
  {
    key: bytes(20, 0x0b),
    data: ascii("Hi There"),
    mac: "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
  },
  {
    key: ascii("Jefe"),
    data: ascii("what do ya want for nothing?"),
    mac: "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
  },
  {
    key: bytes(20, 0xaa),
    data: bytes(50, 0xdd),
    mac: "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe",
  },
  {
    key: hex("0102030405060708090a0b0c0d0e0f10111213141516171819"),
    data: bytes(50, 0xcd),
    mac: "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b",
  },
  { key: bytes(20, 0x0c), data: ascii("Test With Truncation"), mac: "a3b6167473100ee06e0c796c2955552b" },
  {
    key: bytes(131, 0xaa),
    data: ascii("Test Using Larger Than Block-Size Key - Hash Key First"),
    mac: "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
  },
  {
    key: bytes(131, 0xaa),
    data: ascii(
      "This is a test using a larger than block-size key and a larger than block-size data. The key needs to be hashed before being used by the HMAC algorithm.",
    ),
    mac: "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2",
  },
];

const reference = (key: Uint8Array, data: Uint8Array): Buffer =>
  createHmac("sha256", key).update(data).digest();

describe("HMAC-SHA-256", () => {
  RFC_4231.forEach((v, i) => {
    it(`gives RFC 4231 test case ${i + 1}`, () => {
      const key = hmacKey(v.key);
      expect(Buffer.from(hmac(key, v.data)).toString("hex").slice(0, v.mac.length)).toBe(v.mac);
      if (v.mac.length === 64) expect(verifyHmac(key, v.data, 0, v.data.length, hex(v.mac), 0)).toBe(true);
    });
  });

  it("agrees with node:crypto for keys of 0 to 200 bytes and messages of every length up to a datagram's", () => {
    for (let length = 0; length <= MAX_DATAGRAM_BYTES; length++) {
      fc.assert(
        fc.property(
          fc.uint8Array({ maxLength: 200 }),
          fc.uint8Array({ minLength: length, maxLength: length }),
          (key, data) => {
            const expected = reference(key, data);
            const prepared = hmacKey(key);
            expect(Buffer.from(hmac(prepared, data))).toEqual(expected);
            expect(verifyHmac(prepared, data, 0, data.length, expected, 0)).toBe(true);
          },
        ),
        { numRuns: 4 },
      );
    }
  });

  it("covers keys at and around the block size (64 bytes), hashed first when longer", () => {
    for (const length of [0, 1, 31, 32, 55, 56, 63, 64, 65, 127, 128, 129, 200]) {
      const key = bytes(length, 0x5a);
      const data = ascii("hb");
      expect(Buffer.from(hmac(hmacKey(key), data))).toEqual(reference(key, data));
    }
  });

  it("checks the bytes it is given within a larger buffer, against a tag at any offset", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 16, maxLength: 64 }),
        fc.uint8Array({ maxLength: 600 }),
        fc.nat(),
        fc.nat(),
        fc.nat({ max: 40 }),
        (key, buf, a, b, tagOffset) => {
          const start = a % (buf.length + 1);
          const end = start + (b % (buf.length - start + 1));
          const tag = new Uint8Array(tagOffset + 32 + 7);
          tag.set(reference(key, buf.subarray(start, end)), tagOffset);
          expect(verifyHmac(hmacKey(key), buf, start, end, tag, tagOffset)).toBe(true);
        },
      ),
    );
  });

  it("refuses a tag with any one bit flipped, and a message with any one bit flipped", () => {
    const key = hmacKey(ascii("0123456789abcdef0123456789abcdef"));
    const data = ascii("a signed datagram, 40 bytes of it......");
    const tag = hmac(key, data);
    for (let bit = 0; bit < 256; bit++) {
      const bad = Uint8Array.from(tag);
      bad[bit >> 3]! ^= 1 << (bit & 7);
      expect(verifyHmac(key, data, 0, data.length, bad, 0)).toBe(false);
    }
    for (let bit = 0; bit < data.length * 8; bit++) {
      const bad = Uint8Array.from(data);
      bad[bit >> 3]! ^= 1 << (bit & 7);
      expect(verifyHmac(key, bad, 0, bad.length, tag, 0)).toBe(false);
    }
  });

  it("refuses a tag that does not fit in its buffer, and a range outside the message", () => {
    const key = hmacKey(ascii("k"));
    const data = ascii("hb");
    const tag = hmac(key, data);
    expect(verifyHmac(key, data, 0, data.length, tag.subarray(0, 31), 0)).toBe(false);
    expect(verifyHmac(key, data, 0, data.length, tag, 1)).toBe(false);
    expect(verifyHmac(key, data, 0, 3, tag, 0)).toBe(false);
    expect(verifyHmac(key, data, 2, 1, tag, 0)).toBe(false);
  });

  it("reads every byte of the tag, whichever byte differs first (no early exit)", () => {
    const key = hmacKey(ascii("0123456789abcdef"));
    const data = ascii("hb datagram");
    const good = hmac(key, data);
    for (const differs of [0, 1, 15, 31, -1]) {
      const tag = Uint8Array.from(good);
      if (differs >= 0) tag[differs]! ^= 0xff;
      const read = new Set<number>();
      const watched = new Proxy(tag, {
        get(target, property) {
          if (typeof property === "string" && /^\d+$/.test(property)) read.add(Number(property));
          const value: unknown = Reflect.get(target, property, target);
          return typeof value === "function" ? (value as () => unknown).bind(target) : value;
        },
      });
      expect(verifyHmac(key, data, 0, data.length, watched, 0)).toBe(differs < 0);
      expect([...read].sort((x, y) => x - y)).toEqual(Array.from({ length: 32 }, (_, i) => i));
    }
  });

  it("makes a key's states from its bytes, so that another key gives other tags", () => {
    const data = ascii("hb");
    const tag = hmac(hmacKey(ascii("key one, 16 bytes")), data);
    expect(verifyHmac(hmacKey(ascii("key two, 16 bytes")), data, 0, data.length, tag, 0)).toBe(false);
    expect(verifyHmac(hmacKey(ascii("key one, 16 bytes")), data, 0, data.length, tag, 0)).toBe(true);
  });
});
