// What a sync datagram carries between the monitors of a cluster (docs/PROTOCOL.md): UTF-8 JSON,
// either the digests of the replicated maps, sent every peer interval, or a batch of one map's
// records. Which map a record belongs to and how it merges are the replicas'; here are only the
// texts and their sizes. Parsing never throws: it gives a message, or null for anything else.

import { MAX_SYNC_PAYLOAD_BYTES } from "./protocol.js";

export type SyncMessage =
  | { readonly kind: "digests"; readonly digests: ReadonlyMap<string, string> }
  | { readonly kind: "records"; readonly replica: string; readonly records: readonly unknown[] };

/** One record as it travels: the JSON text of `[key, value]`. */
export function recordText(key: string, encoded: unknown): string {
  return JSON.stringify([key, encoded]);
}

/** The text of a records payload before its records, and after them. */
export function recordsFrame(replica: string): { head: string; tail: string } {
  return { head: `{"replica":${JSON.stringify(replica)},"records":[`, tail: "]}" };
}

/** Whether one record of `replica` fits a sync datagram of any monitor (MAX_SYNC_PAYLOAD_BYTES). */
export function recordFits(replica: string, text: string): boolean {
  const { head, tail } = recordsFrame(replica);
  return Buffer.byteLength(head) + Buffer.byteLength(text) + tail.length <= MAX_SYNC_PAYLOAD_BYTES;
}

export function recordsPayload(replica: string, texts: readonly string[]): Buffer {
  const { head, tail } = recordsFrame(replica);
  return Buffer.from(head + texts.join(",") + tail);
}

export function digestsPayload(digests: Iterable<readonly [string, string]>): Buffer {
  return Buffer.from(JSON.stringify({ digests: Object.fromEntries(digests) }));
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * Reads a payload; unknown fields are ignored, so that a later version may add some. The records
 * are returned as they came: each is the caller's to check (a [key, value] pair).
 */
export function parseSync(buf: Buffer, offset: number, length: number): SyncMessage | null {
  let parsed: unknown;
  try {
    parsed = JSON.parse(buf.toString("utf8", offset, offset + length));
  } catch {
    return null;
  }
  if (!isObject(parsed)) return null;
  if (isObject(parsed.digests)) {
    const digests = new Map<string, string>();
    for (const [name, digest] of Object.entries(parsed.digests))
      if (typeof digest === "string") digests.set(name, digest);
    return { kind: "digests", digests };
  }
  if (typeof parsed.replica === "string" && Array.isArray(parsed.records))
    return { kind: "records", replica: parsed.replica, records: parsed.records };
  return null;
}
