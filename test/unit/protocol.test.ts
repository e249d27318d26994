import { createSecretKey } from "node:crypto";
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import {
  Kind,
  MAX_DATAGRAM_BYTES,
  decode,
  emptyDatagram,
  encode,
  verifyTag,
  type DecodeReason,
} from "../../src/wire/protocol.js";

const doc = readFileSync(new URL("../../docs/PROTOCOL.md", import.meta.url), "utf8");
const KEY = { id: "k1", secret: createSecretKey(Buffer.from("hb-example-key-0123456789abcdef")) };

interface Vector {
  name: string;
  fields?: Record<string, string>;
  result?: string;
  hex: Buffer;
}

function vectors(): Vector[] {
  return [...doc.matchAll(/```vector\n([\s\S]*?)```/g)].map((m) => {
    const text = m[1]!;
    const line = (name: string) => new RegExp(`^${name}: (.*)$`, "m").exec(text)?.[1];
    const hexText = /^hex: ([\s\S]*)$/m.exec(text)![1]!;
    const fields = line("fields");
    const result = line("result");
    return {
      name: line("name")!,
      ...(fields === undefined
        ? {}
        : { fields: Object.fromEntries(fields.split(" ").map((kv) => kv.split("=") as [string, string])) }),
      ...(result === undefined ? {} : { result }),
      hex: Buffer.from(hexText.replace(/\s+/g, ""), "hex"),
    };
  });
}

describe("docs/PROTOCOL.md test vectors", () => {
  const all = vectors();

  it("has at least a beat, a leave, an authenticated beat and vectors that must be rejected", () => {
    expect(all.map((v) => v.name)).toEqual(expect.arrayContaining(["beat", "leave", "authenticated beat"]));
    expect(all.filter((v) => v.result !== undefined).length).toBeGreaterThanOrEqual(2);
  });

  for (const v of all) {
    it(`${v.name}: decodes to the documented fields and encodes back to the same bytes`, () => {
      const dg = emptyDatagram();
      const reason = decode(v.hex, dg);
      if (v.result === "bad_tag") {
        expect(reason).toBeNull();
        expect(verifyTag(v.hex, dg.tagOffset, KEY.secret)).toBe(false);
        return;
      }
      if (v.result !== undefined) {
        expect(reason).toBe(v.result);
        return;
      }
      expect(reason).toBeNull();
      const f = v.fields!;
      expect(dg).toMatchObject({
        kind: f.kind === "leave" ? Kind.LEAVE : Kind.BEAT,
        nodeId: f.node,
        incarnation: Number(f.incarnation),
        sequence: Number(f.sequence),
        keyId: f.key ?? "",
      });
      if (f.key !== undefined) expect(verifyTag(v.hex, dg.tagOffset, KEY.secret)).toBe(true);
      const encoded = encode(
        { kind: dg.kind, nodeId: dg.nodeId, incarnation: dg.incarnation, sequence: dg.sequence },
        f.key === undefined ? undefined : KEY,
      );
      expect(encoded.toString("hex")).toBe(v.hex.toString("hex"));
    });
  }
});

describe("decode", () => {
  const good = encode({ kind: Kind.BEAT, nodeId: "node-7", incarnation: 5, sequence: 9 });
  const reject = (bytes: Buffer): DecodeReason | null => decode(bytes, emptyDatagram());

  it("round-trips the largest ids and numbers the format allows", () => {
    const big = encode(
      { kind: Kind.LEAVE, nodeId: "n".repeat(64), incarnation: Number.MAX_SAFE_INTEGER, sequence: 2 ** 40 },
      { id: "k".repeat(32), secret: KEY.secret },
    );
    const dg = emptyDatagram();
    expect(decode(big, dg)).toBeNull();
    expect(dg).toMatchObject({
      nodeId: "n".repeat(64),
      incarnation: Number.MAX_SAFE_INTEGER,
      sequence: 2 ** 40,
    });
    expect(big.length).toBe(151);
  });

  it.each<[string, (b: Buffer) => Buffer, DecodeReason]>([
    ["empty", () => Buffer.alloc(0), "truncated"],
    ["truncated header", (b) => b.subarray(0, 10), "truncated"],
    ["truncated node id", (b) => b.subarray(0, b.length - 1), "truncated"],
    ["oversized", () => Buffer.alloc(MAX_DATAGRAM_BYTES + 1), "oversized"],
    ["bad magic", (b) => patch(b, 0, 0x00), "bad_magic"],
    ["wrong version", (b) => patch(b, 2, 9), "bad_version"],
    ["unknown kind", (b) => patch(b, 3, 7), "bad_kind"],
    ["unknown flag", (b) => patch(b, 4, 0x80), "bad_flags"],
    ["zero-length node id", (b) => patch(b, 21, 0), "bad_node_id"],
    ["node id with a space", (b) => patch(b, 24, 0x20), "bad_node_id"],
    ["trailing byte", (b) => Buffer.concat([b, Buffer.from([0])]), "malformed"],
    ["incarnation above 2^53", (b) => patch(b, 5, 0xff), "malformed"],
    ["flag set but no key id", (b) => patch(b, 4, 1), "truncated"],
  ])("refuses %s as %s", (_name, mutate, reason) => {
    expect(reject(mutate(Buffer.from(good)))).toBe(reason);
  });

  it("refuses to encode ids the decoder would refuse", () => {
    expect(() => encode({ kind: Kind.BEAT, nodeId: "a b", incarnation: 1, sequence: 1 })).toThrow(RangeError);
    expect(() => encode({ kind: Kind.BEAT, nodeId: "", incarnation: 1, sequence: 1 })).toThrow(RangeError);
  });
});

function patch(buf: Buffer, offset: number, value: number): Buffer {
  buf[offset] = value;
  return buf;
}
