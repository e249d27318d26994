// A package upgrade replaces the bundle on disk while the old monitor still runs, until the
// package restarts it. A reload in between starts its config thread on the file now on disk: that
// thread is another version, whose answer the old monitor could misread, so it refuses, and the
// monitor says to restart it and keeps its config.
import { copyFileSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { VERSION } from "../../src/version.js";
import { HB_BIN, HbProcess, TempDir } from "../support/hb-process.js";

const dir = new TempDir();
afterAll(() => dir.remove());

describe("a reload after the bundle was replaced on disk by another version", () => {
  it("is rejected, saying to restart the monitor, which keeps running on its config; with its own version back, it reloads", async () => {
    const bin = join(dir.path, "hb.mjs");
    copyFileSync(HB_BIN, bin);
    const bundle = readFileSync(HB_BIN, "utf8");
    const next = bundle.replace(`version: "${VERSION}"`, `version: "${VERSION}-next"`);
    expect(next).not.toBe(bundle);
    const config = dir.file("hb.yaml", "nodes: { a: {} }\n");
    const monitor = new HbProcess(
      ["monitor", "--config", config, "--listen", "127.0.0.1:0", "--status", "off"],
      {},
      bin,
    );
    try {
      await monitor.waitFor("monitor.started");
      writeFileSync(bin, next);
      writeFileSync(config, "nodes: { a: {}, b: {} }\n");
      monitor.signal("SIGHUP");
      const rejected = await monitor.waitFor("config.rejected", undefined, 15_000);
      expect(rejected.errors).toEqual([
        `hb ${VERSION}-next is installed, and this process is hb ${VERSION}: restart it to load a config (systemctl restart hb-monitor)`,
      ]);
      expect(monitor.child.exitCode).toBeNull();
      expect(monitor.of("config.reloaded")).toEqual([]);

      writeFileSync(bin, bundle);
      monitor.signal("SIGHUP");
      const reloaded = await monitor.waitFor("config.reloaded", undefined, 15_000);
      expect(reloaded.changes).toEqual(["nodes.b: added (interval 1s, timeout 10s, late 5s)"]);
    } finally {
      monitor.child.kill("SIGTERM");
      await monitor.exited;
    }
  });
});
