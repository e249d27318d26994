// Measurement helpers for the benchmark: CPU time and RSS from /proc, processes pinned to a core,
// percentiles and min/median/max.
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { createInterface } from "node:readline";

export const TICKS_PER_S = 100; // USER_HZ: /proc/PID/stat counts CPU time in 1/100 s on Linux

/** CPU seconds (user + system) a process has used so far. */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_S;
}

export function rssBytes(pid: number): number {
  return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))![1]) * 1024;
}

export function wakeups(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  return (
    Number(/voluntary_ctxt_switches:\s+(\d+)/.exec(status)![1]) +
    Number(/nonvoluntary_ctxt_switches:\s+(\d+)/.exec(status)![1])
  );
}

export interface Started {
  child: ChildProcess;
  lines: string[];
  /** Resolves with the first line (seen or future) for which `match` holds. */
  line(match: (line: string) => boolean, timeoutMs?: number): Promise<string>;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/** Starts `args` with node, pinned to `cpu`, collecting the stdout lines that `keep` accepts. */
export function start(
  cpu: number,
  args: string[],
  extraNodeArgs: string[] = [],
  options: { keep?: (line: string) => boolean } = {},
): Started {
  return startCommand(cpu, process.execPath, [...extraNodeArgs, ...args], options);
}

/**
 * Starts `executable` pinned to `cpu`, collecting the stdout lines that `keep` accepts; line()
 * also fails as soon as the process has ended without printing a matching line.
 */
export function startCommand(
  cpu: number,
  executable: string,
  args: string[],
  options: { keep?: (line: string) => boolean } = {},
): Started {
  const command = `${executable} ${args.join(" ")}`;
  const child = spawn("taskset", ["-c", String(cpu), executable, ...args], {
    stdio: ["pipe", "pipe", "inherit"],
  });
  const lines: string[] = [];
  const waiters = new Set<() => void>();
  const wake = (): void => waiters.forEach((w) => w());
  let ended: string | undefined; // why there will be no more lines
  createInterface({ input: child.stdout }).on("line", (l) => {
    if (options.keep !== undefined && !options.keep(l)) return;
    lines.push(l);
    wake();
  });
  const exited = new Promise<void>((resolve) => {
    child.once("close", (code, signal) => {
      ended ??= `exited (${signal ?? `code ${code}`})`;
      wake();
      resolve();
    });
    child.once("error", (err) => {
      ended = `could not start: ${err.message}`;
      wake();
      resolve();
    });
  });
  return {
    child,
    lines,
    line: (match, timeoutMs = 30_000) =>
      new Promise((resolve, reject) => {
        const check = (): boolean => {
          const found = lines.find(match);
          if (found === undefined && ended === undefined) return false;
          waiters.delete(check);
          clearTimeout(timer);
          if (found !== undefined) resolve(found);
          else
            reject(
              new Error(`${command} ${ended} without the line waited for; it printed: ${lines.join(" ")}`),
            );
          return true;
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`timed out waiting for a line from ${command}`));
        }, timeoutMs);
        if (!check()) waiters.add(check);
      }),
    stop: async (signal = "SIGTERM") => {
      if (child.exitCode === null && child.signalCode === null && ended === undefined) child.kill(signal);
      await exited;
    },
  };
}

/** Writes a line to the process's stdin and returns the number in the next line it prints. */
export async function ask(proc: Started, field: string): Promise<number> {
  const before = proc.lines.length;
  proc.child.stdin!.write("\n");
  await proc.line(() => proc.lines.length > before);
  return (JSON.parse(proc.lines.at(-1)!) as Record<string, number>)[field]!;
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export interface Spread {
  min: number;
  median: number;
  max: number;
}

export function spread(values: number[]): Spread {
  const sorted = [...values].sort((a, b) => a - b);
  return { min: sorted[0]!, median: percentile(sorted, 50), max: sorted[sorted.length - 1]! };
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank]!;
}
