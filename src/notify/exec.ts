// The exec output: runs an operator's hook, without a shell and in its own process group, with
// the notices as JSON on stdin and as HB_* variables in a small environment. It hides the process
// handling: the check that nobody else can rewrite the hook, the time limit that kills the whole
// group, a stderr tail kept in bounded memory, and an exit that does not wait for pipes a
// background grandchild still holds.

import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import type { Clock, Timer } from "../clock.js";
import { checkHookFile } from "../config/hook-file.js";
import type { ExecOutputSpec } from "../config/types.js";
import type { Notice } from "./notice.js";
import { DELIVERED, MAX_DETAIL_CHARS, failed, type Outcome, type Output } from "./output.js";

/** How long a hook has to exit after SIGTERM before its group gets SIGKILL. */
export const DEFAULT_KILL_GRACE_MS = 5_000;
/** On close() the monitor is stopping: hooks get less time to finish than after a timeout. */
const CLOSE_GRACE_MS = 1_000;
/**
 * After the hook exits, how long its last output may take to be read. A hook's own pipes close
 * at once; this only bounds the wait when a background grandchild has inherited them.
 */
const PIPE_DRAIN_MS = 100;
/** EX_TEMPFAIL (sysexits.h): the hook asks to be run again later. */
const EXIT_TEMPFAIL = 75;
const TAIL_BYTES = MAX_DETAIL_CHARS;

/** The monitor's variables a hook inherits; anything else (keys, credentials) stays behind. */
const INHERITED_ENV = ["PATH", "LANG", "LC_ALL", "TZ", "HOME"] as const;

export const HB_VARIABLES: Readonly<Record<string, string>> = Object.freeze({
  HB_OUTPUT: "the name of the notify output running the hook",
  HB_COUNT: "how many notices are on stdin (more than 1: a JSON array)",
  HB_ATTEMPT: "the attempt number of this delivery, from 1",
  HB_MONITOR_NAME: "the monitor running the hook (its host name, or cluster.self)",
  HB_TEST: '"1" when a notice is a test (`hb notify test`), else "0"',
  HB_EVENT: "the event name (one notice only)",
  HB_LEVEL: "the event's level: info, warn or error (one notice only)",
  HB_NODE: "the node the event is about; unset for monitor events (one notice only)",
  HB_STATE: "the node's state after the event; unset when none (one notice only)",
  HB_PREVIOUS: "the node's state before the event; unset when none (one notice only)",
  HB_SINCE: "when the state began, epoch ms; unset when none (one notice only)",
  HB_LAST_SEEN: "when the node's last heartbeat arrived, epoch ms; unset when never (one notice only)",
  HB_SEQ: "the notice's sequence number within the monitor process (one notice only)",
  HB_DEDUP_KEY: "a key that is the same for the same event across monitors and resends (one notice only)",
  HB_TIME: "when the event was written, epoch ms (one notice only)",
  "HB_LABEL_<NAME>":
    "the node's label `name` (upper-cased; characters other than A-Z, 0-9 and _ become _) (one notice only)",
});

const labelVariable = (name: string): string => `HB_LABEL_${name.toUpperCase().replace(/[^A-Z0-9_]/g, "_")}`;

const errorText = (err: unknown): string => (err instanceof Error ? err.message : String(err));

function hookEnv(
  notices: readonly Notice[],
  attempt: number,
  output: string,
  monitor: string,
  inherited: NodeJS.ProcessEnv,
): Record<string, string> {
  const env: Record<string, string> = {};
  for (const name of INHERITED_ENV) {
    const value = inherited[name];
    if (value !== undefined) env[name] = value;
  }
  const set = (name: string, value: string | number | null): void => {
    if (value !== null) env[name] = String(value);
  };
  set("HB_OUTPUT", output);
  set("HB_COUNT", notices.length);
  set("HB_ATTEMPT", attempt);
  set("HB_MONITOR_NAME", monitor);
  set("HB_TEST", notices.some((n) => n.test) ? "1" : "0");
  // A batch's notices differ: its details are on stdin only.
  const only = notices.length === 1 ? notices[0] : undefined;
  if (only !== undefined) {
    set("HB_EVENT", only.event);
    set("HB_LEVEL", only.level);
    set("HB_NODE", only.node);
    set("HB_STATE", only.state);
    set("HB_PREVIOUS", only.previous);
    set("HB_SINCE", only.since);
    set("HB_LAST_SEEN", only.lastSeen);
    set("HB_SEQ", only.seq);
    set("HB_DEDUP_KEY", only.dedupKey);
    set("HB_TIME", only.time);
    for (const [name, value] of Object.entries(only.labels)) set(labelVariable(name), value);
  }
  return env;
}

function hookInput(notices: readonly Notice[], attempt: number): string {
  const objects = notices.map((n) => ({ ...n, attempt }));
  return `${JSON.stringify(objects.length === 1 ? objects[0] : objects)}\n`;
}

/** The last TAIL_BYTES of a stream, in memory that does not grow with what passes through. */
class Tail {
  private bytes: Buffer = Buffer.alloc(0);
  private cut = false;

  push(chunk: Buffer): void {
    const joined = chunk.length >= TAIL_BYTES ? chunk : Buffer.concat([this.bytes, chunk]);
    if (joined.length <= TAIL_BYTES) {
      this.bytes = joined;
      return;
    }
    this.cut = true;
    // A copy: a view would keep the whole chunk alive.
    this.bytes = Buffer.from(joined.subarray(joined.length - TAIL_BYTES));
  }

  text(): string {
    let start = 0;
    // A cut inside a UTF-8 character would show as U+FFFD; skip its continuation bytes.
    while (this.cut && start < this.bytes.length && ((this.bytes[start] ?? 0) & 0xc0) === 0x80) start++;
    return this.bytes.subarray(start).toString("utf8").trim();
  }
}

interface Running {
  /** SIGTERM to the hook's group now, SIGKILL after `graceMs`; the first reason given is reported. */
  stop(reason: "timeout" | "closed", graceMs: number): void;
  readonly done: Promise<Outcome>;
}

interface RunOptions {
  /** The checked, real path of the hook; argv[0] is what the config names (the hook's $0). */
  readonly file: string;
  readonly argv: readonly [string, ...string[]];
  readonly input: string;
  readonly env: Record<string, string>;
  readonly clock: Clock;
  readonly timeoutMs: number;
  readonly killGraceMs: number;
}

function runHook({ file, argv, input, env, clock, timeoutMs, killGraceMs }: RunOptions): Running {
  let settle!: (outcome: Outcome) => void;
  const done = new Promise<Outcome>((resolve) => (settle = resolve));
  let child: ChildProcessWithoutNullStreams;
  try {
    // Its own process group (detached), so that a time limit reaches whatever the hook started.
    child = spawn(file, argv.slice(1), { argv0: argv[0], detached: true, env, stdio: "pipe" });
  } catch (err) {
    // Arguments Node refuses outright, such as a NUL byte in a label's value.
    settle(failed(false, "spawn", errorText(err)));
    return { stop: () => undefined, done };
  }
  const pid = child.pid;
  const stdout = new Tail();
  const stderr = new Tail();
  let stopped: "timeout" | "closed" | null = null;
  let exit: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  let finished = false;
  let killTimer: Timer | null = null;
  let drainTimer: Timer | null = null;
  let limitTimer: Timer | null = clock.setTimeout(() => {
    limitTimer = null;
    stop("timeout", killGraceMs);
  }, timeoutMs);

  const signalGroup = (signal: NodeJS.Signals): void => {
    if (pid === undefined) return;
    try {
      process.kill(-pid, signal);
    } catch {
      // ESRCH: the whole group has exited already.
    }
  };

  function stop(reason: "timeout" | "closed", graceMs: number): void {
    if (finished || exit !== null) return;
    stopped ??= reason;
    signalGroup("SIGTERM");
    if (killTimer !== null) clock.clearTimeout(killTimer);
    killTimer = clock.setTimeout(() => {
      killTimer = null;
      signalGroup("SIGKILL");
    }, graceMs);
  }

  function judge(): Outcome {
    const detail = stderr.text() || stdout.text();
    if (stopped === "timeout") return failed(false, "timeout", detail || `no exit within ${timeoutMs} ms`);
    if (stopped === "closed") {
      return failed(false, "closed", detail || "the output was closed while the hook ran");
    }
    if (exit === null) return failed(false, "spawn", "the hook ended without an exit status");
    if (exit.code === 0) return DELIVERED;
    if (exit.code === EXIT_TEMPFAIL) return failed(true, `exit_${EXIT_TEMPFAIL}`, detail);
    if (exit.code !== null) return failed(false, `exit_${exit.code}`, detail);
    return failed(false, `signal_${exit.signal ?? "unknown"}`, detail);
  }

  function finish(outcome?: Outcome): void {
    if (finished) return;
    finished = true;
    for (const timer of [limitTimer, killTimer, drainTimer]) if (timer !== null) clock.clearTimeout(timer);
    limitTimer = killTimer = drainTimer = null;
    child.stdin.destroy();
    child.stdout.destroy();
    child.stderr.destroy();
    settle(outcome ?? judge());
  }

  child.stdout.on("data", (chunk: Buffer) => stdout.push(chunk));
  child.stderr.on("data", (chunk: Buffer) => stderr.push(chunk));
  // A hook may exit without reading all of stdin: the pending write then fails with EPIPE.
  child.stdin.on("error", () => undefined);
  child.stdout.on("error", () => undefined);
  child.stderr.on("error", () => undefined);
  // Only spawning fails this way (ENOENT, EACCES): nothing was run.
  child.on("error", (err) => finish(failed(false, "spawn", err.message)));
  child.on("exit", (code, signal) => {
    exit = { code, signal };
    // The group had its grace through its leader; what stays behind would outlive the delivery.
    if (stopped !== null) signalGroup("SIGKILL");
    drainTimer = clock.setTimeout(() => {
      drainTimer = null;
      finish();
    }, PIPE_DRAIN_MS);
  });
  // 'close' follows 'exit' once the pipes are read to their end, unless a grandchild holds them.
  child.on("close", () => finish());
  child.stdin.end(input);

  return { stop, done };
}

export class ExecOutput implements Output {
  readonly kind = "exec";
  readonly name: string;
  private readonly clock: Clock;
  private readonly monitor: string;
  private readonly killGraceMs: number;
  private readonly env: NodeJS.ProcessEnv;
  private readonly running = new Set<Running>();
  private closing: Promise<void> | null = null;

  constructor(
    private readonly spec: ExecOutputSpec,
    deps: { clock: Clock; monitor: string; killGraceMs?: number; env?: NodeJS.ProcessEnv },
  ) {
    this.name = spec.name;
    this.clock = deps.clock;
    this.monitor = deps.monitor;
    this.killGraceMs = deps.killGraceMs ?? DEFAULT_KILL_GRACE_MS;
    this.env = deps.env ?? process.env;
  }

  async deliver(notices: readonly Notice[], attempt: number): Promise<Outcome> {
    const [hook, ...args] = this.spec.argv;
    if (this.closing !== null) return failed(false, "closed", "the output is closed");
    if (hook === undefined) return failed(false, "refused", "no hook is configured");
    // Checked at every run (the file may have changed since the config was loaded), and the
    // file that was checked is the one started.
    const checked = await checkHookFile(hook);
    if ("problem" in checked) return failed(false, "refused", checked.problem);
    if (this.closing !== null) return failed(false, "closed", "the output is closed");
    let run: Running;
    try {
      run = runHook({
        file: checked.real,
        argv: [hook, ...args],
        input: hookInput(notices, attempt),
        env: hookEnv(notices, attempt, this.name, this.monitor, this.env),
        clock: this.clock,
        timeoutMs: this.spec.timeoutMs,
        killGraceMs: this.killGraceMs,
      });
    } catch (err) {
      return failed(false, "spawn", errorText(err));
    }
    this.running.add(run);
    try {
      return await run.done;
    } finally {
      this.running.delete(run);
    }
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      const runs = [...this.running];
      const graceMs = Math.min(CLOSE_GRACE_MS, this.killGraceMs);
      for (const run of runs) run.stop("closed", graceMs);
      await Promise.all(runs.map((run) => run.done));
    })();
    return this.closing;
  }
}
