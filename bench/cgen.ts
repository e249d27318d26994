// The native load generator (bench/hbgen.c): built with the system C compiler on first use and
// cached, then run pinned to the load core like the JavaScript generator (bench/udp-gen.ts), but
// fast enough to saturate the monitor. Only the benchmark needs a compiler; installing hb never does.
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, renameSync, rmSync, statSync } from "node:fs";
import { dirname } from "node:path";
import { LOAD_CPU, here } from "./harness.js";
import { startCommand, type Started } from "./lib.js";

export const GENERATOR_SOURCE = here("hbgen.c");
export const GENERATOR_BINARY = here("../node_modules/.cache/hb-bench/hbgen");
export const CFLAGS = ["-O2", "-Wall", "-Wextra", "-std=gnu11"];
const NO_COMPILER = "the benchmark's load generator needs a C compiler: apt-get install gcc libc6-dev";

/** Compiles bench/hbgen.c unless the cached binary is newer than it; returns the binary's path. */
export function buildGenerator(): string {
  if (
    existsSync(GENERATOR_BINARY) &&
    statSync(GENERATOR_BINARY).mtimeMs >= statSync(GENERATOR_SOURCE).mtimeMs
  )
    return GENERATOR_BINARY;
  mkdirSync(dirname(GENERATOR_BINARY), { recursive: true });
  // Built under a name of its own, then renamed: concurrent builds never run a half-written file.
  const output = `${GENERATOR_BINARY}.${process.pid}.tmp`;
  const compilers =
    process.env.CC !== undefined && process.env.CC !== "" ? [process.env.CC] : ["cc", "gcc", "clang"];
  for (const cc of compilers) {
    const r = spawnSync(cc, [...CFLAGS, "-o", output, GENERATOR_SOURCE], { encoding: "utf8" });
    if ((r.error as NodeJS.ErrnoException | undefined)?.code === "ENOENT") continue;
    if (r.error !== undefined || r.status !== 0) {
      rmSync(output, { force: true });
      const why = r.error?.message ?? (r.stderr.trim() || `exit status ${r.status ?? r.signal}`);
      throw new Error(`${cc} could not build ${GENERATOR_SOURCE}:\n${why}\n(${NO_COMPILER})`);
    }
    if (r.stderr.trim() !== "") process.stderr.write(r.stderr); // warnings: worth seeing
    renameSync(output, GENERATOR_BINARY);
    return GENERATOR_BINARY;
  }
  throw new Error(NO_COMPILER);
}

export interface CLoadOptions {
  port: number;
  /** Distinct node ids: prefix + zero-padded index, all of one width. */
  nodes: number;
  /** Datagrams per second across all nodes, round-robin; 0 = flat out. */
  rate: number;
  seconds: number;
  host?: string | undefined;
  /** Signs with HMAC-SHA-256 using this key file (read as the monitor reads it) under keyId (default k1). */
  keyFile?: string | undefined;
  keyId?: string | undefined;
  prefix?: string | undefined;
  incarnation?: number | undefined;
  /** After stopAfter seconds, stopCount nodes (a fixed shuffled order) fall silent; printed as {"stopped":[...]}. */
  stopAfter?: number | undefined;
  stopCount?: number | undefined;
  /** Datagrams per sendmmsg call (default 64). */
  batch?: number | undefined;
  /** UDP GSO (UDP_SEGMENT), falling back to sendmmsg where the kernel or route refuses it. */
  gso?: boolean | undefined;
}

/** The generator's command-line arguments for `opts`. */
export function cLoadArgs(opts: CLoadOptions): string[] {
  const args = ["--port", String(opts.port), "--nodes", String(opts.nodes)];
  args.push("--rate", String(opts.rate), "--seconds", String(opts.seconds));
  const optional: [string, string | number | undefined][] = [
    ["--host", opts.host],
    ["--key-file", opts.keyFile],
    ["--key-id", opts.keyId],
    ["--prefix", opts.prefix],
    ["--incarnation", opts.incarnation],
    ["--stop-after", opts.stopAfter],
    ["--stop-count", opts.stopCount],
    ["--batch", opts.batch],
  ];
  for (const [flag, value] of optional) if (value !== undefined) args.push(flag, String(value));
  if (opts.gso === true) args.push("--gso");
  return args;
}

/**
 * Starts the generator pinned to LOAD_CPU. Its lines: {"ready":true,...} once sending,
 * {"stopped":[ids],"monoNs":...,"wallMs":...} at stopAfter, {"sent":N,"seconds":X,"errors":E}
 * at the end (also when stopped with SIGTERM).
 */
export function cLoad(opts: CLoadOptions): Started {
  return startNative(LOAD_CPU, buildGenerator(), cLoadArgs(opts));
}

/** A native executable, pinned to `cpu` (see startCommand in lib.ts). */
export const startNative = (cpu: number, executable: string, args: string[]): Started =>
  startCommand(cpu, executable, args);
