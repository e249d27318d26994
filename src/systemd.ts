// sd_notify(3) without a native addon: Node has no AF_UNIX datagram sockets, so messages are
// sent by spawning systemd-notify(1), which since systemd 246 waits until PID 1 has processed
// the message (no race with the sender exiting). The unit needs NotifyAccess=all, since the
// sender is a child. Messages go out one at a time, in order; STATUS= updates are coalesced.

import { spawn } from "node:child_process";

export type Spawn = (command: string, args: string[]) => Promise<void>;

const spawnNotify: Spawn = (command, args) =>
  new Promise((resolve) => {
    const child = spawn(command, args, { stdio: "ignore" });
    child.once("error", () => resolve());
    child.once("exit", () => resolve());
  });

export class Notifier {
  private queue: string[][] = [];
  private busy = false;
  private pendingStatus: string | undefined;

  constructor(
    private readonly spawnFn: Spawn = spawnNotify,
    private readonly command = "systemd-notify",
  ) {}

  /** A notifier when the process was started by systemd with a notify socket, else null. */
  static fromEnv(env: Readonly<Record<string, string | undefined>>, spawnFn?: Spawn): Notifier | null {
    return env.NOTIFY_SOCKET ? new Notifier(spawnFn) : null;
  }

  /** Sends `VAR=VALUE` assignments as one message. */
  send(...assignments: string[]): void {
    this.queue.push(assignments);
    this.drain();
  }

  /** Sets STATUS=; a newer text replaces one not yet sent. */
  status(text: string): void {
    const waiting = this.pendingStatus !== undefined;
    this.pendingStatus = text;
    if (!waiting) {
      this.queue.push([]);
      this.drain();
    }
  }

  /** Resolves when every message queued so far has been delivered. */
  async flush(): Promise<void> {
    while (this.busy || this.queue.length > 0) await new Promise((resolve) => setTimeout(resolve, 5));
  }

  private drain(): void {
    if (this.busy) return;
    const next = this.queue.shift();
    if (next === undefined) return;
    let message = next;
    if (message.length === 0) {
      message = [`STATUS=${this.pendingStatus ?? ""}`];
      this.pendingStatus = undefined;
    }
    this.busy = true;
    void this.spawnFn(this.command, message).then(() => {
      this.busy = false;
      this.drain();
    });
  }
}

/** The watchdog ping interval (half of WatchdogSec) when systemd asked this process for pings. */
export function watchdogIntervalMs(
  env: Readonly<Record<string, string | undefined>>,
  pid: number,
): number | undefined {
  const usec = Number(env.WATCHDOG_USEC);
  if (!Number.isFinite(usec) || usec <= 0) return undefined;
  if (env.WATCHDOG_PID !== undefined && Number(env.WATCHDOG_PID) !== pid) return undefined;
  return Math.max(1, Math.floor(usec / 2000));
}
