// The monitor is frozen (SIGSTOP) for longer than the timeout while its nodes keep sending.
import { afterAll, describe, expect, it } from "vitest";
import { TempDir, sleep, startMonitor, startNode, type HbProcess } from "../support/hb-process.js";

describe("a monitor frozen longer than the timeout", () => {
  const dir = new TempDir();
  const procs: HbProcess[] = [];
  afterAll(async () => {
    await Promise.all(procs.map((p) => p.stop()));
    dir.remove();
  });

  it("reports one monitor.stalled and no node.down when it resumes", async () => {
    const { monitor, listen } = await startMonitor(
      dir.file(
        "hb.yaml",
        `defaults: { interval: 200ms, late: 1s, timeout: 2s }\nnodes: { "a": {}, "b": {} }\n`,
      ),
    );
    procs.push(monitor, startNode("a", listen), startNode("b", listen));
    await Promise.all(["a", "b"].map((id) => monitor.waitFor("node.up", id)));
    await sleep(500);
    monitor.signal("SIGSTOP");
    await sleep(4000); // twice the timeout; the nodes keep sending
    monitor.signal("SIGCONT");
    const stalled = await monitor.waitFor("monitor.stalled", undefined, 5000);
    expect(stalled.level).toBe("warn");
    expect(stalled.stalledMs as number).toBeGreaterThan(2000);
    await sleep(3000); // past the post-stall hold and another full timeout
    expect(monitor.of("node.down")).toEqual([]);
    expect(monitor.of("node.late")).toEqual([]);
    expect(monitor.of("monitor.stalled")).toHaveLength(1);
  });
});
