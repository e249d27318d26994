// HMAC-SHA-256 for checking tags on the monitor's hot path, without allocating: SHA-256 as in
// FIPS 180-4 (sections 4.2.2, 5.1.1, 5.3.3 and 6.2), HMAC as in RFC 2104 (FIPS 198-1). A key's
// inner and outer states (the hash after its padded key block, key XOR ipad and key XOR opad)
// are computed once per key; a tag then costs one compression of the message per 64 bytes
// (55 bytes or fewer take one, with the padding) and one of the outer hash, on scratch words
// owned by this module. Signing stays with node:crypto (wire/protocol.ts).

const BLOCK_BYTES = 64;
/** The bytes of a hash (and of a tag). */
export const HMAC_BYTES = 32;

/** FIPS 180-4, 4.2.2: the first 32 bits of the fractional parts of the cube roots of the first 64 primes. */
// prettier-ignore
const K = Int32Array.from([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);

/** FIPS 180-4, 5.3.3: the initial hash value. */
// prettier-ignore
const IV = Int32Array.from([
  0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
]);

/** The message schedule; its first 16 words are the block being compressed. */
const W = new Int32Array(64);
/** The hash being computed. */
const H = new Int32Array(8);

/** FIPS 180-4, 6.2.2: one block (W[0..15]) on the hash value `from`, into `to` (may be `from`). */
function compress(from: Int32Array, to: Int32Array): void {
  const w = W;
  for (let t = 16; t < 64; t++) {
    const x = w[t - 15]!;
    const y = w[t - 2]!;
    const s0 = ((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3);
    const s1 = ((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^ (y >>> 10);
    w[t] = (s1 + w[t - 7]! + s0 + w[t - 16]!) | 0;
  }
  let a = from[0]!;
  let b = from[1]!;
  let c = from[2]!;
  let d = from[3]!;
  let e = from[4]!;
  let f = from[5]!;
  let g = from[6]!;
  let h = from[7]!;
  let s0: number;
  let s1: number;
  let t1: number;
  // Eight rounds per turn, each naming the working variables one further along rather than
  // moving all eight (a round's new e is d + T1, its new a is T1 + T2, put in the variable that
  // h leaves): faster in V8, as are Ch(e, f, g) written g ^ (e & (f ^ g)) and Maj(a, b, c)
  // written (a & b) | (c & (a | b)), the same functions in fewer operations.
  for (let t = 0; t < 64; t += 8) {
    s1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
    t1 = (h + s1 + (g ^ (e & (f ^ g))) + K[t + 0]! + w[t + 0]!) | 0;
    s0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
    d = (d + t1) | 0;
    h = (t1 + s0 + ((a & b) | (c & (a | b)))) | 0;
    s1 = ((d >>> 6) | (d << 26)) ^ ((d >>> 11) | (d << 21)) ^ ((d >>> 25) | (d << 7));
    t1 = (g + s1 + (f ^ (d & (e ^ f))) + K[t + 1]! + w[t + 1]!) | 0;
    s0 = ((h >>> 2) | (h << 30)) ^ ((h >>> 13) | (h << 19)) ^ ((h >>> 22) | (h << 10));
    c = (c + t1) | 0;
    g = (t1 + s0 + ((h & a) | (b & (h | a)))) | 0;
    s1 = ((c >>> 6) | (c << 26)) ^ ((c >>> 11) | (c << 21)) ^ ((c >>> 25) | (c << 7));
    t1 = (f + s1 + (e ^ (c & (d ^ e))) + K[t + 2]! + w[t + 2]!) | 0;
    s0 = ((g >>> 2) | (g << 30)) ^ ((g >>> 13) | (g << 19)) ^ ((g >>> 22) | (g << 10));
    b = (b + t1) | 0;
    f = (t1 + s0 + ((g & h) | (a & (g | h)))) | 0;
    s1 = ((b >>> 6) | (b << 26)) ^ ((b >>> 11) | (b << 21)) ^ ((b >>> 25) | (b << 7));
    t1 = (e + s1 + (d ^ (b & (c ^ d))) + K[t + 3]! + w[t + 3]!) | 0;
    s0 = ((f >>> 2) | (f << 30)) ^ ((f >>> 13) | (f << 19)) ^ ((f >>> 22) | (f << 10));
    a = (a + t1) | 0;
    e = (t1 + s0 + ((f & g) | (h & (f | g)))) | 0;
    s1 = ((a >>> 6) | (a << 26)) ^ ((a >>> 11) | (a << 21)) ^ ((a >>> 25) | (a << 7));
    t1 = (d + s1 + (c ^ (a & (b ^ c))) + K[t + 4]! + w[t + 4]!) | 0;
    s0 = ((e >>> 2) | (e << 30)) ^ ((e >>> 13) | (e << 19)) ^ ((e >>> 22) | (e << 10));
    h = (h + t1) | 0;
    d = (t1 + s0 + ((e & f) | (g & (e | f)))) | 0;
    s1 = ((h >>> 6) | (h << 26)) ^ ((h >>> 11) | (h << 21)) ^ ((h >>> 25) | (h << 7));
    t1 = (c + s1 + (b ^ (h & (a ^ b))) + K[t + 5]! + w[t + 5]!) | 0;
    s0 = ((d >>> 2) | (d << 30)) ^ ((d >>> 13) | (d << 19)) ^ ((d >>> 22) | (d << 10));
    g = (g + t1) | 0;
    c = (t1 + s0 + ((d & e) | (f & (d | e)))) | 0;
    s1 = ((g >>> 6) | (g << 26)) ^ ((g >>> 11) | (g << 21)) ^ ((g >>> 25) | (g << 7));
    t1 = (b + s1 + (a ^ (g & (h ^ a))) + K[t + 6]! + w[t + 6]!) | 0;
    s0 = ((c >>> 2) | (c << 30)) ^ ((c >>> 13) | (c << 19)) ^ ((c >>> 22) | (c << 10));
    f = (f + t1) | 0;
    b = (t1 + s0 + ((c & d) | (e & (c | d)))) | 0;
    s1 = ((f >>> 6) | (f << 26)) ^ ((f >>> 11) | (f << 21)) ^ ((f >>> 25) | (f << 7));
    t1 = (a + s1 + (h ^ (f & (g ^ h))) + K[t + 7]! + w[t + 7]!) | 0;
    s0 = ((b >>> 2) | (b << 30)) ^ ((b >>> 13) | (b << 19)) ^ ((b >>> 22) | (b << 10));
    e = (e + t1) | 0;
    a = (t1 + s0 + ((b & c) | (d & (b | c)))) | 0;
  }
  to[0] = (from[0]! + a) | 0;
  to[1] = (from[1]! + b) | 0;
  to[2] = (from[2]! + c) | 0;
  to[3] = (from[3]! + d) | 0;
  to[4] = (from[4]! + e) | 0;
  to[5] = (from[5]! + f) | 0;
  to[6] = (from[6]! + g) | 0;
  to[7] = (from[7]! + h) | 0;
}

/**
 * FIPS 180-4, 5.1.1 and 6.2: hashes `bytes[start..end)` on the hash value `from`, the state after
 * `before` bytes already hashed (the IV and 0; or an HMAC key's state and 64), into H. Up to
 * 2^32 - 1 bytes in all.
 */
function hashInto(from: Int32Array, bytes: Uint8Array, start: number, end: number, before: number): void {
  const w = W;
  let state = from;
  let p = start;
  for (; p + BLOCK_BYTES <= end; p += BLOCK_BYTES) {
    for (let i = 0; i < 16; i++) {
      const q = p + 4 * i;
      w[i] = (bytes[q]! << 24) | (bytes[q + 1]! << 16) | (bytes[q + 2]! << 8) | bytes[q + 3]!;
    }
    compress(state, H);
    state = H;
  }
  // The last bytes, then a 1 bit, zeros, and the length in bits as 64 bits: one block, or two
  // when fewer than 9 bytes are left for the 1 bit and the length.
  const rest = end - p;
  const whole = rest >> 2;
  let i = 0;
  for (; i < whole; i++) {
    const q = p + 4 * i;
    w[i] = (bytes[q]! << 24) | (bytes[q + 1]! << 16) | (bytes[q + 2]! << 8) | bytes[q + 3]!;
  }
  let last = 0x80 << (24 - 8 * (rest & 3));
  for (let j = 0, q = p + 4 * whole; j < (rest & 3); j++) last |= bytes[q + j]! << (24 - 8 * j);
  w[i++] = last;
  for (; i < 16; i++) w[i] = 0;
  if (rest >= BLOCK_BYTES - 8) {
    compress(state, H);
    state = H;
    for (i = 0; i < 14; i++) w[i] = 0;
  }
  const length = before + end - start;
  w[14] = length >>> 29;
  w[15] = length << 3;
  compress(state, H);
}

/** A key's HMAC states: made once per key, then used for every tag. */
export interface HmacKey {
  /** SHA-256's state after the block key XOR ipad (0x36…). */
  readonly inner: Int32Array;
  /** SHA-256's state after the block key XOR opad (0x5c…). */
  readonly outer: Int32Array;
}

/** RFC 2104, section 2: a key longer than a block is hashed first, a shorter one padded with zeros. */
export function hmacKey(key: Uint8Array): HmacKey {
  const block = new Uint8Array(BLOCK_BYTES);
  if (key.length > BLOCK_BYTES) {
    hashInto(IV, key, 0, key.length, 0);
    for (let i = 0; i < 8; i++) {
      const v = H[i]!;
      block[4 * i] = v >>> 24;
      block[4 * i + 1] = v >>> 16;
      block[4 * i + 2] = v >>> 8;
      block[4 * i + 3] = v;
    }
  } else {
    block.set(key);
  }
  const state = (pad: number): Int32Array => {
    for (let i = 0; i < 16; i++) {
      const q = 4 * i;
      W[i] = ((block[q]! << 24) | (block[q + 1]! << 16) | (block[q + 2]! << 8) | block[q + 3]!) ^ pad;
    }
    const words = new Int32Array(8);
    compress(IV, words);
    return words;
  };
  const prepared = { inner: state(0x36363636), outer: state(0x5c5c5c5c) };
  // Nothing of the key stays in the scratch words or the block.
  block.fill(0);
  W.fill(0);
  H.fill(0);
  return prepared;
}

/** HMAC-SHA-256 of `bytes[start..end)` into H. */
function macInto(key: HmacKey, bytes: Uint8Array, start: number, end: number): void {
  hashInto(key.inner, bytes, start, end, BLOCK_BYTES);
  // The outer hash of the inner one: 32 bytes, the 1 bit, and the length, 64 + 32 bytes in bits.
  const w = W;
  const h = H;
  for (let i = 0; i < 8; i++) w[i] = h[i]!;
  w[8] = 0x80000000 | 0;
  for (let i = 9; i < 15; i++) w[i] = 0;
  w[15] = (BLOCK_BYTES + HMAC_BYTES) * 8;
  compress(key.outer, h);
}

/**
 * Whether `tag[tagOffset..tagOffset + 32)` is the HMAC-SHA-256 of `bytes[start..end)`. Every
 * word of the tag is compared whatever the others hold (no early exit): the time taken depends
 * on the message's length only.
 */
export function verifyHmac(
  key: HmacKey,
  bytes: Uint8Array,
  start: number,
  end: number,
  tag: Uint8Array,
  tagOffset: number,
): boolean {
  if (start < 0 || end > bytes.length || start > end || tagOffset < 0 || tagOffset + HMAC_BYTES > tag.length)
    return false;
  macInto(key, bytes, start, end);
  let diff = 0;
  for (let i = 0; i < 8; i++) {
    const q = tagOffset + 4 * i;
    diff |= H[i]! ^ ((tag[q]! << 24) | (tag[q + 1]! << 16) | (tag[q + 2]! << 8) | tag[q + 3]!);
  }
  return diff === 0;
}

/** The HMAC-SHA-256 of `bytes`, as a new array (for tests and tools; signing uses node:crypto). */
export function hmac(key: HmacKey, bytes: Uint8Array): Uint8Array {
  macInto(key, bytes, 0, bytes.length);
  const out = new Uint8Array(HMAC_BYTES);
  for (let i = 0; i < 8; i++) {
    const v = H[i]!;
    out[4 * i] = v >>> 24;
    out[4 * i + 1] = v >>> 16;
    out[4 * i + 2] = v >>> 8;
    out[4 * i + 3] = v;
  }
  return out;
}
