// The Debian package under a real systemd, as an operator uses it: apt-get install on a root
// without hb, start the units by hand, read the journal, upgrade to a higher version while they
// run, then remove and purge.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildDebAt, builtDeb, nextVersion, VERSION } from "./packages.js";
import { REPO, Sandbox, sandboxUnavailable, systemdRequired, type JournalEntry } from "./sandbox.js";

const unavailable = sandboxUnavailable();
if (unavailable !== null && !systemdRequired) {
  console.warn(`\n*** package tests SKIPPED: this machine cannot boot a systemd container: ${unavailable}\n`);
}
if (unavailable !== null && systemdRequired) {
  describe("the Debian package under a real systemd", () => {
    it("can boot a systemd container (required in CI)", () => {
      throw new Error(`cannot run the package tests: ${unavailable}`);
    });
  });
}

type Event = NonNullable<JournalEntry["event"]>;
const named = (event: string, node?: string) => (e: Event) =>
  e.event === event && (node === undefined || e.node === node);

describe.skipIf(unavailable !== null)("the Debian package under a real systemd", () => {
  const box = new Sandbox(`hb-pkg-${process.pid}`);
  const apt = (...args: string[]) =>
    box.ok(
      "env",
      "DEBIAN_FRONTEND=noninteractive",
      "apt-get",
      "-y",
      "-q",
      "--no-install-recommends",
      ...args,
    );
  const active = (unit: string) => box.show(unit, "ActiveState").ActiveState;
  const exists = (path: string) => box.run("test", "-e", path).code === 0;
  const events = (): Event[] => box.events().map((e) => e.event!);
  let deb = "";
  let next = "";

  beforeAll(() => {
    deb = builtDeb();
    next = buildDebAt(nextVersion());
    box.down();
    box.upAsHost();
  }, 120_000);

  afterAll(() => box.down(), 60_000);

  it("installs with apt-get on a root without hb, and enables and starts nothing", () => {
    expect(exists("/usr/bin/hb")).toBe(false);
    apt("install", deb);
    expect(box.ok("hb", "--version").trim()).toBe(VERSION);
    expect(box.ok("dpkg-query", "-W", "-f", "${Status}", "hb")).toBe("install ok installed");
    for (const unit of ["hb-monitor.service", "hb-node@3.service"]) {
      expect(box.show(unit, "LoadState", "ActiveState", "UnitFileState")).toEqual({
        LoadState: "loaded",
        ActiveState: "inactive",
        UnitFileState: "disabled",
      });
    }
    expect(box.ok("stat", "-c", "%a %U %G", "/etc/hb/keys").trim()).toBe("750 root hb-keys");
    expect(box.ok("hb", "check-config", "/etc/hb/heartbeat.yaml")).toContain("listen 127.0.0.1:26722");
  });

  it("runs hb-monitor and hb-node@3 from the package: node.up for 3 in the journal, hb status exits 0", async () => {
    box.ok("systemctl", "start", "hb-monitor", "hb-node@3");
    await box.waitForEvent(named("node.up", "3"), 15_000);
    const status = box.run("hb", "status");
    expect(status.code, status.stderr).toBe(0);
    expect(status.stdout).toMatch(/^3\s+up\b/m);
    expect(box.ok("systemctl", "show", "hb-monitor", "--property=ExecMainPID")).not.toBe("ExecMainPID=0\n");
  });

  it("has man pages that man renders: hb(1), heartbeat.yaml(5) and hb-monitor(8)", () => {
    for (const page of [["hb"], ["5", "heartbeat.yaml"], ["8", "hb-monitor"]]) {
      const r = box.run("env", "MANWIDTH=80", "man", "-P", "cat", ...page);
      expect(r.code, `man ${page.join(" ")}: ${r.stderr}`).toBe(0);
      expect(r.stdout).toMatch(/^NAME$/m);
      expect(r.stderr).toBe("");
    }
  });

  it("upgrades to a higher version while both units run: the monitor restarts, node 3 is never down or restarted, and the edited config is kept", async () => {
    const edited = box.ok("cat", "/etc/hb/heartbeat.yaml") + "# edited by the operator\n";
    box.writeFile("/etc/hb/heartbeat.yaml", edited);
    const before = {
      monitor: box.show("hb-monitor", "MainPID").MainPID,
      node: box.show("hb-node@3", "MainPID").MainPID,
    };
    apt("install", next);
    expect(box.ok("hb", "--version").trim()).toBe(nextVersion());
    expect(box.ok("cat", "/etc/hb/heartbeat.yaml")).toBe(edited);
    expect(active("hb-monitor")).toBe("active");
    expect(active("hb-node@3")).toBe("active");
    const after = {
      monitor: box.show("hb-monitor", "MainPID").MainPID,
      node: box.show("hb-node@3", "MainPID").MainPID,
    };
    expect(after.monitor).not.toBe(before.monitor);
    expect(after.node).not.toBe(before.node);
    // The new monitor hears node 3's leave, then its new incarnation.
    const upAgain = await box.waitForEvent((e) => named("node.up", "3")(e) && e.previous === "left", 15_000);
    expect(upAgain.event?.event).toBe("node.up");
    const started = events().filter(named("monitor.started"));
    expect(started.map((e) => e.version)).toEqual([VERSION, nextVersion()]);
    // Well past node 3's timeout (10 s in the shipped config): nothing of node 3 went wrong.
    await new Promise((r) => setTimeout(r, 11_000));
    const trouble = events().filter(
      (e) => e.node === "3" && ["node.down", "node.restarted", "node.late"].includes(e.event),
    );
    expect(trouble).toEqual([]);
    expect(box.run("hb", "status").code).toBe(0);
  }, 60_000);

  it("holds node 3's page in a maintenance window, and keeps the window across a restart of the monitor", async () => {
    const add = box.run(
      "hb",
      "maint",
      "add",
      "3",
      "--for",
      "5m",
      "--comment",
      "disk swap",
      "--author",
      "ops",
    );
    expect(add.code, add.stderr).toBe(0);
    const id = add.stdout.trim();
    await box.waitForEvent((e) => named("maint.added")(e) && e.id === id, 10_000);
    // Hung, as systemd still reports it active: judged down at its deadline, and not paged.
    box.ok("systemctl", "kill", "-s", "STOP", "hb-node@3");
    const down = await box.waitForEvent(named("node.down", "3"), 20_000);
    expect(down.event).toMatchObject({ notice: "suppressed", suppressedBy: [`maint:${id}`] });
    expect(box.run("hb", "status").stdout).toMatch(new RegExp(`^3\\s+down \\(maint ${id}\\)`, "m"));
    const count = (event: string, node?: string) => events().filter(named(event, node)).length;
    const starts = count("monitor.started");
    box.ok("systemctl", "restart", "hb-monitor");
    await box.waitFor("the monitor's restart", () => count("monitor.started") > starts, 15_000);
    expect(box.ok("hb", "maint", "list")).toContain(id);
    expect(box.ok("hb", "maint", "end", id).trim()).toBe(id);
    const ups = count("node.up", "3");
    box.ok("systemctl", "kill", "-s", "CONT", "hb-node@3");
    await box.waitFor("node 3 back", () => count("node.up", "3") > ups, 15_000);
  }, 60_000);

  it("captures node 3's arrivals from the running package, and replays and tunes the trace", async () => {
    const capture = box.run("hb", "capture", "--seconds", "4", "--out", "/tmp/node3.trace", "--node", "3");
    expect(capture.code, capture.stderr).toBe(0);
    expect(capture.stderr).toMatch(/^captured \d+ arrivals of 1 node/m);
    const trace = box.ok("cat", "/tmp/node3.trace");
    expect(trace.split("\n")[0]).toBe("# hb-trace 1");
    expect(trace.match(/^3,[\d.]+$/gm)?.length ?? 0).toBeGreaterThanOrEqual(2);
    await box.waitForEvent(named("capture.ended"), 10_000);
    const replay = box.run(
      "hb",
      "replay",
      "/tmp/node3.trace",
      "--config",
      "/etc/hb/heartbeat.yaml",
      "--json",
    );
    expect(replay.code, replay.stderr).toBe(0);
    const doc = JSON.parse(replay.stdout) as { transitions: { node: string; state: string }[] };
    expect(doc.transitions).toContainEqual(expect.objectContaining({ node: "3", state: "up" }));
    const tune = box.run("hb", "tune", "/tmp/node3.trace", "--config", "/etc/hb/heartbeat.yaml");
    expect(tune.code, tune.stderr).toBe(0);
    expect(tune.stdout).toContain("too few to suggest anything");
    expect(box.ok("hb", "status", "--node", "3")).toMatch(/^3: \d+ gaps/m);
  }, 30_000);

  it("stops the units on apt-get remove and keeps /etc/hb", () => {
    apt("remove", "hb");
    expect(active("hb-monitor")).not.toBe("active");
    expect(active("hb-node@3")).not.toBe("active");
    expect(exists("/usr/bin/hb")).toBe(false);
    expect(box.ok("cat", "/etc/hb/heartbeat.yaml")).toContain("# edited by the operator");
    expect(exists("/etc/hb/node.env")).toBe(true);
    expect(exists("/var/lib/private/hb/monitor")).toBe(true);
    // The nodes stop first, so the monitor heard node 3 leave before it stopped.
    const last = events()
      .filter((e) => e.node === "3")
      .at(-1);
    expect(last?.event).toBe("node.left");
  });

  it("removes /etc/hb and hb's state on apt-get purge", () => {
    apt("purge", "hb");
    for (const path of [
      "/etc/hb",
      "/var/lib/hb",
      "/var/lib/private/hb",
      "/usr/share/hb",
      "/usr/share/doc/hb",
    ])
      expect(exists(path), path).toBe(false);
    expect(box.run("dpkg-query", "-W", "hb").code).not.toBe(0);
  });

  describe("where there is no dpkg, systemd/install.sh", () => {
    // A copy of what install.sh reads, owned by an unprivileged builder, and a PATH without dpkg,
    // apt or Debian's init-system-helpers, as on another distribution.
    const SRC = "/tmp/hb-src";
    const PATH = "/tmp/no-dpkg";
    const sh = (command: string) => box.ok("env", `PATH=${PATH}`, "sh", "-c", command);

    beforeAll(() => {
      box.ok("mkdir", "-p", `${SRC}/dist`, PATH);
      box.ok("cp", "-r", `${REPO}/systemd`, `${REPO}/package.json`, `${SRC}/`);
      box.ok("cp", "-r", `${REPO}/dist/root`, `${SRC}/dist/`);
      box.ok("chown", "-R", "1000:1000", SRC);
      box.ok(
        "sh",
        "-c",
        `for d in /usr/local/bin /usr/bin /bin /usr/sbin /sbin; do for f in "$d"/*; do
           case "\${f##*/}" in dpkg*|apt*|deb-systemd-*) ;; *) [ -e "${PATH}/\${f##*/}" ] || ln -s "$f" "${PATH}/"; esac
         done; done`,
      );
      expect(box.run("env", `PATH=${PATH}`, "sh", "-c", "command -v dpkg").code).not.toBe(0);
    });

    it("installs the package's files, owned by root, and runs them under systemd", async () => {
      const out = sh(`${SRC}/systemd/install.sh`);
      expect(out).toContain(`installed hb ${VERSION} from ${SRC}/dist/root`);
      expect(
        box
          .ok(
            "stat",
            "-c",
            "%U:%G %a",
            "/usr/share/hb/hb.mjs",
            "/lib/systemd/system/hb-monitor.service",
            "/etc/hb/heartbeat.yaml",
          )
          .trim()
          .split("\n"),
      ).toEqual(["root:root 755", "root:root 644", "root:root 644"]);
      expect(box.ok("stat", "-c", "%a %U %G", "/etc/hb/keys").trim()).toBe("750 root hb-keys");
      expect(box.ok("hb", "--version").trim()).toBe(VERSION);
      const since = events().length;
      box.ok("systemctl", "start", "hb-monitor", "hb-node@3");
      await box.waitFor(
        "node.up for 3 from the monitor installed without dpkg",
        () => events().slice(since).some(named("node.up", "3")),
        15_000,
      );
    });

    it("uninstall.sh stops the units, the nodes first, and removes the files, keeping /etc/hb", () => {
      sh(`${SRC}/systemd/uninstall.sh`);
      expect(active("hb-monitor")).not.toBe("active");
      expect(active("hb-node@3")).not.toBe("active");
      for (const path of ["/usr/bin/hb", "/usr/share/hb", "/lib/systemd/system/hb-monitor.service"])
        expect(exists(path), path).toBe(false);
      expect(exists("/etc/hb/heartbeat.yaml")).toBe(true);
      expect(
        events()
          .filter((e) => e.node === "3")
          .at(-1)?.event,
      ).toBe("node.left");
      sh(`${SRC}/systemd/uninstall.sh --purge`);
    });
  });
});
