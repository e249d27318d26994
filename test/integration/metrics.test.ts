// Prometheus metrics and the kernel drop counter from a real monitor.
import { createSocket } from "node:dgram";
import { afterAll, describe, expect, it } from "vitest";
import { TempDir, runHb, sleep, startMonitor, startNode, type HbProcess } from "../support/hb-process.js";

const dir = new TempDir();
const procs: HbProcess[] = [];
afterAll(async () => {
  await Promise.all(procs.map((p) => p.stop()));
  dir.remove();
});

describe("GET /metrics", () => {
  it("exposes nodes by state, heartbeats, rejections by reason, kernel drops, timer lag, and per-node series", async () => {
    const { monitor, listen, port, statusUrl } = await startMonitor(
      dir.file("hb.yaml", `defaults: { interval: 100ms }\nnodes: { "a": {}, "b": { paused: true } }\n`),
    );
    procs.push(monitor, startNode("a", listen, "100ms"));
    await monitor.waitFor("node.up", "a");
    const junk = createSocket("udp4");
    await new Promise<void>((resolve) => junk.send(Buffer.from("junk"), port, "127.0.0.1", () => resolve()));
    junk.close();
    await sleep(300);
    const metricsUrl = statusUrl.replace("/status", "/metrics");
    const response = await fetch(metricsUrl);
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toContain("text/plain");
    const text = await response.text();
    const value = (series: string): number =>
      Number(new RegExp(`^${series.replace(/[{}"]/g, "\\$&")} (\\S+)$`, "m").exec(text)?.[1]);
    expect(value('hb_nodes{state="up"}')).toBe(1);
    expect(value('hb_nodes{state="paused"}')).toBe(1);
    expect(value("hb_heartbeats_received_total")).toBeGreaterThan(0);
    expect(value("hb_datagrams_received_total")).toBeGreaterThanOrEqual(
      value("hb_heartbeats_received_total") + 1,
    );
    expect(value('hb_datagrams_rejected_total{reason="bad_magic"}')).toBe(1); // "junk": the magic is read first
    expect(value("hb_kernel_drops_total")).toBe(0);
    expect(value("hb_event_loop_lag_seconds")).toBeGreaterThanOrEqual(0);
    expect(value('hb_node_up{node="a"}')).toBe(1);
    expect(value('hb_node_up{node="b"}')).toBe(0);
    expect(Math.abs(value('hb_node_last_seen_seconds{node="a"}') - Date.now() / 1000)).toBeLessThan(5);
    expect(value("process_resident_memory_bytes")).toBeGreaterThan(0);
    expect(text).toContain("# TYPE hb_datagrams_rejected_total counter");

    const summary = await (await fetch(`${metricsUrl}?nodes=0`)).text();
    expect(summary).toContain("hb_nodes{");
    expect(summary).not.toContain("hb_node_up");

    const doc = JSON.parse(runHb(["status", "--json", "--url", statusUrl]).stdout) as {
      kernelDrops: number | null;
    };
    expect(doc.kernelDrops).toBe(0);
  });
});
