// An idle monitor (no nodes) after start-up settles: it should not wake up at all.
import { QUICK, startMonitor } from "./harness.js";
import { sleep, wakeups } from "./lib.js";

export async function idle() {
  const monitor = await startMonitor(`nodes: {}\n`);
  // V8 does some housekeeping in the first seconds after start (GC, memory reduction); after that
  // an idle monitor has nothing scheduled at all.
  const settle = QUICK ? 3 : 30;
  await sleep(settle * 1000);
  const w0 = wakeups(monitor.proc.child.pid!);
  const seconds = QUICK ? 3 : 20;
  await sleep(seconds * 1000);
  const w1 = wakeups(monitor.proc.child.pid!);
  await monitor.proc.stop();
  return { settleSeconds: settle, seconds, contextSwitches: w1 - w0 };
}
