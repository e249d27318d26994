/*
 * hbgen: the benchmark's UDP load generator for the hb monitor, in C so that one core can send
 * far more heartbeats than the monitor can take (the JavaScript generator, bench/udp-gen.ts,
 * cannot saturate it). A development tool: bench/cgen.ts builds it with the system compiler;
 * installing hb itself never needs one.
 *
 * It simulates --nodes N nodes with fixed-width ids (prefix + zero-padded index, so every
 * datagram of a run has the same length) sending valid hb datagrams (docs/PROTOCOL.md,
 * version 1: normal beats, incarnation fixed for the run, sequence from 1 counting every
 * datagram of a node), round-robin over the nodes at --rate R datagrams per second in total
 * (each node every N/R s; 0 = as fast as possible), for --seconds S. With --key-file and
 * --key-id the datagrams carry an HMAC-SHA-256 tag (SHA-256 and HMAC are implemented here, so
 * there is no dependency on OpenSSL). Datagrams go out --batch B at a time with sendmmsg, or
 * with --gso as UDP GSO super-datagrams (one message per up to 64 datagrams).
 *
 * With --stop-after S --stop-count K, the first K nodes of a shuffled order (fixed seed) fall
 * silent after S seconds: the node-failure scenario of detection measurements.
 *
 * Output on stdout, one JSON object per line, flushed at once:
 *   {"ready":true,...}                         the socket is set up and sending starts
 *   {"stopped":[ids],"monoNs":T,"wallMs":W}    at --stop-after (CLOCK_MONOTONIC, wall clock)
 *   {"sent":N,"seconds":X,"errors":E}          at the end (also on SIGTERM / SIGINT)
 * sent counts the datagrams the kernel took, errors those whose send failed (ENOBUFS, EAGAIN,
 * ECONNREFUSED, ...: counted, not fatal); datagrams of stopped nodes are in neither. Problems with the options or the key file: a message on stderr and exit status 2.
 *
 * Build: cc -O2 -Wall -Wextra -std=gnu11 -o hbgen hbgen.c      Check: hbgen --self-test
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h> /* isfinite (a macro: no libm) */
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#ifndef SOL_UDP
#define SOL_UDP 17
#endif
#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif

/* ---- The wire format (docs/PROTOCOL.md) ---- */

#define HB_VERSION 1
#define KIND_BEAT 1
#define FLAG_AUTH 0x01
#define HEADER_BYTES 21 /* magic, version, kind, flags, incarnation, sequence */
#define MAX_ID_BYTES 64
#define MAX_KEY_ID_BYTES 32
#define TAG_BYTES 32
#define MAX_DATAGRAM 151 /* 22 + 64 + 1 + 32 + 32 */
#define MAX_U53 ((UINT64_C(1) << 53) - 1)
#define MIN_KEY_BYTES 16
#define MAX_KEY_FILE_BYTES 4096
/* UDP_MAX_SEGMENTS in Linux (64 until 6.x raised it to 128): segments per GSO message. */
#define GSO_MAX_SEGMENTS 64
/* When pacing, wake at most about once per this many ns (more often only at low rates). */
#define TICK_NS 1000000.0

/* ---- SHA-256 (FIPS 180-4) and HMAC (RFC 2104) ---- */

typedef struct {
    uint32_t h[8];
    uint64_t bytes; /* message length so far */
    uint8_t buf[64];
    size_t used; /* bytes waiting in buf */
} sha256_ctx;

static const uint32_t K256[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

static inline uint32_t ror32(uint32_t x, unsigned n) { return (x >> n) | (x << (32 - n)); }

static void sha256_block(uint32_t h[8], const uint8_t p[64])
{
    uint32_t w[64];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 |
               (uint32_t)p[4 * i + 3];
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = ror32(w[i - 15], 7) ^ ror32(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = ror32(w[i - 2], 17) ^ ror32(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
    for (int i = 0; i < 64; i++) {
        uint32_t t1 = hh + (ror32(e, 6) ^ ror32(e, 11) ^ ror32(e, 25)) + ((e & f) ^ (~e & g)) + K256[i] + w[i];
        uint32_t t2 = (ror32(a, 2) ^ ror32(a, 13) ^ ror32(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
        hh = g;
        g = f;
        f = e;
        e = d + t1;
        d = c;
        c = b;
        b = a;
        a = t1 + t2;
    }
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
    h[4] += e;
    h[5] += f;
    h[6] += g;
    h[7] += hh;
}

static void sha256_init(sha256_ctx *c)
{
    static const uint32_t iv[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                   0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    memcpy(c->h, iv, sizeof iv);
    c->bytes = 0;
    c->used = 0;
}

static void sha256_update(sha256_ctx *c, const uint8_t *p, size_t n)
{
    c->bytes += n;
    if (c->used > 0) {
        size_t take = 64 - c->used < n ? 64 - c->used : n;
        memcpy(c->buf + c->used, p, take);
        c->used += take;
        p += take;
        n -= take;
        if (c->used < 64) return;
        sha256_block(c->h, c->buf);
        c->used = 0;
    }
    for (; n >= 64; p += 64, n -= 64) sha256_block(c->h, p);
    memcpy(c->buf, p, n);
    c->used = n;
}

static void sha256_final(sha256_ctx *c, uint8_t out[32])
{
    uint64_t bits = c->bytes * 8;
    c->buf[c->used++] = 0x80;
    if (c->used > 56) {
        memset(c->buf + c->used, 0, 64 - c->used);
        sha256_block(c->h, c->buf);
        c->used = 0;
    }
    memset(c->buf + c->used, 0, 56 - c->used);
    for (int i = 0; i < 8; i++) c->buf[56 + i] = (uint8_t)(bits >> (56 - 8 * i));
    sha256_block(c->h, c->buf);
    for (int i = 0; i < 8; i++) {
        out[4 * i] = (uint8_t)(c->h[i] >> 24);
        out[4 * i + 1] = (uint8_t)(c->h[i] >> 16);
        out[4 * i + 2] = (uint8_t)(c->h[i] >> 8);
        out[4 * i + 3] = (uint8_t)c->h[i];
    }
}

/* A key's inner and outer hash states after their padded-key block, computed once per run. */
typedef struct {
    sha256_ctx inner, outer;
} hmac_key;

static void hmac_init(hmac_key *k, const uint8_t *key, size_t n)
{
    uint8_t block[64] = {0};
    if (n > 64) {
        sha256_ctx c;
        sha256_init(&c);
        sha256_update(&c, key, n);
        sha256_final(&c, block);
    } else {
        memcpy(block, key, n);
    }
    uint8_t pad[64];
    for (int i = 0; i < 64; i++) pad[i] = block[i] ^ 0x36;
    sha256_init(&k->inner);
    sha256_update(&k->inner, pad, 64);
    for (int i = 0; i < 64; i++) pad[i] = block[i] ^ 0x5c;
    sha256_init(&k->outer);
    sha256_update(&k->outer, pad, 64);
}

static void hmac_sha256(const hmac_key *k, const uint8_t *msg, size_t n, uint8_t out[32])
{
    uint8_t inner[32];
    sha256_ctx c = k->inner;
    sha256_update(&c, msg, n);
    sha256_final(&c, inner);
    c = k->outer;
    sha256_update(&c, inner, sizeof inner);
    sha256_final(&c, out);
}

/* ---- Datagrams ---- */

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (56 - 8 * i));
}

/* Length of a datagram with an id of id_len bytes; key_id_len 0 means unsigned. */
static size_t datagram_length(size_t id_len, size_t key_id_len)
{
    return HEADER_BYTES + 1 + id_len + (key_id_len > 0 ? 1 + key_id_len + TAG_BYTES : 0);
}

/*
 * Writes a beat into out (datagram_length bytes): magic "hb", version 1, kind beat, flags (bit 0
 * when signed), incarnation, sequence, node id length and id, then when signed the key id length,
 * the key id and the HMAC-SHA-256 tag over every byte before the tag.
 */
static void encode_beat(uint8_t *out, uint64_t incarnation, uint64_t sequence, const char *id, size_t id_len,
                        const char *key_id, size_t key_id_len, const hmac_key *key)
{
    out[0] = 0x68;
    out[1] = 0x62;
    out[2] = HB_VERSION;
    out[3] = KIND_BEAT;
    out[4] = key_id_len > 0 ? FLAG_AUTH : 0;
    put_u64(out + 5, incarnation);
    put_u64(out + 13, sequence);
    out[21] = (uint8_t)id_len;
    memcpy(out + 22, id, id_len);
    if (key_id_len > 0) {
        size_t at = 22 + id_len;
        out[at] = (uint8_t)key_id_len;
        memcpy(out + at + 1, key_id, key_id_len);
        hmac_sha256(key, out, at + 1 + key_id_len, out + at + 1 + key_id_len);
    }
}

/* The id alphabet: [A-Za-z0-9._-], the first character a letter or digit. */
static bool valid_id_chars(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char b = (unsigned char)s[i];
        if ((b >= '0' && b <= '9') || (b >= 'A' && b <= 'Z') || (b >= 'a' && b <= 'z')) continue;
        if (i == 0 || !(b == '.' || b == '_' || b == '-')) return false;
    }
    return true;
}

/* ---- Key files, read as the monitor reads them (src/wire/key-file.ts) ---- */

/*
 * Length of the UTF-8 sequence at p (n bytes left) if it encodes a code point that JavaScript's
 * String.prototype.trim removes (WhiteSpace and LineTerminator), else 0.
 */
static size_t js_space_at(const uint8_t *p, size_t n)
{
    uint8_t b = p[0];
    if (b == 0x09 || b == 0x0a || b == 0x0b || b == 0x0c || b == 0x0d || b == 0x20) return 1;
    if (n >= 2 && b == 0xc2 && p[1] == 0xa0) return 2; /* U+00A0 */
    if (n < 3) return 0;
    uint32_t cp = (uint32_t)(b & 0x0f) << 12 | (uint32_t)(p[1] & 0x3f) << 6 | (p[2] & 0x3f);
    if ((b & 0xf0) != 0xe0 || (p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80) return 0;
    if (cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200a) || cp == 0x2028 || cp == 0x2029 || cp == 0x202f ||
        cp == 0x205f || cp == 0x3000 || cp == 0xfeff)
        return 3;
    return 0;
}

/* Is p[0..n) well-formed UTF-8 (what Buffer.toString("utf8") leaves unchanged)? */
static bool valid_utf8(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n;) {
        uint8_t b = p[i];
        size_t len;
        uint32_t cp, min;
        if (b < 0x80) {
            i++;
            continue;
        } else if ((b & 0xe0) == 0xc0) {
            len = 2, cp = b & 0x1f, min = 0x80;
        } else if ((b & 0xf0) == 0xe0) {
            len = 3, cp = b & 0x0f, min = 0x800;
        } else if ((b & 0xf8) == 0xf0) {
            len = 4, cp = b & 0x07, min = 0x10000;
        } else {
            return false;
        }
        if (i + len > n) return false;
        for (size_t j = 1; j < len; j++) {
            if ((p[i + j] & 0xc0) != 0x80) return false;
            cp = cp << 6 | (p[i + j] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
        i += len;
    }
    return true;
}

/* The secret: the file's text with surrounding white space removed (as JavaScript's trim). */
static int read_key_file(const char *path, uint8_t *out, size_t *out_len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "hbgen: %s: %s\n", path, strerror(errno));
        return -1;
    }
    uint8_t buf[MAX_KEY_FILE_BYTES + 1];
    size_t n = fread(buf, 1, sizeof buf, f);
    bool failed = ferror(f) != 0;
    fclose(f);
    if (failed || n > MAX_KEY_FILE_BYTES) {
        fprintf(stderr, "hbgen: %s: %s\n", path, failed ? "read error" : "over 4096 bytes, not a key file");
        return -1;
    }
    if (!valid_utf8(buf, n)) {
        fprintf(stderr, "hbgen: %s is not valid UTF-8 (the monitor would alter such a key)\n", path);
        return -1;
    }
    size_t start = 0, end = n, len;
    while (start < end && (len = js_space_at(buf + start, end - start)) > 0) start += len;
    for (bool trimmed = true; trimmed && end > start;) {
        trimmed = false;
        for (size_t back = 1; back <= 3 && back <= end - start; back++) {
            if (js_space_at(buf + end - back, back) == back) {
                end -= back;
                trimmed = true;
                break;
            }
        }
    }
    if (end - start < MIN_KEY_BYTES) {
        fprintf(stderr, "hbgen: %s holds %zu bytes; keys need at least %d\n", path, end - start, MIN_KEY_BYTES);
        return -1;
    }
    memcpy(out, buf + start, end - start);
    *out_len = end - start;
    return 0;
}

/* ---- Self test: RFC 4231 and the vectors of docs/PROTOCOL.md ---- */

static void to_hex(const uint8_t *p, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++) sprintf(out + 2 * i, "%02x", p[i]);
}

static int self_test(void)
{
    int failures = 0;
    char hex[2 * MAX_DATAGRAM + 1];
    uint8_t out[MAX_DATAGRAM];
    hmac_key k;

    hmac_init(&k, (const uint8_t *)"Jefe", 4); /* RFC 4231 test case 2 */
    hmac_sha256(&k, (const uint8_t *)"what do ya want for nothing?", 28, out);
    to_hex(out, 32, hex);
    failures += strcmp(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843") != 0;

    uint8_t long_key[131]; /* RFC 4231 test case 6: a key longer than the block */
    memset(long_key, 0xaa, sizeof long_key);
    hmac_init(&k, long_key, sizeof long_key);
    hmac_sha256(&k, (const uint8_t *)"Test Using Larger Than Block-Size Key - Hash Key First", 54, out);
    to_hex(out, 32, hex);
    failures += strcmp(hex, "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54") != 0;

    encode_beat(out, 1795499200523, 1, "3", 1, NULL, 0, NULL); /* vector "beat" */
    to_hex(out, datagram_length(1, 0), hex);
    failures += strcmp(hex, "68620101000000" "01a20c17900b" "0000000000000001" "01" "33") != 0;

    const char *secret = "hb-example-key-0123456789abcdef"; /* vector "authenticated beat" */
    hmac_init(&k, (const uint8_t *)secret, strlen(secret));
    encode_beat(out, 1795499200565, 7, "logs-1", 6, "k1", 2, &k);
    to_hex(out, datagram_length(6, 2), hex);
    failures += strcmp(hex, "68620101010000" "01a20c179035" "0000000000000007" "06" "6c6f67732d31" "02" "6b31"
                            "70d633d4da9e8e267cb813013b854ba9b4d6a5316fcb0be426a89cbd4da72e9a") != 0;

    printf("{\"selfTest\":%s,\"failures\":%d}\n", failures == 0 ? "true" : "false", failures);
    return failures == 0 ? 0 : 1;
}

/* ---- Options ---- */

struct options {
    const char *host;
    const char *port;
    uint64_t nodes;
    const char *prefix;
    double rate;
    double seconds;
    const char *key_file;
    const char *key_id;
    uint64_t incarnation;
    bool incarnation_set;
    double stop_after; /* < 0: never */
    uint64_t stop_count;
    unsigned batch;
    bool gso;
};

static void usage(FILE *to)
{
    fputs("usage: hbgen --port PORT [--host 127.0.0.1] [--nodes 1] [--prefix n] [--rate 1000 (0: flat out)]\n"
          "             [--seconds 10] [--key-file FILE [--key-id k1]] [--incarnation MS]\n"
          "             [--stop-after S --stop-count K] [--batch 64] [--gso]\n"
          "       hbgen --self-test\n",
          to);
}

static _Noreturn void bad_option(const char *name, const char *value, const char *why)
{
    fprintf(stderr, "hbgen: --%s%s%s: %s\n", name, value[0] != '\0' ? " " : "", value, why);
    usage(stderr);
    exit(2);
}

static uint64_t parse_uint(const char *name, const char *s, uint64_t min, uint64_t max)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (s[0] < '0' || s[0] > '9' || *end != '\0' || errno != 0 || v < min || v > max) {
        char why[96];
        snprintf(why, sizeof why, "not an integer from %" PRIu64 " to %" PRIu64, min, max);
        bad_option(name, s, why);
    }
    return v;
}

static double parse_number(const char *name, const char *s, double max)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end != '\0' || errno != 0 || !isfinite(v) || v < 0 || v > max) {
        char why[64];
        snprintf(why, sizeof why, "not a number from 0 to %.0f", max);
        bad_option(name, s, why);
    }
    return v;
}

static void parse_options(int argc, char **argv, struct options *o)
{
    static const struct option longs[] = {
        {"host", required_argument, NULL, 'h'},        {"port", required_argument, NULL, 'p'},
        {"nodes", required_argument, NULL, 'n'},       {"prefix", required_argument, NULL, 'P'},
        {"rate", required_argument, NULL, 'r'},        {"seconds", required_argument, NULL, 's'},
        {"key-file", required_argument, NULL, 'k'},    {"key-id", required_argument, NULL, 'K'},
        {"incarnation", required_argument, NULL, 'i'}, {"stop-after", required_argument, NULL, 'a'},
        {"stop-count", required_argument, NULL, 'c'},  {"batch", required_argument, NULL, 'b'},
        {"gso", no_argument, NULL, 'g'},               {"self-test", no_argument, NULL, 'T'},
        {"help", no_argument, NULL, 'H'},              {NULL, 0, NULL, 0},
    };
    *o = (struct options){.host = "127.0.0.1", .nodes = 1, .prefix = "n", .rate = 1000, .seconds = 10,
                          .stop_after = -1, .batch = 64};
    for (int c; (c = getopt_long(argc, argv, "", longs, NULL)) != -1;) {
        switch (c) {
        case 'h': o->host = optarg; break;
        case 'p': o->port = optarg; parse_uint("port", optarg, 1, 65535); break;
        case 'n': o->nodes = parse_uint("nodes", optarg, 1, UINT32_MAX); break;
        case 'P': o->prefix = optarg; break;
        case 'r': o->rate = parse_number("rate", optarg, 1e9); break;
        case 's': o->seconds = parse_number("seconds", optarg, 1e7); break;
        case 'k': o->key_file = optarg; break;
        case 'K': o->key_id = optarg; break;
        case 'i':
            o->incarnation = parse_uint("incarnation", optarg, 0, MAX_U53);
            o->incarnation_set = true;
            break;
        case 'a': o->stop_after = parse_number("stop-after", optarg, 1e7); break;
        case 'c': o->stop_count = parse_uint("stop-count", optarg, 0, UINT32_MAX); break;
        case 'b': o->batch = (unsigned)parse_uint("batch", optarg, 1, 1024); break;
        case 'g': o->gso = true; break;
        case 'T': exit(self_test());
        case 'H': usage(stdout); exit(0);
        default: usage(stderr); exit(2);
        }
    }
    if (optind < argc) {
        fprintf(stderr, "hbgen: unexpected argument %s\n", argv[optind]);
        usage(stderr);
        exit(2);
    }
    if (o->port == NULL) bad_option("port", "", "required");
    size_t prefix_len = strlen(o->prefix);
    if (prefix_len > 0 && !valid_id_chars(o->prefix, prefix_len))
        bad_option("prefix", o->prefix, "must be of [A-Za-z0-9._-], starting with a letter or digit");
    if (o->key_id != NULL && o->key_file == NULL) bad_option("key-id", o->key_id, "needs --key-file");
    if (o->key_file != NULL && o->key_id == NULL) o->key_id = "k1";
    if (o->key_id != NULL) {
        size_t n = strlen(o->key_id);
        if (n == 0 || n > MAX_KEY_ID_BYTES || !valid_id_chars(o->key_id, n))
            bad_option("key-id", o->key_id, "must be 1-32 of [A-Za-z0-9._-], starting with a letter or digit");
    }
    if (o->stop_count > 0 && o->stop_after < 0) bad_option("stop-count", "", "needs --stop-after");
    if (o->stop_count > o->nodes) o->stop_count = o->nodes;
}

/* ---- Clocks, signals ---- */

static int64_t clock_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void sleep_until(int64_t mono_ns)
{
    struct timespec ts = {.tv_sec = mono_ns / 1000000000, .tv_nsec = mono_ns % 1000000000};
    clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL); /* EINTR: the caller looks again */
}

static volatile sig_atomic_t terminated = 0;
static void on_signal(int sig)
{
    (void)sig;
    terminated = 1;
}

/* ---- Sending ---- */

struct generator {
    int fd;
    uint64_t nodes;
    size_t id_len;
    char *ids; /* nodes * id_len bytes, no terminators */
    uint8_t *stopped;
    uint64_t incarnation;
    const char *key_id;
    size_t key_id_len;
    hmac_key key;
    size_t length; /* of every datagram */
    unsigned batch;
    bool gso;
    bool gso_confirmed; /* a GSO send has succeeded: later failures are counted, not a fallback */
    uint8_t *buf;       /* batch * length bytes */
    struct mmsghdr *msgs;
    struct iovec *iovs;
    uint64_t sent, errors;
};

/* Encodes the datagrams of slots *slot.. (below end, skipping stopped nodes), at most g->batch. */
static unsigned fill(struct generator *g, uint64_t *slot, uint64_t end)
{
    unsigned n = 0;
    for (; *slot < end && n < g->batch; ++*slot) {
        uint64_t node = *slot % g->nodes;
        if (g->stopped[node]) continue;
        encode_beat(g->buf + (size_t)n * g->length, g->incarnation, *slot / g->nodes + 1, g->ids + node * g->id_len,
                    g->id_len, g->key_id, g->key_id_len, &g->key);
        n++;
    }
    return n;
}

/* Sends the n datagrams in g->buf: one message each, or GSO messages of up to 64 each. */
static void send_batch(struct generator *g, unsigned n)
{
    unsigned per = g->gso ? GSO_MAX_SEGMENTS : 1, messages = 0;
    for (unsigned first = 0; first < n; first += per, messages++) {
        unsigned count = n - first < per ? n - first : per;
        g->iovs[messages] = (struct iovec){.iov_base = g->buf + (size_t)first * g->length,
                                           .iov_len = (size_t)count * g->length};
        g->msgs[messages] = (struct mmsghdr){.msg_hdr = {.msg_iov = &g->iovs[messages], .msg_iovlen = 1}};
    }
    for (unsigned done = 0; done < messages;) {
        int r = sendmmsg(g->fd, g->msgs + done, messages - done, 0);
        if (r > 0) {
            for (unsigned i = 0; i < (unsigned)r; i++) g->sent += g->iovs[done + i].iov_len / g->length;
            done += (unsigned)r;
            if (g->gso) g->gso_confirmed = true;
            continue;
        }
        if (r < 0 && errno == EINTR) continue;
        if (g->gso && !g->gso_confirmed && (errno == EINVAL || errno == EIO || errno == EOPNOTSUPP)) {
            /* The route cannot take GSO (e.g. no checksum offload): plain datagrams from now on. */
            int off = 0;
            fprintf(stderr, "hbgen: UDP GSO send failed (%s); using sendmmsg\n", strerror(errno));
            setsockopt(g->fd, SOL_UDP, UDP_SEGMENT, &off, sizeof off);
            g->gso = false;
            send_batch(g, n); /* nothing of this batch went out: done is 0 until a GSO send succeeds */
            return;
        }
        g->errors += g->iovs[done].iov_len / g->length; /* ENOBUFS, EAGAIN, ECONNREFUSED, ... */
        done++;
    }
}

static int open_socket(const struct options *o)
{
    struct addrinfo hints = {.ai_socktype = SOCK_DGRAM, .ai_flags = AI_NUMERICSERV}, *ai;
    int rc = getaddrinfo(o->host, o->port, &hints, &ai);
    if (rc != 0) {
        fprintf(stderr, "hbgen: %s: %s\n", o->host, gai_strerror(rc));
        return -1;
    }
    int fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
    if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        fprintf(stderr, "hbgen: %s port %s: %s\n", o->host, o->port, strerror(errno));
        freeaddrinfo(ai);
        return -1;
    }
    freeaddrinfo(ai);
    int sndbuf = 4 << 20;
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf); /* best effort */
    return fd;
}

/* The first K of a Fisher-Yates shuffle (splitmix64, fixed seed) stop; prints their ids. */
static void stop_nodes(struct generator *g, uint64_t count)
{
    uint32_t *order = malloc(g->nodes * sizeof *order);
    if (order == NULL) {
        fputs("hbgen: out of memory\n", stderr);
        exit(1);
    }
    for (uint64_t i = 0; i < g->nodes; i++) order[i] = (uint32_t)i;
    uint64_t state = 0x6862;
    for (uint64_t i = g->nodes - 1; i > 0; i--) {
        uint64_t z = (state += UINT64_C(0x9e3779b97f4a7c15));
        z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
        z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
        z ^= z >> 31;
        uint64_t j = z % (i + 1);
        uint32_t t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    int64_t mono = clock_ns(CLOCK_MONOTONIC), wall = clock_ns(CLOCK_REALTIME);
    fputs("{\"stopped\":[", stdout);
    for (uint64_t i = 0; i < count; i++) {
        g->stopped[order[i]] = 1;
        printf("%s\"%.*s\"", i > 0 ? "," : "", (int)g->id_len, g->ids + (size_t)order[i] * g->id_len);
    }
    printf("],\"monoNs\":%" PRId64 ",\"wallMs\":%" PRId64 "}\n", mono, wall / 1000000);
    fflush(stdout);
    free(order);
}

int main(int argc, char **argv)
{
    struct options o;
    parse_options(argc, argv, &o);

    struct generator g = {.nodes = o.nodes, .batch = o.batch, .key_id = o.key_id};
    g.key_id_len = o.key_id == NULL ? 0 : strlen(o.key_id);
    if (o.key_file != NULL) {
        uint8_t secret[MAX_KEY_FILE_BYTES];
        size_t secret_len;
        if (read_key_file(o.key_file, secret, &secret_len) != 0) return 2;
        hmac_init(&g.key, secret, secret_len);
        memset(secret, 0, sizeof secret);
    }
    g.incarnation = o.incarnation_set ? o.incarnation : (uint64_t)(clock_ns(CLOCK_REALTIME) / 1000000);

    /* Fixed-width ids: the prefix and the index, zero-padded to the digits of nodes - 1. */
    int width = snprintf(NULL, 0, "%" PRIu64, o.nodes - 1);
    size_t prefix_len = strlen(o.prefix);
    g.id_len = prefix_len + (size_t)width;
    if (g.id_len > MAX_ID_BYTES) bad_option("prefix", o.prefix, "makes node ids longer than 64 bytes");
    g.length = datagram_length(g.id_len, g.key_id_len);
    g.ids = malloc(g.nodes * g.id_len + 1 + MAX_ID_BYTES);
    g.stopped = calloc(g.nodes, 1);
    g.buf = malloc((size_t)g.batch * g.length);
    g.msgs = calloc(g.batch, sizeof *g.msgs);
    g.iovs = calloc(g.batch, sizeof *g.iovs);
    if (g.ids == NULL || g.stopped == NULL || g.buf == NULL || g.msgs == NULL || g.iovs == NULL) {
        fputs("hbgen: out of memory\n", stderr);
        return 1;
    }
    for (uint64_t i = 0; i < g.nodes; i++)
        sprintf(g.ids + i * g.id_len, "%s%0*" PRIu64, o.prefix, width, i); /* the NUL lands on the next id */

    g.fd = open_socket(&o);
    if (g.fd < 0) return 2;
    if (o.gso) {
        int size = (int)g.length;
        g.gso = setsockopt(g.fd, SOL_UDP, UDP_SEGMENT, &size, sizeof size) == 0;
        if (!g.gso) fprintf(stderr, "hbgen: UDP_SEGMENT unavailable (%s); using sendmmsg\n", strerror(errno));
    }

    struct sigaction sa = {.sa_handler = on_signal}; /* no SA_RESTART: a sleep ends at once */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    printf("{\"ready\":true,\"incarnation\":%" PRIu64 ",\"bytes\":%zu,\"gso\":%s}\n", g.incarnation, g.length,
           g.gso ? "true" : "false");
    fflush(stdout);

    const int64_t t0 = clock_ns(CLOCK_MONOTONIC);
    const int64_t t_end = t0 + (int64_t)(o.seconds * 1e9);
    int64_t t_stop = o.stop_count > 0 ? t0 + (int64_t)(o.stop_after * 1e9) : INT64_MAX;
    const bool paced = o.rate > 0;
    /* Paced: slot k (node k mod N, sequence k div N + 1) is due at t0 + k / rate, k < seconds * rate. */
    uint64_t total = paced ? (uint64_t)(o.seconds * o.rate) : UINT64_MAX;
    if (paced && (double)total < o.seconds * o.rate) total++; /* ceil, without libm */
    const double ns_per_slot = paced ? 1e9 / o.rate : 0;
    /* Slots per wake-up: a millisecond's worth at high rates, one at low rates, at most a batch. */
    double per_tick = o.rate * TICK_NS / 1e9;
    const uint64_t step = per_tick < 1 ? 1 : per_tick > g.batch ? g.batch : (uint64_t)per_tick;
    uint64_t slot = 0;

    while (!terminated) {
        int64_t now = clock_ns(CLOCK_MONOTONIC);
        if (now >= t_stop) {
            stop_nodes(&g, o.stop_count);
            t_stop = INT64_MAX;
        }
        if (!paced) {
            if (now >= t_end) break;
            unsigned n = fill(&g, &slot, slot + g.nodes); /* at most a round: all may have stopped */
            if (n > 0) send_batch(&g, n);
            continue;
        }
        uint64_t due = (uint64_t)((double)(now - t0) / ns_per_slot) + 1;
        if (due > total) due = total;
        if (slot < due) {
            unsigned n = fill(&g, &slot, due);
            if (n > 0) send_batch(&g, n);
            continue; /* more may be due (after a stall): look at the clock again */
        }
        if (slot >= total) { /* all sent: the run still lasts its seconds */
            if (now >= t_end) break;
            sleep_until(t_end < t_stop ? t_end : t_stop);
            continue;
        }
        uint64_t target = slot + step - 1 < total ? slot + step - 1 : total - 1;
        int64_t wake = t0 + (int64_t)((double)target * ns_per_slot);
        if (wake > t_stop) wake = t_stop;
        sleep_until(wake);
    }

    double seconds = (double)(clock_ns(CLOCK_MONOTONIC) - t0) / 1e9;
    printf("{\"sent\":%" PRIu64 ",\"seconds\":%.3f,\"errors\":%" PRIu64 "}\n", g.sent, seconds, g.errors);
    fflush(stdout);
    close(g.fd);
    return 0;
}
