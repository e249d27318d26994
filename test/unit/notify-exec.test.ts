// The exec output with real hooks: bash scripts in a fresh temporary directory that record what
// they were given, misbehave (sleep, ignore SIGTERM, leave children behind, ignore stdin, flood
// stderr) or are unsafe to run. Every outcome is checked by its reason, never by how long it took.
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { systemClock, type Clock, type Timer } from "../../src/clock.js";
import type { ExecOutputSpec } from "../../src/config/types.js";
import { hookFileProblem } from "../../src/config/hook-file.js";
import { ExecOutput, HB_VARIABLES } from "../../src/notify/exec.js";
import type { Notice } from "../../src/notify/notice.js";
import { DELIVERED, MAX_DETAIL_CHARS } from "../../src/notify/output.js";

setFlagsFromString("--expose-gc");
/** A full garbage collection, on demand (the flag above makes `gc` reachable in a new context). */
const collectGarbage = runInNewContext("gc") as () => void;

const cleanups: (() => void)[] = [];
afterEach(() => cleanups.splice(0).forEach((f) => f()));

/** A fresh directory for one test's hooks and what they record; removed after the test. */
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "hb-exec-"));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

let hooks = 0;

/** Writes a bash hook whose body may use $OUT, the test's directory. */
function hook(dir: string, body: string, mode = 0o755, interpreter = "/bin/bash"): string {
  const path = join(dir, `hook-${++hooks}.sh`);
  writeFileSync(path, `#!${interpreter}\nOUT=${JSON.stringify(dir)}\n${body}\n`);
  chmodSync(path, mode);
  return path;
}

function notice(overrides: Partial<Notice> = {}): Notice {
  return {
    hb: 1,
    event: "node.down",
    level: "error",
    node: "web-1",
    state: "down",
    previous: "late",
    since: 1_700_000_000_000,
    lastSeen: 1_699_999_990_000,
    labels: { role: "web", Rack_2: "r2" },
    seq: 7,
    dedupKey: "web-1/down/3.42",
    monitor: "mon-a",
    time: 1_700_000_000_250,
    test: false,
    fields: { node: "web-1", silentMs: 10_000 },
    ...overrides,
  };
}

function spec(argv: string[], timeoutMs = 5_000): ExecOutputSpec {
  return { kind: "exec", name: "pager", on: null, timeoutMs, queue: 100, attempts: 3, line: 1, col: 1, argv };
}

/** The system clock, counting the timers set and not yet fired or cleared. */
function countingClock(): Clock & { pending(): number } {
  const live = new Set<Timer>();
  return {
    ...systemClock,
    setTimeout(callback, delayMs) {
      const timer = systemClock.setTimeout(() => {
        live.delete(timer);
        callback();
      }, delayMs);
      live.add(timer);
      return timer;
    },
    clearTimeout(timer) {
      live.delete(timer);
      systemClock.clearTimeout(timer);
    },
    pending: () => live.size,
  };
}

function output(argv: string[], options: { timeoutMs?: number; killGraceMs?: number; clock?: Clock } = {}) {
  const out = new ExecOutput(spec(argv, options.timeoutMs), {
    clock: options.clock ?? systemClock,
    monitor: "mon-a",
    killGraceMs: options.killGraceMs ?? 5_000,
    env: {
      PATH: process.env["PATH"] ?? "/usr/bin:/bin",
      HOME: "/home/hb",
      HB_KEY_FILE: "/etc/hb/k1",
      SECRET: "x",
    },
  });
  cleanups.push(() => void out.close());
  return out;
}

function readEnv(path: string): Map<string, string> {
  const env = new Map<string, string>();
  for (const entry of readFileSync(path, "utf8").split("\0")) {
    const at = entry.indexOf("=");
    if (at > 0) env.set(entry.slice(0, at), entry.slice(at + 1));
  }
  return env;
}

/** Whether `pid` is a live process: it exists and is not a zombie waiting to be reaped. */
function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
}

/** Waits (a second at most) for a signalled process to die and be reaped, and says whether it did. */
async function gone(pid: number): Promise<boolean> {
  for (let i = 0; i < 100 && running(pid); i++) await new Promise((resolve) => setTimeout(resolve, 10));
  return !running(pid);
}

/** Waits (a second at most) for a hook to have written a whole line to `path`. */
async function waitForLine(path: string): Promise<string> {
  const line = (): string => (existsSync(path) ? readFileSync(path, "utf8") : "");
  for (let i = 0; i < 200 && !line().endsWith("\n"); i++)
    await new Promise((resolve) => setTimeout(resolve, 5));
  return line();
}

describe("the exec output", { timeout: 5_000 }, () => {
  it("gives a single notice as one JSON object on stdin and as HB_* variables", async () => {
    const dir = tempDir();
    const n = notice({ lastSeen: null });
    const body = 'cat > "$OUT/stdin"; env -0 > "$OUT/env"; printf "%s\\n" "$@" > "$OUT/args"';
    const out = output([hook(dir, body), "--page", "$HOME; touch ran"]);
    expect(await out.deliver([n], 2)).toEqual(DELIVERED);
    expect(JSON.parse(readFileSync(join(dir, "stdin"), "utf8"))).toEqual({ ...n, attempt: 2 });
    expect(readFileSync(join(dir, "args"), "utf8")).toBe("--page\n$HOME; touch ran\n");
    const env = readEnv(join(dir, "env"));
    expect(Object.fromEntries([...env].filter(([name]) => name.startsWith("HB_")))).toEqual({
      HB_OUTPUT: "pager",
      HB_COUNT: "1",
      HB_ATTEMPT: "2",
      HB_MONITOR_NAME: "mon-a",
      HB_TEST: "0",
      HB_EVENT: "node.down",
      HB_LEVEL: "error",
      HB_NODE: "web-1",
      HB_STATE: "down",
      HB_PREVIOUS: "late",
      HB_SINCE: "1700000000000",
      HB_SEQ: "7",
      HB_DEDUP_KEY: "web-1/down/3.42",
      HB_TIME: "1700000000250",
      HB_LABEL_ROLE: "web",
      HB_LABEL_RACK_2: "r2",
    });
    expect(env.get("HOME")).toBe("/home/hb");
    expect(env.has("HB_KEY_FILE")).toBe(false);
    expect(env.has("SECRET")).toBe(false);
  });

  it("sets exactly the variables HB_VARIABLES documents, for a notice with every field", async () => {
    const dir = tempDir();
    const out = output([hook(dir, 'env -0 > "$OUT/env"')]);
    expect(await out.deliver([notice()], 1)).toEqual(DELIVERED);
    const names = [...readEnv(join(dir, "env")).keys()]
      .filter((name) => name.startsWith("HB_"))
      .map((name) => (name.startsWith("HB_LABEL_") ? "HB_LABEL_<NAME>" : name));
    expect(new Set(names)).toEqual(new Set(Object.keys(HB_VARIABLES)));
  });

  it("gives a batch as a JSON array with HB_COUNT and without per-notice variables", async () => {
    const dir = tempDir();
    const batch = [notice(), notice({ seq: 8, node: "web-2", test: true })];
    const out = output([hook(dir, 'cat > "$OUT/stdin"; env -0 > "$OUT/env"')]);
    expect(await out.deliver(batch, 1)).toEqual(DELIVERED);
    expect(JSON.parse(readFileSync(join(dir, "stdin"), "utf8"))).toEqual(
      batch.map((n) => ({ ...n, attempt: 1 })),
    );
    const env = readEnv(join(dir, "env"));
    expect(env.get("HB_COUNT")).toBe("2");
    expect(env.get("HB_TEST")).toBe("1");
    expect([...env.keys()].filter((name) => /^HB_(EVENT|NODE|SEQ|LABEL_)/.test(name))).toEqual([]);
  });

  it("reports exit 75 as worth retrying and exit 1 as final, with the hook's stderr as detail", async () => {
    const dir = tempDir();
    expect(await output([hook(dir, "echo 'pager busy' >&2; exit 75")]).deliver([notice()], 1)).toEqual({
      ok: false,
      retry: true,
      reason: "exit_75",
      detail: "pager busy",
    });
    expect(await output([hook(dir, "echo 'bad token'; exit 1")]).deliver([notice()], 1)).toEqual({
      ok: false,
      retry: false,
      reason: "exit_1",
      detail: "bad token",
    });
  });

  it("reports a hook killed by a signal it did not get from hb", async () => {
    const dir = tempDir();
    const outcome = await output([hook(dir, "kill -SEGV $$")]).deliver([notice()], 1);
    expect(outcome).toMatchObject({ ok: false, retry: false, reason: "signal_SIGSEGV" });
  });

  it("reports a hook that cannot be started as a final spawn failure", async () => {
    const dir = tempDir();
    expect(
      await output([hook(dir, "exit 0", 0o755, "/nonexistent/sh")]).deliver([notice()], 1),
    ).toMatchObject({
      ok: false,
      retry: false,
      reason: "spawn",
    });
    const nul = notice({ labels: { role: "web\0" } });
    expect(await output([hook(dir, "exit 0")]).deliver([nul], 1)).toMatchObject({
      ok: false,
      reason: "spawn",
    });
  });

  it("kills a hook and the children it started at its time limit, and leaves no timer behind", async () => {
    const dir = tempDir();
    const clock = countingClock();
    const out = output([hook(dir, 'sleep 60 & echo $! > "$OUT/child"; wait')], { timeoutMs: 300, clock });
    const outcome = await out.deliver([notice()], 1);
    expect(outcome).toMatchObject({ ok: false, retry: false, reason: "timeout" });
    expect(await gone(Number(readFileSync(join(dir, "child"), "utf8")))).toBe(true);
    expect(clock.pending()).toBe(0);
  });

  it("kills a hook that ignores SIGTERM with SIGKILL once the grace has passed", async () => {
    const dir = tempDir();
    const out = output([hook(dir, "trap '' TERM; echo $$ > \"$OUT/pid\"; sleep 60")], {
      timeoutMs: 200,
      killGraceMs: 200,
    });
    expect(await out.deliver([notice()], 1)).toMatchObject({ ok: false, reason: "timeout" });
    expect(await gone(Number(readFileSync(join(dir, "pid"), "utf8")))).toBe(true);
  });

  it("resolves when the hook exits though a background child still holds its stderr", async () => {
    const dir = tempDir();
    const clock = countingClock();
    const out = output([hook(dir, 'sleep 60 & echo $! > "$OUT/child"; echo sent; exit 0')], { clock });
    expect(await out.deliver([notice()], 1)).toEqual(DELIVERED);
    process.kill(Number(readFileSync(join(dir, "child"), "utf8")), "SIGKILL");
    expect(clock.pending()).toBe(0);
  });

  it("survives a hook that never reads a 2 MB batch from stdin", async () => {
    const dir = tempDir();
    const batch = Array.from({ length: 2_000 }, (_, i) =>
      notice({ seq: i, fields: { pad: "x".repeat(1_000) } }),
    );
    expect(await output([hook(dir, "exit 0")]).deliver(batch, 1)).toEqual(DELIVERED);
    expect(await output([hook(dir, "exit 3")]).deliver(batch, 1)).toMatchObject({ reason: "exit_3" });
  });

  it("refuses, without running it, a hook its group may write to", async () => {
    const dir = tempDir();
    const path = hook(dir, 'touch "$OUT/ran"', 0o775);
    expect(await output([path]).deliver([notice()], 1)).toMatchObject({
      ok: false,
      retry: false,
      reason: "refused",
    });
    expect(existsSync(join(dir, "ran"))).toBe(false);
  });

  it("refuses a hook that does not exist", async () => {
    const dir = tempDir();
    expect(await output([join(dir, "missing.sh")]).deliver([notice()], 1)).toMatchObject({
      ok: false,
      retry: false,
      reason: "refused",
    });
  });

  it("finds fault with relative, non-executable, unsafe or non-file hooks, and none with a safe one", async () => {
    const dir = tempDir();
    expect(await hookFileProblem(hook(dir, "exit 0"))).toBeNull();
    expect(await hookFileProblem("bin/hook.sh")).toMatch(/absolute/);
    expect(await hookFileProblem(hook(dir, "exit 0", 0o644))).toMatch(/executable/);
    expect(await hookFileProblem(hook(dir, "exit 0", 0o757))).toMatch(/writable/);
    expect(await hookFileProblem(dir)).toMatch(/regular file/);
    const openDir = mkdtempSync(join(dir, "open-"));
    chmodSync(openDir, 0o777);
    expect(await hookFileProblem(hook(openDir, "exit 0"))).toMatch(/writable by others/);
  });

  it("kills a hook in flight on close(), reports it closed, and runs nothing after", async () => {
    const dir = tempDir();
    const out = output([hook(dir, 'echo $$ > "$OUT/pid"; sleep 60')], { timeoutMs: 10_000 });
    const delivery = out.deliver([notice()], 1);
    const pid = Number(await waitForLine(join(dir, "pid")));
    await out.close();
    expect(await delivery).toMatchObject({ ok: false, reason: "closed" });
    expect(await gone(pid)).toBe(true);
    await out.close();
    expect(await out.deliver([notice()], 1)).toMatchObject({ ok: false, reason: "closed" });
  });

  it("keeps only the tail of a flood of output as detail", async () => {
    const dir = tempDir();
    // 60 MB on stdout and on stderr, in whole lines: a reader that kept it all would hold 120 MB.
    const body = [
      "yes 'noise on stdout' | head -c 60000000",
      "yes 'noise' | head -c 60000000 >&2",
      "echo 'the end' >&2",
      "exit 1",
    ].join("\n");
    // What the reader holds, not the garbage it leaves for the collector (how much of that
    // piles up between two collections is the engine's business, and varies with its version):
    // each sample is taken after a full collection.
    const live = (): number => {
      collectGarbage();
      return process.memoryUsage().arrayBuffers;
    };
    const before = live();
    let peak = before;
    // A reader that kept the flood would hold more at every sample than at the one before: a
    // sample every 50 ms sees it.
    const sampler = setInterval(() => (peak = Math.max(peak, live())), 50);
    const outcome = await output([hook(dir, body)]).deliver([notice()], 1);
    clearInterval(sampler);
    expect(outcome).toMatchObject({ ok: false, reason: "exit_1" });
    const detail = outcome.ok ? "" : outcome.detail;
    expect(detail.endsWith("noise\nthe end")).toBe(true);
    expect(detail.length).toBeLessThanOrEqual(MAX_DETAIL_CHARS);
    expect(peak - before).toBeLessThan(80_000_000);
  });
});
