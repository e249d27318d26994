// hb under a real systemd and journald: installed with systemd/install.sh (which installs the
// package that `npm run package` built) into a throw-away container, then driven exactly as an
// operator would with systemctl and journalctl.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { REPO, Sandbox, sandboxUnavailable, systemdRequired, type JournalEntry } from "./sandbox.js";

const unavailable = sandboxUnavailable();
if (unavailable !== null && !systemdRequired) {
  console.warn(`\n*** systemd tests SKIPPED: this machine cannot boot a systemd container: ${unavailable}\n`);
}

const CONFIG = `# the operator's own config, written before installation
listen: 127.0.0.1:26722
status: 127.0.0.1:26723
receive_buffer: 64KiB
defaults: { interval: 250ms, late: 1s, timeout: 2500ms }
keys: { k1: /etc/hb/keys/k1 }
nodes: { "3": {}, "4": {} }
`;
const NODE_ENV = "HB_MONITOR=127.0.0.1:26722\nHB_INTERVAL=250ms\nHB_KEY_FILE=/etc/hb/keys/k1\n";
const WATCHDOG_SEC = 10;

const ev = (e: JournalEntry) => e.event!;
const named = (event: string, node?: string) => (e: NonNullable<JournalEntry["event"]>) =>
  e.event === event && (node === undefined || e.node === node);

if (unavailable !== null && systemdRequired) {
  describe("hb under a real systemd", () => {
    it("can boot a systemd container (required in CI)", () => {
      throw new Error(`cannot run the systemd tests: ${unavailable}`);
    });
  });
}

describe.skipIf(unavailable !== null)("hb under a real systemd", () => {
  const box = new Sandbox(`hb-test-${process.pid}`);
  const install = () => box.ok(`${REPO}/systemd/install.sh`);
  const configSum = () => box.ok("sha256sum", "/etc/hb/heartbeat.yaml", "/etc/hb/node.env");
  /** systemctl stop, then: the unit's main process exited 0 and systemd counts it a success. */
  const stopCleanly = (unit: string): void => {
    box.ok("systemctl", "stop", unit);
    expect(box.show(unit, "Result", "ExecMainStatus", "ActiveState")).toEqual({
      Result: "success",
      ExecMainStatus: "0",
      ActiveState: "inactive",
    });
  };
  let operatorSums = "";

  beforeAll(() => {
    box.down();
    box.upAsHost();
    box.ok("mkdir", "-p", "/etc/hb");
    box.writeFile("/etc/hb/heartbeat.yaml", CONFIG);
    box.writeFile("/etc/hb/node.env", NODE_ENV);
    operatorSums = configSum();
  }, 60_000);

  afterAll(() => box.down(), 60_000);

  it("installs with one command, keeping the operator's config, and the units verify", () => {
    const out = install();
    expect(out).toContain("kept /etc/hb/heartbeat.yaml");
    expect(configSum()).toBe(operatorSums);
    expect(box.ok("hb", "--version").trim()).toMatch(/^\d+\.\d+\.\d+/);
    expect(box.show("hb-monitor.service", "LoadState").LoadState).toBe("loaded");
    expect(box.ok("systemd-analyze", "verify", "hb-monitor.service", "hb-node@3.service")).toBe("");
  });

  it("upgrades by installing again, still keeping the operator's config", () => {
    install();
    expect(configSum()).toBe(operatorSums);
  });

  it("keeps keys readable by the dynamic users only through the hb-keys group", () => {
    expect(box.ok("stat", "-c", "%a %U %G", "/etc/hb/keys").trim()).toBe("750 root hb-keys");
    box.sh(
      "openssl rand -hex 32 > /etc/hb/keys/k1 2>/dev/null || head -c 48 /dev/urandom | od -An -tx1 | tr -d ' \\n' > /etc/hb/keys/k1",
    );
    box.ok("chgrp", "hb-keys", "/etc/hb/keys/k1");
    box.ok("chmod", "0640", "/etc/hb/keys/k1");
    expect(box.ok("hb", "check-config", "/etc/hb/heartbeat.yaml")).toContain("auth required (1 key(s))");
  });

  it("is ready only once started: systemctl start returns with the monitor active and a status line", () => {
    box.ok("systemctl", "start", "hb-monitor");
    const show = box.show("hb-monitor", "ActiveState", "Type", "StatusText", "NotifyAccess", "WatchdogUSec");
    expect(show).toMatchObject({ ActiveState: "active", Type: "notify", NotifyAccess: "all" });
    expect(show.StatusText).toBe("0 up, 0 late, 0 down, 0 left, 2 new");
    expect(show.WatchdogUSec).toBe(`${WATCHDOG_SEC}s`);
    expect(box.events().map((e) => ev(e).event)).toEqual(["monitor.started"]);
    expect(box.ok("hb", "status", "--json")).toContain('"receiveBuffer"');
  });

  it("reports node.up for hb-node@3 and hb-node@4", async () => {
    box.ok("systemctl", "start", "hb-node@3", "hb-node@4");
    await box.waitForEvent(named("node.up", "3"), 10_000);
    const up4 = await box.waitForEvent(named("node.up", "4"), 10_000);
    expect(up4.PRIORITY).toBe("6");
    expect(up4.SYSLOG_IDENTIFIER).toBe("hb-monitor");
  });

  it("reports a hung node (SIGSTOP, still active for systemd) late, then down at priority err", async () => {
    box.ok("systemctl", "kill", "-s", "STOP", "hb-node@4");
    expect(box.show("hb-node@4", "ActiveState").ActiveState).toBe("active");
    const late = await box.waitForEvent(named("node.late", "4"), 10_000);
    const down = await box.waitForEvent(named("node.down", "4"), 10_000);
    expect(late.PRIORITY).toBe("4");
    expect(down.PRIORITY).toBe("3");
    expect(ev(down)).toMatchObject({ timeoutMs: 2500 });
    expect(ev(down).at).toBe((ev(down).lastSeen as number) + 2500);
    expect(box.show("hb-node@4", "ActiveState").ActiveState).toBe("active");
  });

  it("reports the node up again, with downMs, after SIGCONT", async () => {
    box.ok("systemctl", "kill", "-s", "CONT", "hb-node@4");
    const up = await box.waitForEvent((e) => named("node.up", "4")(e) && e.previous === "down", 10_000);
    expect(up.PRIORITY).toBe("6");
    expect(ev(up).downMs as number).toBeGreaterThanOrEqual(0);
  });

  it("reports a crashed node that systemd restarts (SIGKILL) as restarted, at warning", async () => {
    box.ok("systemctl", "kill", "-s", "KILL", "hb-node@3");
    const restarted = await box.waitForEvent(named("node.restarted", "3"), 15_000);
    expect(restarted.PRIORITY).toBe("4");
    expect(Number(box.show("hb-node@3", "NRestarts").NRestarts)).toBe(1);
  });

  it("reports systemctl restart of a node as left, then up from left, and not as restarted", async () => {
    const since = box.events().length;
    box.ok("systemctl", "restart", "hb-node@4");
    await box.waitForEvent(named("node.left", "4"), 10_000);
    await box.waitForEvent((e) => named("node.up", "4")(e) && e.previous === "left", 10_000);
    await new Promise((r) => setTimeout(r, 1000));
    const after = box
      .events()
      .slice(since)
      .map((e) => ev(e))
      .filter((e) => e.node === "4")
      .map((e) => e.event);
    expect(after).toEqual(["node.left", "node.up"]);
  });

  it("reports a stopped node as left, and never down", async () => {
    // Only what follows the stop: on a busy machine the restart before it may take longer than the
    // timeout, and that down is no mistake.
    const before = box.events().length;
    stopCleanly("hb-node@3");
    await box.waitForEvent(named("node.left", "3"), 10_000);
    await new Promise((r) => setTimeout(r, 3500)); // longer than the 2.5s timeout
    const downs3 = box
      .events()
      .slice(before)
      .filter((e) => named("node.down", "3")(ev(e)));
    expect(downs3).toEqual([]);
  });

  it('shows the live counts in systemctl status: "1 up, 0 late, 0 down, 1 left"', async () => {
    await box.waitFor(
      "the status line",
      () => box.show("hb-monitor", "StatusText").StatusText === "1 up, 0 late, 0 down, 1 left",
      5000,
    );
    expect(box.ok("systemctl", "status", "hb-monitor", "--no-pager")).toContain(
      'Status: "1 up, 0 late, 0 down, 1 left"',
    );
  });

  it("reloads with systemctl reload, which returns once the new config is in force", () => {
    box.writeFile("/etc/hb/heartbeat.yaml", CONFIG.replace(`"4": {}`, `"4": { late: 1500ms }`));
    const pid = box.show("hb-monitor", "MainPID").MainPID;
    box.ok("systemctl", "reload", "hb-monitor");
    // No waiting: the event is in the journal by the time systemctl returns.
    const reloaded = box.events().filter((e) => ev(e).event === "config.reloaded");
    expect(reloaded.map((e) => ev(e).changes)).toEqual([["nodes.4: late 1s -> 1.5s"]]);
    expect(box.show("hb-monitor", "MainPID").MainPID).toBe(pid);
  });

  it("rejects a broken config on reload: systemctl reload fails, the monitor keeps running on the old one", () => {
    const pid = box.show("hb-monitor", "MainPID").MainPID;
    box.writeFile("/etc/hb/heartbeat.yaml", CONFIG.replace(`"4": {}`, `"4": { timeout: 100ms }`));
    const r = box.run("systemctl", "reload", "hb-monitor");
    box.writeFile("/etc/hb/heartbeat.yaml", CONFIG);
    expect(r.code).not.toBe(0);
    const rejected = box.events().filter((e) => ev(e).event === "config.rejected");
    expect(rejected).toHaveLength(1);
    expect(rejected[0]!.PRIORITY).toBe("3");
    expect(ev(rejected[0]!).errors).toEqual([
      "/etc/hb/heartbeat.yaml:7:19: nodes.4: timeout (100ms) must be more than 2 x interval (250ms)",
    ]);
    expect(box.show("hb-monitor", "MainPID", "ActiveState")).toEqual({ MainPID: pid, ActiveState: "active" });
    box.ok("systemctl", "reload", "hb-monitor");
  });

  it("reports bad datagrams and its own stalls at warning", async () => {
    box.ok("bash", "-c", "for i in 1 2 3; do printf junk > /dev/udp/127.0.0.1/26722; done");
    await box.waitForEvent(named("datagrams.rejected"), 10_000);
    box.ok("systemctl", "kill", "-s", "STOP", "hb-monitor");
    await new Promise((r) => setTimeout(r, 3000)); // past the timeout, well within WatchdogSec
    box.ok("systemctl", "kill", "-s", "CONT", "hb-monitor");
    const stalled = await box.waitForEvent(named("monitor.stalled"), 10_000);
    expect(stalled.PRIORITY).toBe("4");
    await new Promise((r) => setTimeout(r, 1500));
    expect(box.events().filter((e) => named("node.down", "4")(ev(e)))).toHaveLength(1); // only the SIGSTOP one
  });

  it("journalctl -p warning shows exactly the late, down, restarted, rejected and stalled events, nothing at info", () => {
    const warnings = box
      .journal("hb-monitor", "-p", "warning")
      .filter((e) => e.SYSLOG_IDENTIFIER === "hb-monitor");
    const names = warnings.map((e) => e.event?.event ?? `not an event: ${e.MESSAGE}`);
    expect(new Set(names)).toEqual(
      new Set([
        "node.late",
        "node.down",
        "node.restarted",
        "config.rejected",
        "datagrams.rejected",
        "monitor.stalled",
      ]),
    );
    expect(warnings.every((e) => Number(e.PRIORITY) <= 4)).toBe(true);
    const infos = box
      .events()
      .filter((e) => e.PRIORITY === "6")
      .map((e) => ev(e).event);
    expect(infos).toEqual(
      expect.arrayContaining(["monitor.started", "node.up", "node.left", "config.reloaded"]),
    );
  });

  it("restarts a monitor whose event loop hangs (watchdog), without paging about nodes that kept beating", async () => {
    box.ok("systemctl", "start", "hb-node@3");
    await box.waitForEvent((e) => named("node.up", "3")(e) && e.previous === "left", 10_000);
    const before = box.show("hb-monitor", "MainPID", "NRestarts");
    const stoppedAt = Date.now();
    box.ok("systemctl", "kill", "-s", "STOP", "hb-monitor");
    await box.waitFor(
      "the watchdog restart",
      () => {
        const now = box.show("hb-monitor", "MainPID", "ActiveState");
        return now.MainPID !== before.MainPID && now.MainPID !== "0" && now.ActiveState === "active";
      },
      3 * WATCHDOG_SEC * 1000,
    );
    const restartMs = Date.now() - stoppedAt;
    // By the watchdog (the journal says so): WatchdogSec after the last ping, which came at most
    // half of it (the ping interval) before the stop; not by something later.
    expect(restartMs).toBeGreaterThanOrEqual((WATCHDOG_SEC * 1000) / 2);
    expect(restartMs).toBeLessThan(2 * WATCHDOG_SEC * 1000);
    expect(Number(box.show("hb-monitor", "NRestarts").NRestarts)).toBe(Number(before.NRestarts) + 1);
    expect(box.journal("hb-monitor").some((e) => e.MESSAGE.includes("Failed with result 'watchdog'"))).toBe(
      true,
    );
    const newPid = box.show("hb-monitor", "MainPID").MainPID;
    const upAgain = (node: string) =>
      box.events().find((e) => e._PID === newPid && named("node.up", node)(ev(e)));
    await box.waitFor(
      "nodes 3 and 4 up again",
      () => upAgain("3") !== undefined && upAgain("4") !== undefined,
      10_000,
    );
    // Marks are saved every 5 s: node 3's start just before the hang may not be in them yet, and
    // the leave before it is (then the monitor knows it as left). Neither is a restart.
    expect(["new", "left"]).toContain(ev(upAgain("3")!).previous);
    expect(ev(upAgain("4")!).previous).toBe("new");
    expect(box.events().filter((e) => e._PID === newPid && ev(e).event === "node.restarted")).toEqual([]);
    await new Promise((r) => setTimeout(r, 6000)); // past the new monitor's 5s startup grace
    const fromNewMonitor = box.events().filter((e) => e._PID === newPid);
    expect(fromNewMonitor.filter((e) => ["node.down", "node.late"].includes(ev(e).event))).toEqual([]);
    console.info(`watchdog restart after ${restartMs} ms (WatchdogSec=${WATCHDOG_SEC}s)`);
  }, 90_000);

  it("stops cleanly: monitor.stopping, exit 0", async () => {
    stopCleanly("hb-monitor");
    await box.waitForEvent(named("monitor.stopping"), 10_000);
  });

  it("keeps the operator's config on uninstall, and removes the rest", () => {
    box.ok(`${REPO}/systemd/uninstall.sh`);
    expect(box.show("hb-monitor.service", "LoadState").LoadState).toBe("not-found");
    expect(box.run("test", "-e", "/usr/bin/hb").code).not.toBe(0);
    expect(box.run("test", "-e", "/usr/share/hb").code).not.toBe(0);
    box.writeFile("/etc/hb/heartbeat.yaml", CONFIG);
    expect(configSum()).toBe(operatorSums);
  });
});
