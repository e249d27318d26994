// A monitor with a large config (5 000 listed nodes): it starts, and a SIGHUP reload of it is
// read and parsed off the event loop, so that the monitor goes on answering /status and receiving
// heartbeats while it reloads, and reports no node late or down because of the reload. How long
// /status waits during a reload of 100 000 nodes under a beating fleet is measured by
// `npm run bench` (its reload section), not here.
import { request } from "node:http";
import { afterAll, describe, expect, it } from "vitest";
import { HbProcess, TempDir, sleep, startNode } from "../support/hb-process.js";

const dir = new TempDir();
const procs: HbProcess[] = [];
afterAll(async () => {
  await Promise.all(procs.map((p) => p.stop()));
  dir.remove();
});

const LISTED = 5_000;
const LIVE = ["live-1", "live-2"];

function fleet(extra: string[] = []): string {
  const lines = ["defaults: { interval: 1s }", "startup_grace: 10m", "nodes:"];
  // The senders get room for a busy machine; the others stay "new" within the grace.
  for (const id of LIVE) lines.push(`  ${id}: { interval: 200ms, late: 3s, timeout: 6s }`);
  for (let i = 0; i < LISTED; i++) lines.push(`  n${i}: {}`);
  return [...lines, ...extra].join("\n") + "\n";
}

function getJson(url: string): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    request(url, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => (body += chunk));
      res.on("end", () => resolve(JSON.parse(body) as Record<string, unknown>));
    })
      .on("error", reject)
      .end();
  });
}

describe("a config of 5 000 nodes", () => {
  it("starts, and a SIGHUP reload keeps /status answering and judges no node late or down", async () => {
    const path = dir.file("fleet.yaml", fleet());
    const monitor = new HbProcess([
      "monitor",
      "--config",
      path,
      "--listen",
      "127.0.0.1:0",
      "--status",
      "127.0.0.1:0",
    ]);
    procs.push(monitor);
    const started = await monitor.waitFor("monitor.started", undefined, 30_000);
    expect(started.nodes).toBe(LISTED + LIVE.length);
    const statusUrl = `http://${started.status as string}/status?nodes=0`;
    for (const id of LIVE) procs.push(startNode(id, started.listen as string, "200ms"));
    for (const id of LIVE) await monitor.waitFor("node.up", id);

    dir.file("fleet.yaml", fleet([`  n${LISTED}: { paused: true }`]));
    const before = await getJson(statusUrl);
    const generation = (before.reload as { generation: number }).generation;
    const eventsBefore = monitor.events.length;
    monitor.signal("SIGHUP");
    // Every answer asked for after the signal and still showing the old config was given while
    // the new one was being read: a loop busy parsing answers none of them.
    let answeredDuringReload = 0;
    // The reload's thread runs at the lowest priority: on a busy machine it waits for the CPU.
    let reloaded = false;
    const done = monitor.waitFor("config.reloaded", undefined, 60_000, eventsBefore).finally(() => {
      reloaded = true;
    });
    while (!reloaded) {
      const answer = await getJson(statusUrl);
      if ((answer.reload as { generation: number }).generation === generation) answeredDuringReload++;
      // Paced: a loop kept busy answering back to back would take the CPU that the reload needs.
      await sleep(5);
    }
    expect((await done).changes).toEqual([
      `nodes.n${LISTED}: added (interval 1s, timeout 10s, late 5s, paused)`,
    ]);
    expect(answeredDuringReload).toBeGreaterThanOrEqual(5);

    await sleep(3500); // past the senders' late threshold
    expect(monitor.of("node.late")).toEqual([]);
    expect(monitor.of("node.down")).toEqual([]);
    expect(monitor.of("config.rejected")).toEqual([]);
    expect(monitor.child.exitCode).toBeNull();
  }, 90_000); // a guard against a hang: the test takes seconds
});
