// Checking one datagram's HMAC-SHA-256 tag, every way at hand, in ns of CPU per verify: node:crypto as
// hb did (a createHmac object per datagram), node:crypto with a raw key, node:crypto with the
// key's padded blocks hashed once and copied per datagram (Hash.copy(), which Hmac lacks),
// node:crypto's one-shot crypto.hash twice, @noble/hashes (hmac.create once per key, cloned into
// a scratch instance per datagram), hash-wasm (its createHMAC, and SHA-256 with save()/load() of
// the padded-key states), and hb's own src/wire/hmac.ts. crypto.subtle only answers with a
// promise, so it cannot sit on the synchronous receive path; it is timed awaited, for the record.
// Signed parts of 31 bytes (the ingest section's datagrams), 40, 60, 90, 119 (the largest beat)
// and 480 (the largest sync datagram); each run times every variant in turn, in a rotating order.
// `npx tsx bench/hmac.ts [--runs N] [--quick]`, or `npm run bench -- --only hmac`.
import {
  createHash,
  createHmac,
  createSecretKey,
  hash as oneShotHash,
  randomBytes,
  timingSafeEqual,
  webcrypto,
} from "node:crypto";
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { hmac as nobleHmac } from "@noble/hashes/hmac.js";
import { sha256 as nobleSha256 } from "@noble/hashes/sha2.js";
import { createHMAC, createSHA256 } from "hash-wasm";
import { hmacKey, verifyHmac } from "../src/wire/hmac.js";
import { QUICK, RUNS, log, round } from "./harness.js";
import { spread, type Spread } from "./lib.js";

export const HMAC_LENGTHS = [31, 40, 60, 90, 119, 480];
const BATCH = 64; // distinct datagrams per length, used in turn
const KEY = Buffer.from("bench-key-0123456789abcdef0123456789");
const TAG_BYTES = 32;

/** Checks the tag at `n` of `msg` (its first n bytes are what the tag covers). */
type Verify = (msg: Buffer, n: number) => boolean;
interface Variant {
  name: string;
  verify: Verify | null;
  verifyAsync?: (msg: Buffer, n: number) => Promise<boolean>;
}

function sameTag(a: Uint8Array, msg: Buffer, n: number): boolean {
  let diff = 0;
  for (let i = 0; i < TAG_BYTES; i++) diff |= a[i]! ^ msg[n + i]!;
  return diff === 0;
}

async function variants(): Promise<Variant[]> {
  const keyObject = createSecretKey(KEY);
  const block = Buffer.alloc(64);
  KEY.copy(block);
  const ipad = Buffer.from(block.map((b) => b ^ 0x36));
  const opad = Buffer.from(block.map((b) => b ^ 0x5c));
  const innerBase = createHash("sha256").update(ipad);
  const outerBase = createHash("sha256").update(opad);
  // ipad || message, and opad || inner hash, laid out once for the one-shot hash.
  const innerScratch = Buffer.alloc(64 + 512);
  ipad.copy(innerScratch);
  const outerScratch = Buffer.alloc(64 + 32);
  opad.copy(outerScratch);

  const noble = nobleHmac.create(nobleSha256, KEY);
  const nobleScratch = noble.clone();
  const nobleOut = new Uint8Array(32);

  const wasmHmac = await createHMAC(createSHA256(), KEY);
  const wasm = await createSHA256();
  const wasmInner = wasm.init().update(ipad).save();
  const wasmOuter = wasm.init().update(opad).save();

  const hb = hmacKey(KEY);
  const subtleKey = await webcrypto.subtle.importKey("raw", KEY, { name: "HMAC", hash: "SHA-256" }, false, [
    "verify",
  ]);

  return [
    {
      name: "node:crypto createHmac(KeyObject) + timingSafeEqual (before)",
      verify: (msg, n) =>
        timingSafeEqual(
          createHmac("sha256", keyObject).update(msg.subarray(0, n)).digest(),
          msg.subarray(n, n + TAG_BYTES),
        ),
    },
    {
      name: "node:crypto createHmac(Buffer key) + timingSafeEqual",
      verify: (msg, n) =>
        timingSafeEqual(
          createHmac("sha256", KEY).update(msg.subarray(0, n)).digest(),
          msg.subarray(n, n + TAG_BYTES),
        ),
    },
    {
      name: "node:crypto Hash.copy() of the padded-key states",
      verify: (msg, n) => {
        const inner = innerBase.copy().update(msg.subarray(0, n)).digest();
        return sameTag(outerBase.copy().update(inner).digest(), msg, n);
      },
    },
    {
      name: "node:crypto crypto.hash() twice (ipad||m, opad||inner)",
      verify: (msg, n) => {
        msg.copy(innerScratch, 64, 0, n);
        oneShotHash("sha256", innerScratch.subarray(0, 64 + n), "buffer").copy(outerScratch, 64);
        return sameTag(oneShotHash("sha256", outerScratch, "buffer"), msg, n);
      },
    },
    {
      name: "@noble/hashes hmac, _cloneInto a scratch instance",
      verify: (msg, n) => {
        noble._cloneInto(nobleScratch);
        nobleScratch.update(msg.subarray(0, n)).digestInto(nobleOut);
        return sameTag(nobleOut, msg, n);
      },
    },
    {
      name: "hash-wasm createHMAC (init() per datagram)",
      verify: (msg, n) => sameTag(wasmHmac.init().update(msg.subarray(0, n)).digest("binary"), msg, n),
    },
    {
      name: "hash-wasm SHA-256 load() of the padded-key states",
      verify: (msg, n) => {
        const inner = wasm.load(wasmInner).update(msg.subarray(0, n)).digest("binary");
        return sameTag(wasm.load(wasmOuter).update(inner).digest("binary"), msg, n);
      },
    },
    {
      name: "hb src/wire/hmac.ts (states per key, no allocation)",
      verify: (msg, n) => verifyHmac(hb, msg, 0, n, msg, n),
    },
    {
      name: "crypto.subtle.verify, awaited (asynchronous: not usable on the hot path)",
      verify: null,
      verifyAsync: (msg, n) =>
        webcrypto.subtle.verify("HMAC", subtleKey, msg.subarray(n, n + TAG_BYTES), msg.subarray(0, n)),
    },
  ];
}

/** BATCH signed datagrams whose signed part is `n` bytes, tag after it. */
function datagrams(n: number): Buffer[] {
  return Array.from({ length: BATCH }, () => {
    const msg = Buffer.alloc(n + TAG_BYTES);
    randomBytes(n).copy(msg);
    createHmac("sha256", KEY).update(msg.subarray(0, n)).digest().copy(msg, n);
    return msg;
  });
}

/** CPU seconds this process has used (every thread: a variant's garbage collection counts). */
function cpuMs(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
}

/**
 * ns of CPU per verify over at least `minMs` of CPU, in chunks of BATCH: CPU time rather than
 * the wall clock, which counts whatever else the machine runs meanwhile. Every verify must succeed.
 */
async function time(v: Variant, batch: Buffer[], n: number, minMs: number): Promise<number> {
  let count = 0;
  let ok = 0;
  const t0 = cpuMs();
  let elapsed = 0;
  do {
    if (v.verify !== null) {
      for (let r = 0; r < 16; r++) for (const msg of batch) if (v.verify(msg, n)) ok++;
      count += 16 * batch.length;
    } else {
      for (const msg of batch) if (await v.verifyAsync!(msg, n)) ok++;
      count += batch.length;
    }
    elapsed = cpuMs() - t0;
  } while (elapsed < minMs);
  if (ok !== count) throw new Error(`hmac: ${v.name} refused a valid tag`);
  return (elapsed * 1e6) / count;
}

/** Each variant takes every valid tag and refuses every tag with one bit flipped. */
async function check(v: Variant, batch: Buffer[], n: number): Promise<void> {
  const verify = v.verify ?? null;
  for (const msg of batch) {
    const bad = Buffer.from(msg);
    bad[n + (msg[0]! % TAG_BYTES)]! ^= 1 << (msg[1]! % 8);
    const good = verify !== null ? verify(msg, n) : await v.verifyAsync!(msg, n);
    const refused = !(verify !== null ? verify(bad, n) : await v.verifyAsync!(bad, n));
    if (!good || !refused) throw new Error(`hmac: ${v.name} is wrong at ${n} bytes`);
  }
}

export type HmacResults = Record<string, Record<string, Spread>>;

export async function hmacVerify(): Promise<HmacResults> {
  const runs = QUICK ? 1 : Math.max(RUNS, 5);
  const minMs = QUICK ? 10 : 60;
  const all = await variants();
  const batches = new Map(HMAC_LENGTHS.map((n) => [n, datagrams(n)]));
  for (const v of all) for (const [n, batch] of batches) await check(v, batch, n);
  // Warm up: every variant's code optimized before the first timed run.
  for (const v of all) for (const [n, batch] of batches) await time(v, batch, n, minMs);
  const ns = new Map(all.map((v) => [v.name, new Map(HMAC_LENGTHS.map((n) => [n, [] as number[]]))]));
  for (let run = 0; run < runs; run++) {
    for (let i = 0; i < all.length; i++) {
      const v = all[(run + i) % all.length]!;
      for (const [n, batch] of batches)
        ns.get(v.name)!
          .get(n)!
          .push(await time(v, batch, n, minMs));
    }
    log(`hmac run ${run + 1} of ${runs} done`);
  }
  const results: HmacResults = {};
  for (const v of all)
    results[v.name] = Object.fromEntries(HMAC_LENGTHS.map((n) => [n, spread(ns.get(v.name)!.get(n)!)]));
  return results;
}

/** The table: median (min–max) ns per verify, a column per length of the signed part. */
export function hmacTable(results: HmacResults): string {
  const fmt = (s: Spread): string => `${round(s.median)} (${round(s.min)}–${round(s.max)})`;
  const lines = [
    `| variant | ${HMAC_LENGTHS.map((n) => `${n} B`).join(" | ")} |`,
    `| --- | ${HMAC_LENGTHS.map(() => "---").join(" | ")} |`,
  ];
  for (const [name, row] of Object.entries(results))
    lines.push(`| ${name} | ${HMAC_LENGTHS.map((n) => fmt(row[n]!)).join(" | ")} |`);
  return lines.join("\n");
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  log(
    `ns of CPU per verify, median (min–max) of ${QUICK ? 1 : Math.max(RUNS, 5)} runs, Node ${process.version}`,
  );
  process.stdout.write(`${hmacTable(await hmacVerify())}\n`);
}
