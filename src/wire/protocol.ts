// The hb wire format, version 1: the only module that knows the bytes (docs/PROTOCOL.md
// documents them with test vectors). Decoding never throws and allocates nothing (a key id's
// string is made once and kept while its slot is not taken): it fills a caller-owned Datagram (a sync datagram's payload is an offset and a length
// into the bytes, never a copy) and returns null, or the reason the bytes were refused. HMAC tags
// are computed (node:crypto) and checked (wire/hmac.ts, allocating nothing) here; which key
// applies is the caller's.

import { createHmac, type KeyObject } from "node:crypto";
import { hmacKey, verifyHmac, type HmacKey } from "./hmac.js";

/** The monitor's UDP port when an address names none; nodes and monitors agree on it. */
export const DEFAULT_PORT = 26722;
/** How often a node sends when nothing says otherwise. */
export const DEFAULT_INTERVAL_MS = 1000;

export const MAGIC = 0x6862; // "hb"
export const VERSION = 1;
export const MAX_DATAGRAM_BYTES = 512;
export const MAX_ID_BYTES = 64;
export const MAX_KEY_ID_BYTES = 32;
export const TAG_BYTES = 32;
export const HEADER_BYTES = 21;
export const MIN_DATAGRAM_BYTES = HEADER_BYTES + 2; // a one-byte node id
/** The payload length field of a sync datagram. */
export const PAYLOAD_LENGTH_BYTES = 2;
/** The bytes of a sync datagram besides its payload, for a node id and a key id of these lengths. */
function syncFrameBytes(idBytes: number, keyIdBytes: number): number {
  return HEADER_BYTES + 1 + idBytes + PAYLOAD_LENGTH_BYTES + 1 + keyIdBytes + TAG_BYTES;
}

/**
 * The payload a sync datagram can carry whatever its node id and key id (64 and 32 bytes at most):
 * what one monitor may send, every other can.
 */
export const MAX_SYNC_PAYLOAD_BYTES = MAX_DATAGRAM_BYTES - syncFrameBytes(MAX_ID_BYTES, MAX_KEY_ID_BYTES);

/** The payload one sync datagram from `nodeId`, signed with `keyId`, can carry. */
export function syncPayloadCapacity(nodeId: string, keyId: string): number {
  return MAX_DATAGRAM_BYTES - syncFrameBytes(nodeId.length, keyId.length);
}

/** Beat and leave come from nodes and monitors; sync carries state between monitors only. */
export const Kind = { BEAT: 1, LEAVE: 2, SYNC: 3 } as const;
export type Kind = (typeof Kind)[keyof typeof Kind];
const FLAG_AUTH = 0x01;
/** The sequence only moves forward (one-shot senders use the wall clock); gaps are not loss. */
const FLAG_UNNUMBERED = 0x02;
const KNOWN_FLAGS = FLAG_AUTH | FLAG_UNNUMBERED;
const U32 = 0x1_0000_0000;
/** Largest high word that keeps a u64 within Number.MAX_SAFE_INTEGER. */
const MAX_SAFE_HIGH = 0x1f_ffff;

/** Why a datagram was refused; stable names, used as counter labels and in events. */
export const DECODE_REASONS = [
  "oversized",
  "truncated",
  "bad_magic",
  "bad_version",
  "bad_kind",
  "bad_flags",
  "bad_node_id",
  "bad_key_id",
  "malformed",
] as const;
export type DecodeReason = (typeof DECODE_REASONS)[number];

export interface Datagram {
  kind: Kind;
  incarnation: number;
  sequence: number;
  /** The sequence only moves forward: a gap in it is not loss. */
  unnumbered: boolean;
  /**
   * The bytes it was decoded from, and where the node id lies in them. No string is made for it:
   * the monitor finds the node by these bytes; nodeIdOf() makes the string when one is needed.
   */
  buf: Buffer;
  idStart: number;
  idLength: number;
  /** Empty when the datagram carries no tag. */
  keyId: string;
  /** Offset of the 32-byte tag; 0 when there is none. */
  tagOffset: number;
  /** A sync datagram's payload, in `buf`; 0 and 0 for the other kinds. */
  payloadOffset: number;
  payloadLength: number;
}

const EMPTY = Buffer.alloc(0);

/** A decoded datagram's node id, as a string (made anew on each call). */
export function nodeIdOf(dg: Datagram): string {
  return dg.buf.toString("latin1", dg.idStart, dg.idStart + dg.idLength);
}

export function emptyDatagram(): Datagram {
  return {
    kind: Kind.BEAT,
    incarnation: 0,
    sequence: 0,
    unnumbered: false,
    buf: EMPTY,
    idStart: 0,
    idLength: 0,
    keyId: "",
    tagOffset: 0,
    payloadOffset: 0,
    payloadLength: 0,
  };
}

/** Node ids and key ids: letters, digits, '.', '_', '-'; they double as systemd instance names. */
export const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/** ID_PATTERN, one byte (or character code) at a time: the first is a letter or a digit. */
function isIdByte(b: number, first: boolean): boolean {
  return (
    (b >= 0x30 && b <= 0x39) ||
    (b >= 0x41 && b <= 0x5a) ||
    (b >= 0x61 && b <= 0x7a) ||
    (!first && (b === 0x2e || b === 0x5f || b === 0x2d))
  );
}

/**
 * The one check of an id (node, key, monitor, output name): 1 to `maxBytes` characters of
 * ID_PATTERN, all ASCII, so characters are bytes. The decoder checks the bytes the same way.
 */
export function isId(text: string, maxBytes = MAX_ID_BYTES): boolean {
  if (text.length === 0 || text.length > maxBytes) return false;
  for (let i = 0; i < text.length; i++) if (!isIdByte(text.charCodeAt(i), i === 0)) return false;
  return true;
}

function validIdBytes(buf: Uint8Array, start: number, end: number): boolean {
  for (let i = start; i < end; i++) if (!isIdByte(buf[i]!, i === start)) return false;
  return true;
}

/** Key ids decoded lately, by a hash of their bytes: a site has a few, each in every datagram. */
const KEY_ID_SLOTS = 64;
const keyIds: string[] = new Array<string>(KEY_ID_SLOTS).fill("");

/** The key id in `buf[start..end)`, as the string decoded before when it is still kept. */
function keyIdAt(buf: Buffer, start: number, end: number): string {
  let hash = end - start;
  for (let i = start; i < end; i++) hash = (Math.imul(hash, 31) + buf[i]!) | 0;
  const slot = hash & (KEY_ID_SLOTS - 1);
  const kept = keyIds[slot]!;
  if (kept.length === end - start) {
    let i = 0;
    while (i < kept.length && kept.charCodeAt(i) === buf[start + i]) i++;
    if (i === kept.length) return kept;
  }
  const keyId = buf.toString("latin1", start, end);
  keyIds[slot] = keyId;
  return keyId;
}

function readU64(buf: Buffer, offset: number): number {
  const high = buf.readUInt32BE(offset);
  if (high > MAX_SAFE_HIGH) return -1;
  return high * U32 + buf.readUInt32BE(offset + 4);
}

/**
 * Reads front to back and stops at the first problem, in the order docs/PROTOCOL.md gives: a
 * field that is not all there is `truncated`, a field that is there but wrong has its own reason.
 */
export function decode(buf: Buffer, out: Datagram): DecodeReason | null {
  const length = buf.length;
  if (length > MAX_DATAGRAM_BYTES) return "oversized";
  if (length < 2) return "truncated";
  if (buf.readUInt16BE(0) !== MAGIC) return "bad_magic";
  if (length < 3) return "truncated";
  if (buf[2] !== VERSION) return "bad_version";
  if (length < 4) return "truncated";
  const kind = buf[3]!;
  if (kind !== Kind.BEAT && kind !== Kind.LEAVE && kind !== Kind.SYNC) return "bad_kind";
  if (length < 5) return "truncated";
  const flags = buf[4]!;
  if ((flags & ~KNOWN_FLAGS) !== 0) return "bad_flags";
  // Only monitors send sync datagrams, and always signed and numbered.
  if (kind === Kind.SYNC && flags !== FLAG_AUTH) return "malformed";
  if (length < 13) return "truncated";
  const incarnation = readU64(buf, 5);
  if (incarnation < 0) return "malformed";
  if (length < HEADER_BYTES) return "truncated";
  const sequence = readU64(buf, 13);
  if (sequence <= 0) return "malformed";

  if (length < HEADER_BYTES + 1) return "truncated";
  const idLength = buf[HEADER_BYTES]!;
  if (idLength === 0 || idLength > MAX_ID_BYTES) return "bad_node_id";
  const idStart = HEADER_BYTES + 1;
  const idEnd = idStart + idLength;
  if (idEnd > length) return "truncated";
  if (!validIdBytes(buf, idStart, idEnd)) return "bad_node_id";

  let payloadOffset = 0;
  let payloadLength = 0;
  let end = idEnd;
  if (kind === Kind.SYNC) {
    if (idEnd + PAYLOAD_LENGTH_BYTES > length) return "truncated";
    payloadLength = buf.readUInt16BE(idEnd);
    payloadOffset = idEnd + PAYLOAD_LENGTH_BYTES;
    end = payloadOffset + payloadLength;
    if (end > length) return "truncated";
  }

  let keyId = "";
  let tagOffset = 0;
  if ((flags & FLAG_AUTH) !== 0) {
    if (end + 1 > length) return "truncated";
    const keyIdLength = buf[end]!;
    if (keyIdLength === 0 || keyIdLength > MAX_KEY_ID_BYTES) return "bad_key_id";
    const keyIdStart = end + 1;
    tagOffset = keyIdStart + keyIdLength;
    if (tagOffset > length) return "truncated";
    if (!validIdBytes(buf, keyIdStart, tagOffset)) return "bad_key_id";
    end = tagOffset + TAG_BYTES;
    if (end > length) return "truncated";
    keyId = keyIdAt(buf, keyIdStart, tagOffset);
  }
  if (end !== length) return "malformed";

  out.kind = kind;
  out.incarnation = incarnation;
  out.sequence = sequence;
  out.unnumbered = (flags & FLAG_UNNUMBERED) !== 0;
  out.buf = buf;
  out.idStart = idStart;
  out.idLength = idLength;
  out.keyId = keyId;
  out.tagOffset = tagOffset;
  out.payloadOffset = payloadOffset;
  out.payloadLength = payloadLength;
  return null;
}

export interface SigningKey {
  id: string;
  secret: KeyObject;
}

export interface Heartbeat {
  kind: Kind;
  nodeId: string;
  incarnation: number;
  /** At least 1. */
  sequence: number;
  /** The sequence only moves forward (e.g. the wall clock) instead of counting datagrams. */
  unnumbered?: boolean | undefined;
  /** What a sync datagram carries (it must be signed); the other kinds carry none. */
  payload?: Uint8Array | undefined;
}

function writeU64(buf: Buffer, offset: number, value: number, min: number): void {
  if (!Number.isSafeInteger(value) || value < min) {
    throw new RangeError(`not an integer from ${min} to 2^53 - 1: ${value}`);
  }
  buf.writeUInt32BE(Math.floor(value / U32), offset);
  buf.writeUInt32BE(value % U32, offset + 4);
}

function checkId(what: string, id: string, maxBytes: number): void {
  if (!isId(id, maxBytes)) {
    throw new RangeError(`${what} must be 1-${maxBytes} of [A-Za-z0-9._-], starting alphanumeric: "${id}"`);
  }
}

export function encode(hb: Heartbeat, key?: SigningKey): Buffer {
  checkId("node id", hb.nodeId, MAX_ID_BYTES);
  if (key !== undefined) checkId("key id", key.id, MAX_KEY_ID_BYTES);
  const sync = hb.kind === Kind.SYNC;
  const payload = hb.payload;
  if (sync && (key === undefined || hb.unnumbered === true))
    throw new RangeError("a sync datagram is signed and numbered");
  if (!sync && payload !== undefined) throw new RangeError("only a sync datagram carries a payload");
  const payloadBytes = sync ? PAYLOAD_LENGTH_BYTES + (payload?.length ?? 0) : 0;
  const authBytes = key === undefined ? 0 : 1 + key.id.length + TAG_BYTES;
  const size = HEADER_BYTES + 1 + hb.nodeId.length + payloadBytes + authBytes;
  if (size > MAX_DATAGRAM_BYTES)
    throw new RangeError(
      `a datagram of ${size} bytes is over ${MAX_DATAGRAM_BYTES}: the payload is too large`,
    );
  const buf = Buffer.alloc(size);
  buf.writeUInt16BE(MAGIC, 0);
  buf[2] = VERSION;
  buf[3] = hb.kind;
  buf[4] = (key === undefined ? 0 : FLAG_AUTH) | (hb.unnumbered === true ? FLAG_UNNUMBERED : 0);
  writeU64(buf, 5, hb.incarnation, 0);
  writeU64(buf, 13, hb.sequence, 1);
  buf[HEADER_BYTES] = hb.nodeId.length;
  let offset = buf.write(hb.nodeId, HEADER_BYTES + 1, "latin1") + HEADER_BYTES + 1;
  if (sync) {
    offset = buf.writeUInt16BE(payload?.length ?? 0, offset);
    if (payload !== undefined) buf.set(payload, offset);
    offset += payload?.length ?? 0;
  }
  if (key !== undefined) {
    buf[offset] = key.id.length;
    offset += 1 + buf.write(key.id, offset + 1, "latin1");
    computeTag(key.secret, buf.subarray(0, offset)).copy(buf, offset);
  }
  return buf;
}

/**
 * Sets the sequence of an unsigned datagram that encode() made, in place: whoever sends many
 * datagrams of one node in turn (a replay) makes one and counts up in it. A signed datagram's
 * sequence is under its tag, so it cannot be changed so.
 */
export function setSequence(buf: Buffer, sequence: number): void {
  if ((buf[4]! & FLAG_AUTH) !== 0)
    throw new RangeError("a signed datagram needs a new tag for a new sequence");
  writeU64(buf, 13, sequence, 1);
}

export function computeTag(secret: KeyObject, signed: Uint8Array): Buffer {
  return createHmac("sha256", secret).update(signed).digest();
}

/** A key made ready to check tags: its HMAC states, made once per key rather than per datagram. */
export type TagKey = HmacKey;

/** Made when a keyring is loaded; the key's bytes are read here once, and not kept. */
export function tagKey(secret: KeyObject): TagKey {
  const bytes = secret.export();
  try {
    return hmacKey(bytes);
  } finally {
    bytes.fill(0);
  }
}

/**
 * Constant-time check (all 32 bytes compared, no early exit) of the tag of a datagram that
 * `decode` accepted with a key id; allocates nothing.
 */
export function verifyTag(buf: Buffer, tagOffset: number, key: TagKey): boolean {
  return verifyHmac(key, buf, 0, tagOffset, buf, tagOffset);
}
