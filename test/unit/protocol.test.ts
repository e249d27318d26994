import { createSecretKey } from "node:crypto";
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { REJECT_REASONS } from "../../src/monitor/admit.js";
import {
  Kind,
  MAX_DATAGRAM_BYTES,
  decode,
  emptyDatagram,
  nodeIdOf,
  encode,
  verifyTag,
  type DecodeReason,
} from "../../src/wire/protocol.js";

const doc = readFileSync(new URL("../../docs/PROTOCOL.md", import.meta.url), "utf8");
const keyLine =
  /The key for the authenticated vectors is the (\d+) ASCII bytes `([^`]+)`\s+with key id `([^`]+)`/.exec(
    doc,
  )!;
const KEY = { id: keyLine[3]!, secret: createSecretKey(Buffer.from(keyLine[2]!)) };

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
    expect(steps.get("unauthenticated")).toEqual(["14", "20"]);
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
        expect(verifyTag(v.hex, dg.tagOffset, KEY.secret)).toBe(false);
        return;
      }
      if (v.result !== undefined) {
        expect(reason).toBe(v.result);
        return;
      }
      expect(reason).toBeNull();
      const f = v.fields!;
      expect(nodeIdOf(dg)).toBe(f.node);
      expect(dg).toMatchObject({
        kind: f.kind === "leave" ? Kind.LEAVE : Kind.BEAT,
        incarnation: Number(f.incarnation),
        sequence: Number(f.sequence),
        keyId: f.key ?? "",
      });
      if (f.key !== undefined) expect(verifyTag(v.hex, dg.tagOffset, KEY.secret)).toBe(true);
      expect(dg.unnumbered).toBe(f.unnumbered === "yes");
      const encoded = encode(
        {
          kind: dg.kind,
          nodeId: nodeIdOf(dg),
          incarnation: dg.incarnation,
          sequence: dg.sequence,
          unnumbered: dg.unnumbered,
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
    [6, [5, 13]],
    [7, [13, 21]],
    [8, [21, 22]],
    [9, [22, 28]],
    [10, [28, 29]],
    [11, [29, 31]],
    [12, [31, 63]],
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
    [6, "incarnation 2^56", set(5, 1)],
    [7, "sequence 2^64 - 1", set(13, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)],
    [7, "sequence 0", set(13, 0, 0, 0, 0, 0, 0, 0, 0)],
    [8, "node id length 0", set(21, 0)],
    [8, "node id length 65", set(21, 65)],
    [9, "node id starting with '-'", set(22, 0x2d)],
    [9, "node id with a space", set(25, 0x20)],
    [10, "key id length 0", set(28, 0)],
    [10, "key id length 33", set(28, 33)],
    [11, "key id starting with '.'", set(29, 0x2e)],
    [11, "key id with a '/'", set(30, 0x2f)],
  ];
  /** Faults that change the datagram's length: applied after the byte patches. */
  const shapes: [number, string, (b: Buffer) => Buffer][] = [
    [1, "513 bytes", (b) => Buffer.concat([b, Buffer.alloc(513 - b.length)])],
    [13, "a trailing byte", (b) => Buffer.concat([b, Buffer.from([0])])],
  ];
  for (const [step, [start, end]] of fields) {
    shapes.push([step - 0.5, `cut before step ${step}`, (b) => b.subarray(0, start)]);
    if (end - start > 1) shapes.push([step - 0.5, `cut inside step ${step}`, (b) => b.subarray(0, end - 1)]);
  }
  const reasonOf = (step: number) => (Number.isInteger(step) ? documented.get(step) : "truncated");

  it("documents a reason for every decoding step this test injects", () => {
    for (const [step] of [...wrong, ...shapes]) expect(reasonOf(step), `step ${step}`).toMatch(/^[a-z_]+$/);
    expect(reasonOf(1)).toBe("oversized");
    expect(documented.get(12)).toBe("—");
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

function patch(buf: Buffer, offset: number, value: number): Buffer {
  buf[offset] = value;
  return buf;
}
