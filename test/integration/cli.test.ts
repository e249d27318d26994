// The hb executable as an operator runs it: exit codes, messages, reload.
import { mkdirSync } from "node:fs";
import { createSocket } from "node:dgram";
import { afterAll, describe, expect, it } from "vitest";
import { HbProcess, TempDir, runHb, startMonitor } from "../support/hb-process.js";

const dir = new TempDir();
afterAll(() => dir.remove());

describe("hb check-config", () => {
  it("accepts the repository's heartbeat.yaml, printing each node's resolved thresholds", () => {
    const r = runHb(["check-config", new URL("../../heartbeat.yaml", import.meta.url).pathname]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("node logs-1: interval 500ms, late 2.5s, timeout 5s");
    expect(r.stdout).toContain("node web-7: interval 1s, late 5s, timeout 10s, parents sw-1");
    expect(r.stdout).toContain("maintenance: hb maint windows at most 7d");
    // The next Tuesday 02:00 in Paris: 01:00 UTC in winter, 00:00 in summer.
    expect(r.stdout).toMatch(
      /window patch-tuesday: Tue 02:00-04:00 Europe\/Paris \(next \d{4}-\d\d-\d\d 0[01]:00 UTC to \d{4}-\d\d-\d\d 0[23]:00 UTC\), match web-\*/,
    );
  });

  it("finds the repository's heartbeat.yaml, which install.sh installs, safe as it is: loopback only, no warning", () => {
    const r = runHb(["check-config", new URL("../../heartbeat.yaml", import.meta.url).pathname]);
    expect(r.stdout).toContain("listen 127.0.0.1:26722");
    expect(r.stderr).toBe("");
  });

  it("prints the detector of each node once a φ detector is in play", () => {
    const path = dir.file(
      "phi.yaml",
      [
        "defaults: { detector: { kind: phi, threshold: 10, acceptable_pause: 3s } }",
        "nodes:",
        "  a: {}",
        "  b: { detector: { kind: fixed } }",
        "  c: { detector: { kind: phi } }",
      ].join("\n"),
    );
    const r = runHb(["check-config", path]);
    expect(r.code).toBe(0);
    const phi10 = "phi (threshold 10, late_threshold 3, min_std 100ms, acceptable_pause 3s, window 1000)";
    expect(r.stdout).toContain(`defaults: interval 1s, late 5s, timeout 10s, detector ${phi10}`);
    expect(r.stdout).toContain(`node a: interval 1s, late 5s, timeout 10s, detector ${phi10}\n`);
    expect(r.stdout).toContain("node b: interval 1s, late 5s, timeout 10s, detector fixed\n");
    expect(r.stdout).toContain(
      "node c: interval 1s, late 5s, timeout 10s, detector phi (threshold 8, late_threshold 3, min_std 100ms, acceptable_pause 0ms, window 1000)\n",
    );
  });

  it("reads each node's detector, its own or the defaults', in a file large enough to be parsed in two halves", () => {
    const lines = ["defaults: { detector: { kind: phi, window: 500 } }", "nodes:"];
    const count = 6000; // about 350 KiB: more than the 256 KiB from which a file is cut in two
    for (let i = 0; i < count; i++)
      lines.push(
        i % 3 === 0
          ? `  node-${i}: { detector: { kind: phi, min_std: 250ms }, labels: { rack: r${i % 10} } }`
          : i % 3 === 1
            ? `  node-${i}: { detector: { kind: fixed }, labels: { rack: r${i % 10} } }`
            : `  node-${i}: { labels: { rack: r${i % 10} } }`,
      );
    const path = dir.file("phi-fleet.yaml", lines.join("\n") + "\n");
    const r = runHb(["check-config", path]);
    expect(r.code, r.stderr).toBe(0);
    const detectors = [...r.stdout.matchAll(/^ {2}node (node-\d+): .*, detector (\w+ \([^)]*\)|fixed)$/gm)];
    expect(detectors).toHaveLength(count);
    const own = "phi (threshold 8, late_threshold 3, min_std 250ms, acceptable_pause 0ms, window 1000)";
    const inherited = "phi (threshold 8, late_threshold 3, min_std 100ms, acceptable_pause 0ms, window 500)";
    for (const [, id, detector] of detectors) {
      const i = Number(id!.slice("node-".length));
      expect(detector, id).toBe([own, "fixed", inherited][i % 3]);
    }
  });

  it("prints every problem as file:line:col and exits 78", () => {
    const path = dir.file(
      "broken.yaml",
      `listen: nowhere\ndefaults:\n  timeout: 1s\nnodes:\n  a: { late: 9s, color: red }\n`,
    );
    const r = runHb(["check-config", path]);
    expect(r.code).toBe(78);
    const lines = r.stderr.trim().split("\n").slice(1);
    expect(lines).toEqual([
      `${path}:1:9: listen: "nowhere" is not host:port (IPv6 goes in brackets: [::1]:26722)`,
      `${path}:2:1: defaults: timeout (1s) must be more than 2 x interval (1s)`,
      `${path}:5:3: nodes.a: late (9s) must be less than timeout (1s)`,
      `${path}:5:18: unknown key "color" in nodes.a (expected one of: interval, timeout, late, detector, paused, keys, labels, parents)`,
    ]);
    expect(r.stderr).toContain("[HB_ERR_CONFIG]");
  });

  it("warns (exit 0) when the monitor listens beyond loopback with auth off", () => {
    const open = runHb(["check-config", dir.file("open.yaml", "listen: 0.0.0.0:26722\n")]);
    expect(open.code).toBe(0);
    expect(open.stderr).toMatch(
      /^warning: .*open\.yaml:1:1: listen: 0\.0\.0\.0 is reachable beyond this host and auth is off/m,
    );
    const local = runHb(["check-config", dir.file("local.yaml", "listen: 127.0.0.1:26722\n")]);
    expect(local.stderr).toBe("");
  });

  it("exits 66 for a missing file and 64 for a usage error", () => {
    expect(runHb(["check-config", "/nonexistent/hb.yaml"]).code).toBe(66);
    expect(runHb(["check-config", "a", "b"]).code).toBe(64);
    expect(runHb(["bogus"]).code).toBe(64);
    expect(runHb(["node", "--monitor", "127.0.0.1:1"]).stderr).toContain("--id (or HB_NODE_ID) is required");
    expect(runHb(["node", "--id", "x", "--monitor", "127.0.0.1:1", "--interval", "soon"]).code).toBe(64);
  });

  it("treats names found on Object.prototype as unknown commands (exit 64, not 70)", () => {
    for (const name of ["constructor", "toString", "__proto__", "hasOwnProperty"]) {
      const r = runHb([name]);
      expect(r.code, name).toBe(64);
      expect(r.stderr).toContain(`unknown command "${name}"`);
    }
  });
});

describe("hb monitor", () => {
  it("exits 66 with a clear error, not 70, when its replay marks file cannot be read", () => {
    const keyFile = dir.file("marks-k1", "0123456789abcdef0123456789abcdef\n", 0o600);
    const config = dir.file("marks.yaml", `keys: { k1: ${keyFile} }\n`);
    const state = `${dir.path}/state-unreadable`;
    mkdirSync(`${state}/replay-marks`, { recursive: true }); // a directory where the file should be
    const r = runHb([
      "monitor",
      "--config",
      config,
      "--listen",
      "127.0.0.1:0",
      "--status",
      "off",
      "--state-dir",
      state,
    ]);
    expect(r.code).toBe(66);
    expect(r.stderr).toContain("HB_ERR_STATE_FILE");
    expect(r.stderr).toContain("replay marks");
  });

  it("refuses to start on a broken config with exit 78", () => {
    const r = runHb(["monitor", "--config", dir.file("bad.yaml", "auth: sometimes\n")]);
    expect(r.code).toBe(78);
    expect(r.stderr).toContain("bad.yaml:1:7: auth must be one of: off, optional, required");
  });

  it("exits 71 when its UDP port is taken", async () => {
    const blocker = createSocket("udp4");
    await new Promise<void>((resolve) => blocker.bind(0, "127.0.0.1", resolve));
    const port = blocker.address().port;
    const r = runHb([
      "monitor",
      "--config",
      dir.file("ok.yaml", ""),
      "--listen",
      `127.0.0.1:${port}`,
      "--status",
      "off",
    ]);
    blocker.close();
    expect(r.code).toBe(71);
    expect(r.stderr).toContain("EADDRINUSE");
  });

  it("keeps running on its old config when SIGHUP finds a broken file, and applies a good one", async () => {
    const path = dir.file("reload.yaml", `nodes: { "a": {} }\n`);
    const { monitor } = await startMonitor(path);
    try {
      dir.file("reload.yaml", `nodes: { "a": { timeout: 1s } }\n`); // timeout <= 2 x interval
      monitor.signal("SIGHUP");
      const rejected = await monitor.waitFor("config.rejected");
      expect(rejected.level).toBe("error");
      expect(rejected.errors).toEqual([
        `${path}:1:10: nodes.a: timeout (1s) must be more than 2 x interval (1s)`,
      ]);
      expect(monitor.child.exitCode).toBeNull();

      dir.file("reload.yaml", `nodes: { "a": {}, "b": { paused: true } }\n`);
      monitor.signal("SIGHUP");
      const reloaded = await monitor.waitFor("config.reloaded");
      expect(reloaded.changes).toEqual(["nodes.b: added (interval 1s, timeout 10s, late 5s, paused)"]);

      monitor.signal("SIGTERM");
      expect(await monitor.exited).toEqual({ code: 0, signal: null });
      expect(monitor.of("monitor.stopping")).toHaveLength(1);
    } finally {
      await monitor.stop();
    }
  });
});

describe("monitor warnings", () => {
  it("says when the kernel grants a smaller receive buffer than configured, after monitor.started", async () => {
    const { monitor, statusUrl } = await startMonitor(dir.file("rcvbuf.yaml", "receive_buffer: 1GiB\n"));
    try {
      const warning = await monitor.waitFor("monitor.warning");
      expect(warning).toMatchObject({ level: "warn", problem: "receive_buffer" });
      expect(monitor.events[0]!.event).toBe("monitor.started");
      const doc = JSON.parse(runHb(["status", "--json", "--url", statusUrl]).stdout) as {
        receiveBuffer: { asked: number; granted: number };
      };
      expect(doc.receiveBuffer.asked).toBe(1024 ** 3);
      expect(doc.receiveBuffer.granted).toBeLessThan(1024 ** 3);
      expect(doc.receiveBuffer.granted).toBeGreaterThan(0);
    } finally {
      await monitor.stop();
    }
  });
});

describe("IPv6", () => {
  it("monitors nodes over [::1]", async () => {
    const path = dir.file("v6.yaml", `listen: "[::1]:0"\nstatus: off\nnodes: { "v6": {} }\n`);
    const monitor = new HbProcess(["monitor", "--config", path]);
    let node: HbProcess | undefined;
    try {
      const started = await monitor.waitFor("monitor.started");
      expect(started.listen).toMatch(/^\[::1\]:\d+$/);
      node = new HbProcess([
        "node",
        "--id",
        "v6",
        "--monitor",
        started.listen as string,
        "--interval",
        "200ms",
      ]);
      const up = await monitor.waitFor("node.up", "v6");
      expect(up.from).toMatch(/^\[::1\]:\d+$/);
    } finally {
      await Promise.all([monitor.stop(), node?.stop()]);
    }
  });
});

describe("signals at start-up", () => {
  it("reloads (never dies) on a SIGHUP sent the instant monitor.started is written", async () => {
    const path = dir.file("instant.yaml", `nodes: { "a": {} }\n`);
    const runs = Array.from({ length: 5 }, async () => {
      const monitor = new HbProcess([
        "monitor",
        "--config",
        path,
        "--listen",
        "127.0.0.1:0",
        "--status",
        "off",
      ]);
      monitor.child.stdout!.once("data", () => monitor.signal("SIGHUP"));
      try {
        await monitor.waitFor("config.reloaded", undefined, 10_000);
        expect(monitor.child.exitCode).toBeNull();
      } finally {
        await monitor.stop();
      }
    });
    await Promise.all(runs);
  });
});

describe("hb reload", () => {
  it("returns once the monitor applied the new config (exit 0), or rejected it (exit 78, with the errors)", async () => {
    const path = dir.file("hb-reload.yaml", `nodes: { "a": {} }\n`);
    const { monitor, statusUrl } = await startMonitor(path);
    try {
      dir.file("hb-reload.yaml", `nodes: { "a": {}, "b": {} }\n`);
      const ok = runHb(["reload", "--url", statusUrl]);
      expect(ok.code).toBe(0);
      expect(ok.stdout).toContain("nodes.b: added");
      // The changes printed were read back from the monitor after it applied them.
      expect((await monitor.waitFor("config.reloaded")).changes).toEqual([
        "nodes.b: added (interval 1s, timeout 10s, late 5s)",
      ]);

      dir.file("hb-reload.yaml", `nodes: { "a": { late: 1h } }\n`);
      const bad = runHb(["reload", "--url", statusUrl]);
      expect(bad.code).toBe(78);
      expect(bad.stderr).toContain(`${path}:1:10: nodes.a: late (1h) must be less than timeout (10s)`);
      expect(monitor.child.exitCode).toBeNull();
    } finally {
      await monitor.stop();
    }
  });
});

describe("hb status", () => {
  it("exits 69 when the monitor cannot be reached", () => {
    const r = runHb(["status", "--url", "http://127.0.0.1:1/status"]);
    expect(r.code).toBe(69);
    expect(r.stderr).toContain("HB_ERR_STATUS_UNAVAILABLE");
  });
});

describe("hb send", () => {
  it("sends one heartbeat per run, and --leave makes the node left", async () => {
    const { monitor, listen } = await startMonitor(dir.file("send.yaml", `nodes: { "cron-1": {} }\n`));
    try {
      expect(runHb(["send", "--id", "cron-1", "--monitor", listen]).code).toBe(0);
      await monitor.waitFor("node.up", "cron-1");
      expect(runHb(["send", "--monitor", listen], { HB_NODE_ID: "cron-1" }).code).toBe(0);
      expect(runHb(["send", "--id", "cron-1", "--monitor", listen, "--leave"]).code).toBe(0);
      await monitor.waitFor("node.left", "cron-1");
      expect(monitor.of("node.restarted")).toEqual([]);
    } finally {
      await monitor.stop();
    }
  });
});

describe("hb node", () => {
  it("keeps running and retries when the monitor's name does not resolve", async () => {
    const node = new HbProcess([
      "node",
      "--id",
      "n1",
      "--monitor",
      "no-such-host.invalid:26722",
      "--interval",
      "100ms",
    ]);
    try {
      const failed = await node.waitFor("sender.failed");
      expect(failed).toMatchObject({ level: "warn", monitor: "no-such-host.invalid:26722", failures: 1 });
      await new Promise((r) => setTimeout(r, 500));
      expect(node.child.exitCode).toBeNull();
      expect(node.of("sender.failed")).toHaveLength(1); // the first of a streak, then every 60th
      node.signal("SIGTERM");
      expect((await node.exited).code).toBe(0);
    } finally {
      await node.stop();
    }
  });
});
