// The signature on a webhook request, by which a receiver knows that hb sent it and that it is not
// an old request replayed. T is the sending time in whole Unix seconds, written in decimal; S is
// HMAC-SHA-256, keyed with the key's secret (the key file's text, surrounding white space removed),
// of the bytes of T, one "." (0x2e), then the request body exactly as sent, in 64 lowercase hex
// digits. The request carries `X-Hb-Signature: t=T,v1=S` and `X-Hb-Key-Id: <key id>`. A receiver
// computes S over the raw body (before any JSON parsing), compares in constant time, and refuses a
// T more than 300 s from its own clock, either way.

import { createHmac, timingSafeEqual, type KeyObject } from "node:crypto";

export const SIGNATURE_HEADER = "x-hb-signature";
export const KEY_ID_HEADER = "x-hb-key-id";
/** How far T may be from the receiver's clock: it bounds how long a captured request can be replayed. */
export const SIGNATURE_TOLERANCE_SEC = 300;

const SIGNATURE_RE = /^t=(\d{1,15}),v1=([0-9a-f]{64})$/;

function mac(key: KeyObject, timestamp: string, body: Buffer | string): Buffer {
  return createHmac("sha256", key).update(`${timestamp}.`).update(body).digest();
}

/** The X-Hb-Signature value for `body` sent at `timestampSec`; a string body is signed as UTF-8. */
export function signatureHeader(key: KeyObject, timestampSec: number, body: Buffer | string): string {
  if (!Number.isSafeInteger(timestampSec) || timestampSec < 0) {
    throw new RangeError(`a signature's time is whole Unix seconds, not ${timestampSec}`);
  }
  return `t=${timestampSec},v1=${mac(key, String(timestampSec), body).toString("hex")}`;
}

/**
 * True when `header` is a well-formed X-Hb-Signature for `body` made with `key`, and its time is
 * within `toleranceSec` of `nowSec`. Anything else (malformed, another key, another body, too
 * old, too far ahead) is false.
 */
export function verifySignature(
  key: KeyObject,
  header: string,
  body: Buffer | string,
  nowSec: number,
  toleranceSec = SIGNATURE_TOLERANCE_SEC,
): boolean {
  const [, timestamp, hex] = SIGNATURE_RE.exec(header.trim()) ?? [];
  if (timestamp === undefined || hex === undefined) return false;
  // Written this way round, a NaN now or tolerance refuses rather than accepts.
  if (!(Math.abs(nowSec - Number(timestamp)) <= toleranceSec)) return false;
  // T is signed as it was written: the text of the header, not a number re-formatted.
  // Both sides are 32 bytes: the pattern admits exactly 64 hex digits.
  return timingSafeEqual(mac(key, timestamp, body), Buffer.from(hex, "hex"));
}
