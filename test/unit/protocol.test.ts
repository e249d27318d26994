import { createSecretKey } from "node:crypto";
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { REJECT_REASONS } from "../../src/monitor/admit.js";
import {
  Kind,
  MAX_DATAGRAM_BYTES,
  MAX_SYNC_PAYLOAD_BYTES,
  decode,
  emptyDatagram,
  nodeIdOf,
  encode,
  syncPayloadCapacity,
  tagKey,
  verifyTag,
  type DecodeReason,
} from "../../src/wire/protocol.js";

const doc = readFileSync(new URL("../../docs/PROTOCOL.md", import.meta.url), "utf8");
const keyLine =
  /The key for the authenticated vectors is the (\d+) ASCII bytes `([^`]+)`\s+with key id `([^`]+)`/.exec(
    doc,
  )!;
const KEY = { id: keyLine[3]!, secret: createSecretKey(Buffer.from(keyLine[2]!)) };
const TAG_KEY = tagKey(KEY.secret);

/** The rows of the markdown table that follows `heading`, as cells without their backquotes. */
function table(heading: string): string[][] {
  const start = doc.indexOf(`${heading}\n`);
  if (start < 0) throw new Error(`docs/PROTOCOL.md has no "${heading}"`);
  const rows: string[][] = [];
  let seen = false;
  for (const line of doc.slice(start).split("\n").slice(1)) {
    if (!line.startsWith("|")) {
      if (seen) break;
      continue;
    }
    seen = true;
    rows.push(
      line
        .slice(1, -1)
        .split("|")
        .map((c) => c.trim().replace(/^`|`$/g, "")),
    );
  }
  return rows.slice(2);
}

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
    expect(all.filter((v) => v.fields?.kind === "sync")).toHaveLength(1);
    expect(all.filter((v) => v.result !== undefined).length).toBeGreaterThanOrEqual(2);
  });

  it("states the example key's length truly", () => {
    expect(Buffer.byteLength(keyLine[2]!)).toBe(Number(keyLine[1]));
  });

  it("lists exactly the monitor's rejection reasons in its refusal table", () => {
    const reasons = table("## What the monitor refuses").map((r) => r[0]);
    expect([...reasons].sort()).toEqual([...REJECT_REASONS].sort());
  });

  it("names, for a reason refused at more than one step of the order of checks, each of those steps in the refusal table", () => {
    const steps = new Map<string, string[]>();
    for (const [step, , , reason] of table("### Order of checks"))
      if (reason !== undefined && reason !== "—") steps.set(reason, [...(steps.get(reason) ?? []), step!]);
    const causes = new Map(table("## What the monitor refuses").map((r) => [r[0]!, r[1]!]));
    expect(steps.get("unauthenticated")).toEqual(["18", "24"]);
    for (const [reason, at] of steps) {
      if (at.length < 2) continue;
      for (const step of at)
        expect(causes.get(reason), `${reason}, step ${step}`).toMatch(new RegExp(`\\b${step}\\b`));
    }
  });

  for (const v of all) {
    const claim =
      v.result === undefined
        ? "decodes to the documented fields and encodes back to the same bytes"
        : `is refused as ${v.result}`;
    it(`${v.name}: ${claim}`, () => {
      const dg = emptyDatagram();
      const reason = decode(v.hex, dg);
      if (v.result === "bad_tag") {
        expect(reason).toBeNull();
        expect(verifyTag(v.hex, dg.tagOffset, TAG_KEY)).toBe(false);
        return;
      }
      if (v.result !== undefined) {
        expect(reason).toBe(v.result);
        return;
      }
      expect(reason).toBeNull();
      const f = v.fields!;
      expect(nodeIdOf(dg)).toBe(f.node);
      const kinds: Record<string, Kind> = { beat: Kind.BEAT, leave: Kind.LEAVE, sync: Kind.SYNC };
      const payload = dg.buf.subarray(dg.payloadOffset, dg.payloadOffset + dg.payloadLength);
      expect(payload.toString()).toBe(f.payload ?? "");
      expect(dg).toMatchObject({
        kind: kinds[f.kind!],
        incarnation: Number(f.incarnation),
        sequence: Number(f.sequence),
        keyId: f.key ?? "",
      });
      if (f.key !== undefined) expect(verifyTag(v.hex, dg.tagOffset, TAG_KEY)).toBe(true);
      expect(dg.unnumbered).toBe(f.unnumbered === "yes");
      const encoded = encode(
        {
          kind: dg.kind,
          nodeId: nodeIdOf(dg),
          incarnation: dg.incarnation,
          sequence: dg.sequence,
          unnumbered: dg.unnumbered,
          ...(dg.kind === Kind.SYNC ? { payload } : {}),
        },
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
    expect(nodeIdOf(dg)).toBe("n".repeat(64));
    expect(dg).toMatchObject({
      incarnation: Number.MAX_SAFE_INTEGER,
      sequence: 2 ** 40,
    });
    expect(big.length).toBe(151);
  });

  it.each<[string, DecodeReason, (b: Buffer) => Buffer]>([
    ["empty", "truncated", () => Buffer.alloc(0)],
    ["truncated header", "truncated", (b) => b.subarray(0, 10)],
    ["truncated node id", "truncated", (b) => b.subarray(0, b.length - 1)],
    ["oversized", "oversized", () => Buffer.alloc(MAX_DATAGRAM_BYTES + 1)],
    ["bad magic", "bad_magic", (b) => patch(b, 0, 0x00)],
    ["wrong version", "bad_version", (b) => patch(b, 2, 9)],
    ["unknown kind", "bad_kind", (b) => patch(b, 3, 7)],
    ["unknown flag", "bad_flags", (b) => patch(b, 4, 0x80)],
    ["zero-length node id", "bad_node_id", (b) => patch(b, 21, 0)],
    ["node id with a space", "bad_node_id", (b) => patch(b, 24, 0x20)],
    ["trailing byte", "malformed", (b) => Buffer.concat([b, Buffer.from([0])])],
    ["incarnation above 2^53", "malformed", (b) => patch(b, 5, 0xff)],
    ["sequence above 2^53", "malformed", (b) => patch(b, 13, 0xff)],
    ["sequence 0", "malformed", (b) => patch(b, 20, 0)],
    ["flag set but no key id", "truncated", (b) => patch(b, 4, 1)],
    ["node id starting with a dash", "bad_node_id", (b) => patch(b, 22, 0x2d)],
    ["a short datagram with a wrong magic", "bad_magic", (b) => patch(b.subarray(0, 6), 0, 0x48)],
    ["a short datagram with a wrong version", "bad_version", (b) => patch(b.subarray(0, 3), 2, 2)],
    ["22 bytes with node id length 0", "bad_node_id", (b) => patch(b.subarray(0, 22), 21, 0)],
  ])("refuses %s as %s", (_name, reason, mutate) => {
    expect(reject(mutate(Buffer.from(good)))).toBe(reason);
  });

  it("refuses a key id that does not start with a letter or digit", () => {
    const signed = encode({ kind: Kind.BEAT, nodeId: "node-7", incarnation: 5, sequence: 9 }, KEY);
    expect(reject(patch(Buffer.from(signed), 29, 0x2e))).toBe("bad_key_id");
    expect(reject(patch(Buffer.from(signed), 30, 0x2e))).toBeNull();
  });

  it("marks a datagram unnumbered only when flags bit 1 is set", () => {
    const dg = emptyDatagram();
    expect(
      decode(encode({ kind: Kind.BEAT, nodeId: "a", incarnation: 0, sequence: 9, unnumbered: true }), dg),
    ).toBeNull();
    expect(dg.unnumbered).toBe(true);
    expect(decode(good, dg)).toBeNull();
    expect(dg.unnumbered).toBe(false);
  });

  it("refuses to encode ids and numbers the decoder would refuse", () => {
    expect(() => encode({ kind: Kind.BEAT, nodeId: "a b", incarnation: 1, sequence: 1 })).toThrow(RangeError);
    expect(() => encode({ kind: Kind.BEAT, nodeId: "", incarnation: 1, sequence: 1 })).toThrow(RangeError);
    expect(() => encode({ kind: Kind.BEAT, nodeId: "a", incarnation: 1, sequence: 0 })).toThrow(RangeError);
  });
});

describe("the order of checks in docs/PROTOCOL.md", () => {
  // An authenticated datagram: node id "node-7" (L = 6), key id "k1" (K = 2), 63 bytes.
  const good = encode({ kind: Kind.BEAT, nodeId: "node-7", incarnation: 5, sequence: 9 }, KEY);
  const documented = new Map(table("### Order of checks").map((r) => [Number(r[0]), r[3]!]));
  /** Where each step's field lies in `good`, [start, end). */
  const fields = new Map<number, [number, number]>([
    [2, [0, 2]],
    [3, [2, 3]],
    [4, [3, 4]],
    [5, [4, 5]],
    [7, [5, 13]],
    [8, [13, 21]],
    [9, [21, 22]],
    [10, [22, 28]],
    [13, [28, 29]],
    [14, [29, 31]],
    [15, [31, 63]],
  ]);
  const set =
    (offset: number, ...bytes: number[]) =>
    (b: Buffer) =>
      void b.set(bytes, offset);
  /** A fault that fails exactly one step's check. */
  const wrong: [number, string, (b: Buffer) => void][] = [
    [2, "magic HB", set(0, 0x48, 0x42)],
    [3, "version 2", set(2, 2)],
    [4, "kind 7", set(3, 7)],
    [5, "flag bit 7", set(4, 0x81)],
    [5, "flag bit 2", set(4, 0x05)],
    [7, "incarnation 2^56", set(5, 1)],
    [8, "sequence 2^64 - 1", set(13, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)],
    [8, "sequence 0", set(13, 0, 0, 0, 0, 0, 0, 0, 0)],
    [9, "node id length 0", set(21, 0)],
    [9, "node id length 65", set(21, 65)],
    [10, "node id starting with '-'", set(22, 0x2d)],
    [10, "node id with a space", set(25, 0x20)],
    [13, "key id length 0", set(28, 0)],
    [13, "key id length 33", set(28, 33)],
    [14, "key id starting with '.'", set(29, 0x2e)],
    [14, "key id with a '/'", set(30, 0x2f)],
  ];
  /** Faults that change the datagram's length: applied after the byte patches. */
  const shapes: [number, string, (b: Buffer) => Buffer][] = [
    [1, "513 bytes", (b) => Buffer.concat([b, Buffer.alloc(513 - b.length)])],
    [16, "a trailing byte", (b) => Buffer.concat([b, Buffer.from([0])])],
  ];
  for (const [step, [start, end]] of fields) {
    shapes.push([step - 0.5, `cut before step ${step}`, (b) => b.subarray(0, start)]);
    if (end - start > 1) shapes.push([step - 0.5, `cut inside step ${step}`, (b) => b.subarray(0, end - 1)]);
  }
  const reasonOf = (step: number) => (Number.isInteger(step) ? documented.get(step) : "truncated");

  it("documents a reason for every decoding step this test injects", () => {
    for (const [step] of [...wrong, ...shapes]) expect(reasonOf(step), `step ${step}`).toMatch(/^[a-z_]+$/);
    expect(reasonOf(1)).toBe("oversized");
    expect(documented.get(15)).toBe("—");
  });

  it("refuses each single fault with the documented reason", () => {
    for (const [step, name, fault] of wrong) {
      const b = Buffer.from(good);
      fault(b);
      expect(decode(b, emptyDatagram()), name).toBe(reasonOf(step));
    }
    for (const [step, name, shape] of shapes)
      expect(decode(shape(Buffer.from(good)), emptyDatagram()), name).toBe(reasonOf(step));
  });

  it("refuses a datagram with two faults for the one at the earlier step", () => {
    let pairs = 0;
    for (const [a, aName, aFault] of wrong) {
      for (const [b, bName, bFault] of wrong) {
        if (b <= a) continue;
        const bytes = Buffer.from(good);
        bFault(bytes);
        aFault(bytes);
        expect(decode(bytes, emptyDatagram()), `${aName} + ${bName}`).toBe(reasonOf(a));
        pairs++;
      }
      for (const [b, bName, shape] of shapes) {
        const bytes = Buffer.from(good);
        aFault(bytes);
        const expected = reasonOf(Math.min(a, b));
        expect(decode(shape(bytes), emptyDatagram()), `${aName} + ${bName}`).toBe(expected);
        pairs++;
      }
    }
    expect(pairs).toBeGreaterThan(300);
  });
});

describe("key ids", () => {
  it("decode to the key id each datagram carries, whichever were decoded before it", () => {
    // Far more ids than the decoder keeps strings for, in an order that reuses its slots.
    const ids = Array.from({ length: 500 }, (_, i) => `k${i.toString(36)}`);
    const datagrams = ids.map((id) =>
      encode({ kind: Kind.BEAT, nodeId: "a", incarnation: 1, sequence: 1 }, { id, secret: KEY.secret }),
    );
    const dg = emptyDatagram();
    for (let round = 0; round < 3; round++)
      for (let i = 0; i < ids.length; i++) {
        const at = (i * 7 + round) % ids.length;
        expect(decode(datagrams[at]!, dg)).toBeNull();
        expect(dg.keyId).toBe(ids[at]);
      }
  });
});

describe("sync datagrams", () => {
  const payload = Buffer.from("{}");
  // node id "mon-a" (L = 5), payload length at 27-28, payload at 29-30, key id "k1" at 31-33, tag 34-65.
  const good = encode({ kind: Kind.SYNC, nodeId: "mon-a", incarnation: 5, sequence: 9, payload }, KEY);
  const reject = (bytes: Buffer): DecodeReason | null => decode(bytes, emptyDatagram());

  it("expose their payload as an offset and a length into the datagram, without a copy", () => {
    const dg = emptyDatagram();
    expect(decode(good, dg)).toBeNull();
    expect(good.length).toBe(66);
    expect(dg).toMatchObject({
      kind: Kind.SYNC,
      payloadOffset: 29,
      payloadLength: 2,
      keyId: "k1",
      tagOffset: 34,
    });
    expect(dg.buf).toBe(good);
    expect(verifyTag(good, dg.tagOffset, TAG_KEY)).toBe(true);
    // A beat decoded into the same datagram carries none.
    expect(decode(encode({ kind: Kind.BEAT, nodeId: "a", incarnation: 1, sequence: 1 }), dg)).toBeNull();
    expect(dg).toMatchObject({ payloadOffset: 0, payloadLength: 0 });
  });

  it("fill a datagram to 512 bytes with the longest ids and MAX_SYNC_PAYLOAD_BYTES, and no further", () => {
    const big = Buffer.alloc(MAX_SYNC_PAYLOAD_BYTES, 0x61);
    const key = { id: "k".repeat(32), secret: KEY.secret };
    const full = encode(
      { kind: Kind.SYNC, nodeId: "n".repeat(64), incarnation: 1, sequence: 1, payload: big },
      key,
    );
    expect(full.length).toBe(MAX_DATAGRAM_BYTES);
    expect(syncPayloadCapacity("n".repeat(64), key.id)).toBe(MAX_SYNC_PAYLOAD_BYTES);
    const dg = emptyDatagram();
    expect(decode(full, dg)).toBeNull();
    expect(dg.payloadLength).toBe(MAX_SYNC_PAYLOAD_BYTES);
    const over = Buffer.alloc(MAX_SYNC_PAYLOAD_BYTES + 1);
    expect(() =>
      encode({ kind: Kind.SYNC, nodeId: "n".repeat(64), incarnation: 1, sequence: 1, payload: over }, key),
    ).toThrow(RangeError);
  });

  it("are encoded only signed and numbered, and only they carry a payload", () => {
    const sync = { kind: Kind.SYNC, nodeId: "mon-a", incarnation: 1, sequence: 1, payload };
    expect(() => encode(sync)).toThrow(RangeError);
    expect(() => encode({ ...sync, unnumbered: true }, KEY)).toThrow(RangeError);
    expect(() => encode({ ...sync, kind: Kind.BEAT }, KEY)).toThrow(RangeError);
  });

  it.each<[string, DecodeReason, (b: Buffer) => Buffer]>([
    ["unsigned (flags 00)", "malformed", (b) => patch(b, 4, 0)],
    ["unnumbered (flags 03)", "malformed", (b) => patch(b, 4, 3)],
    ["cut inside the payload length", "truncated", (b) => b.subarray(0, 28)],
    ["cut inside the payload", "truncated", (b) => b.subarray(0, 30)],
    ["a payload length past the end", "truncated", (b) => patch(patch(b, 27, 0xff), 28, 0xff)],
    ["key id length 0 after the payload", "bad_key_id", (b) => patch(b, 31, 0)],
    ["a trailing byte", "malformed", (b) => Buffer.concat([b, Buffer.from([0])])],
    ["unsigned, and cut after the payload", "malformed", (b) => patch(b.subarray(0, 31), 4, 0)],
  ])("refuses one %s as %s", (_name, reason, mutate) => {
    expect(reject(mutate(Buffer.from(good)))).toBe(reason);
  });
});

function patch(buf: Buffer, offset: number, value: number): Buffer {
  buf[offset] = value;
  return buf;
}
