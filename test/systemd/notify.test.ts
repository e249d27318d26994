// Notify hooks under a real systemd: an exec output's hook runs inside hb-monitor.service, as a child
// of the monitor, so it has the unit's sandbox. Shows what a hook can and cannot do there, what the
// example drop-in in systemd/examples widens, and the OnFailure= example for the monitor's own failure.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildDebAt, nextVersion } from "./packages.js";
import { REPO, Sandbox, sandboxUnavailable, systemdRequired, type JournalEntry } from "./sandbox.js";

const unavailable = sandboxUnavailable();
if (unavailable !== null && !systemdRequired) {
  console.warn(
    `\n*** systemd notify tests SKIPPED: this machine cannot boot a systemd container: ${unavailable}\n`,
  );
}

const HOOKS = "/usr/local/lib/hb/hooks";
const EXAMPLES = "/usr/share/doc/hb/examples";
const DROP_INS = "/etc/systemd/system/hb-monitor.service.d";
const RECORDS = "/var/lib/hb/monitor/record";
const SLOW_LOG = "/var/lib/hb/monitor/slow.log";
const SPOOL = "/var/spool/hb";
const CONFIG = `listen: 127.0.0.1:26722
status: 127.0.0.1:26723
defaults: { interval: 250ms, late: 1s, timeout: 2500ms }
nodes: { "5": { labels: { team: ops } } }
notify:
  - name: record
    exec: [${HOOKS}/record]
    on: [node.down]
  - name: spool
    exec: [${HOOKS}/spool]
    on: [node.down]
    attempts: 1
  - name: slow
    exec: [${HOOKS}/slow]
    on: [node.up]
`;
const NODE_ENV = "HB_MONITOR=127.0.0.1:26722\nHB_INTERVAL=250ms\n";

/** Each hook is root-owned 0755, as an operator installs it. */
const HOOK_SCRIPTS: Record<string, string> = {
  // What a hook is given, and what it may do, one `name=value` line each ("no: " and the error).
  record: `#!/bin/sh
mkdir -p ${RECORDS}
can() { name=$1; shift; if err=$("$@" 2>&1 >/dev/null); then echo "$name=yes"; else echo "$name=no: $(echo "$err" | head -n 1)"; fi; }
{
  echo "stdin=$(cat)"
  env | grep -E '^(HB_[A-Z_]*|PATH|HOME)=' | sort
  echo "user=$(id -un)"
  grep -E '^(NoNewPrivs|CapEff):' /proc/self/status | tr -d ' \\t' | tr ':' '='
  can write_state_dir touch ${RECORDS}/w
  can write_tmp touch /tmp/w
  can write_etc touch /etc/hb/w
  can write_spool touch ${SPOOL}/w
  can list_home ls /home/
  can read_loadavg cat /proc/loadavg
  can http node -e "fetch('http://127.0.0.1:26723/status').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"
  if command -v ip >/dev/null; then can netlink ip link show lo; fi
} >"${RECORDS}/.$HB_EVENT" 2>&1
mv "${RECORDS}/.$HB_EVENT" "${RECORDS}/$HB_EVENT"
logger -t hb-hook "recorded $HB_EVENT"
`,
  // Keeps each notice in a spool outside the state directory, readable by the group hb-spool.
  spool: `#!/bin/sh
umask 007
cat >"${SPOOL}/$HB_SEQ.json"
`,
  // Takes 2 s, and says whether it finished or was stopped.
  slow: `#!/bin/sh
echo "start $HB_EVENT" >>${SLOW_LOG}
trap 'echo term >>${SLOW_LOG}; exit 1' TERM
sleep 2 &
wait
echo finished >>${SLOW_LOG}
`,
  // Run by hb-monitor-failed@.service: what systemd told it about the failed unit.
  "monitor-failed": `#!/bin/sh
echo "unit=$1 result=$MONITOR_SERVICE_RESULT code=$MONITOR_EXIT_CODE status=$MONITOR_EXIT_STATUS monitor_unit=$MONITOR_UNIT user=$(id -un)"
if journalctl -q -n 1 -u "$MONITOR_UNIT" >/dev/null 2>&1; then echo journal=readable; else echo journal=unreadable; fi
`,
};

type Event = NonNullable<JournalEntry["event"]>;
const named = (event: string, node?: string) => (e: Event) =>
  e.event === event && (node === undefined || e.node === node);

if (unavailable !== null && systemdRequired) {
  describe("notify hooks under a real systemd", () => {
    it("can boot a systemd container (required in CI)", () => {
      throw new Error(`cannot run the systemd tests: ${unavailable}`);
    });
  });
}

describe.skipIf(unavailable !== null)("notify hooks under a real systemd", () => {
  const box = new Sandbox(`hb-notify-${process.pid}`);
  const exists = (path: string) => box.run("test", "-e", path).code === 0;
  const hasIp = () => box.run("/bin/sh", "-c", "command -v ip").code === 0;
  /** A hook's record of one event: its stdin, its HB_* variables and what it could do. */
  const record = (event: string): Record<string, string> =>
    Object.fromEntries(
      box
        .ok("cat", `${RECORDS}/${event}`)
        .split("\n")
        .filter((l) => l.includes("="))
        .map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]),
    );
  const mainPid = (): string => box.show("hb-monitor", "MainPID").MainPID ?? "";
  /** Waits for an event written by the monitor process `pid` (earlier runs' events do not count). */
  const eventFrom = async (pid: string, match: (e: Event) => boolean, timeoutMs: number) => {
    let found: JournalEntry | undefined;
    await box.waitFor(
      `an event from monitor ${pid}`,
      () => (found = box.events().find((e) => e._PID === pid && match(e.event!))) !== undefined,
      timeoutMs,
    );
    return found!.event!;
  };
  const slowLog = () => (exists(SLOW_LOG) ? box.ok("cat", SLOW_LOG).trim().split("\n") : []);
  /** On a busy host node 5 may also go late and up again, and its hook start a second time: every
   * hook that started has finished. */
  const expectEveryHookFinished = () => {
    const log = slowLog();
    expect(log[0]).toBe("start node.up");
    expect(log.filter((l) => l === "finished")).toHaveLength(log.filter((l) => l === "start node.up").length);
  };
  const notifyTest = (output: string) =>
    box.run("hb", "notify", "test", output, "--config", "/etc/hb/heartbeat.yaml");

  beforeAll(() => {
    box.down();
    box.upAsHost();
    box.ok("mkdir", "-p", "/etc/hb");
    box.writeFile("/etc/hb/heartbeat.yaml", CONFIG);
    box.writeFile("/etc/hb/node.env", NODE_ENV);
    box.ok(`${REPO}/systemd/install.sh`);
    for (const [name, script] of Object.entries(HOOK_SCRIPTS)) {
      box.writeFile(`/tmp/${name}`, script);
      box.ok("install", "-D", "-o", "root", "-g", "root", "-m", "0755", `/tmp/${name}`, `${HOOKS}/${name}`);
    }
    // The operator's side of the spool in the example drop-in, made before the drop-in is used.
    box.ok("groupadd", "--system", "hb-spool");
    box.ok("install", "-d", "-m", "2770", "-g", "hb-spool", SPOOL);
    box.ok("systemctl", "start", "hb-monitor");
  }, 60_000);

  afterAll(() => box.down(), 60_000);

  it("keeps the operator's hooks under /usr/local/lib/hb/hooks when install.sh upgrades the package, and the monitor restarts with them", () => {
    const hooks = () =>
      box.ok("stat", "-c", "%n %U:%G %a", ...Object.keys(HOOK_SCRIPTS).map((n) => `${HOOKS}/${n}`));
    const before = { hooks: hooks(), sums: box.ok("sh", "-c", `sha256sum ${HOOKS}/*`), pid: mainPid() };
    box.ok(`${REPO}/systemd/install.sh`, buildDebAt(nextVersion()));
    expect(box.ok("hb", "--version").trim()).toBe(nextVersion());
    expect(hooks()).toBe(before.hooks);
    expect(hooks()).toContain(`${HOOKS}/record root:root 755`);
    expect(box.ok("sh", "-c", `sha256sum ${HOOKS}/*`)).toBe(before.sums);
    expect(box.show("hb-monitor", "ActiveState").ActiveState).toBe("active");
    expect(mainPid()).not.toBe(before.pid);
    expect(exists(`${EXAMPLES}/hb-monitor-hooks.conf`)).toBe(true);
  }, 60_000);

  it("runs a hook inside the unit when a node goes down, with the notice on stdin and HB_* in its environment", async () => {
    const pid = mainPid();
    box.ok("systemctl", "start", "hb-node@5");
    await eventFrom(pid, named("node.up", "5"), 10_000);
    box.ok("systemctl", "kill", "-s", "STOP", "hb-node@5");
    await box.waitFor("the record of node.down", () => exists(`${RECORDS}/node.down`), 15_000);
    const seen = record("node.down");
    expect(JSON.parse(seen.stdin!)).toMatchObject({
      event: "node.down",
      node: "5",
      state: "down",
      labels: { team: "ops" },
      test: false,
      attempt: 1,
    });
    expect(seen).toMatchObject({
      HB_EVENT: "node.down",
      HB_NODE: "5",
      HB_OUTPUT: "record",
      HB_COUNT: "1",
      HB_TEST: "0",
      HB_LABEL_TEAM: "ops",
    });
  });

  it("runs the hook as the transient user hb, without capabilities, unable to gain any, and without HOME", () => {
    const seen = record("node.down");
    expect(seen).toMatchObject({
      user: "hb",
      CapEff: "0000000000000000",
      NoNewPrivs: "1",
      PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    });
    expect(seen.HOME).toBeUndefined();
  });

  it("lets a hook write only the state directory and a private /tmp, and reach HTTP on loopback; not /etc, a spool, /home, /proc/loadavg or netlink", () => {
    const seen = record("node.down");
    expect(seen).toMatchObject({ write_state_dir: "yes", write_tmp: "yes", http: "yes" });
    expect(seen.write_etc).toMatch(/^no: .*Read-only file system$/);
    expect(seen.write_spool).toMatch(/^no: .*Permission denied$/);
    expect(seen.list_home).toMatch(/^no: .*Permission denied$/);
    expect(seen.read_loadavg).toMatch(/^no: .*No such file or directory$/);
    if (hasIp()) expect(seen.netlink).toMatch(/^no/);
    // The hook's /tmp is the unit's own, not the host's.
    expect(exists("/tmp/w")).toBe(false);
  });

  it("reports notify.failed, with the hook's error, when a hook writes outside its allowed paths (a spool)", async () => {
    const failed = await box.waitForEvent(named("notify.failed"), 10_000);
    expect(failed.PRIORITY).toBe("4");
    expect(failed.event).toMatchObject({ output: "spool", notices: 1, nodes: ["5"] });
    expect(failed.event!.reason).toMatch(/^exit_\d+$/);
    expect(failed.event!.detail).toMatch(/cannot create \/var\/spool\/hb\/\d+\.json: Permission denied/);
  });

  it("sends what a hook logs with logger(1) to the journal, under the hook's own identifier", async () => {
    await box.waitFor(
      "the hook's line in the journal",
      () => box.ok("journalctl", "-t", "hb-hook", "-o", "cat", "--no-pager").includes("recorded node.down\n"),
      5000,
    );
  });

  it("hb notify test NAME, run as root, delivers through the hook inside the unit and exits 0; the journal says notify.test", () => {
    const r = notifyTest("record");
    expect(r.code).toBe(0);
    expect(r.stdout).toBe("record: test notice delivered\n");
    expect(record("notify.test")).toMatchObject({ HB_TEST: "1", HB_OUTPUT: "record", user: "hb" });
    const said = box.events().filter((e) => named("notify.test")(e.event!));
    expect(said.map((e) => e.event)).toContainEqual(
      expect.objectContaining({ output: "record", outcome: "delivered" }),
    );
  });

  it("hb notify test NAME exits 1 with the hook's error when the hook fails inside the unit", () => {
    const r = notifyTest("spool");
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^hb notify: spool: exit_\d+: .*Permission denied\n$/);
  });

  it("lets a hook in flight at systemctl stop finish within the monitor's stop grace (KillMode=mixed)", async () => {
    box.ok("systemctl", "kill", "-s", "CONT", "hb-node@5");
    await box.waitFor("the slow hook to start", () => slowLog().includes("start node.up"), 10_000);
    box.ok("systemctl", "stop", "hb-monitor");
    expectEveryHookFinished();
    expect(box.show("hb-monitor", "Result").Result).toBe("success");
  });

  it("with the hooks drop-in (systemd/examples/hb-monitor-hooks.conf) the same hooks write the spool, list /home, read /proc/loadavg and use netlink", () => {
    box.ok("install", "-D", "-m", "0644", `${EXAMPLES}/hb-monitor-hooks.conf`, `${DROP_INS}/hooks.conf`);
    box.ok("systemctl", "daemon-reload");
    box.ok("systemctl", "start", "hb-monitor");
    expect(
      box.show("hb-monitor", "KillMode", "ProtectHome", "ProcSubset", "RestrictAddressFamilies"),
    ).toEqual({
      KillMode: "mixed",
      ProtectHome: "read-only",
      ProcSubset: "all",
      RestrictAddressFamilies: "AF_INET AF_INET6 AF_NETLINK AF_UNIX",
    });
    expect(notifyTest("spool").code).toBe(0);
    const spooled = box.ok("sh", "-c", `stat -c '%G %a' ${SPOOL}/*.json`).trim().split("\n");
    expect(spooled).toEqual(["hb-spool 660"]);
    box.ok("rm", `${RECORDS}/notify.test`);
    expect(notifyTest("record").code).toBe(0);
    const seen = record("notify.test");
    expect(seen).toMatchObject({ write_spool: "yes", list_home: "yes", read_loadavg: "yes", user: "hb" });
    expect(seen.write_etc).toMatch(/^no: .*Read-only file system$/);
    if (hasIp()) expect(seen.netlink).toBe("yes");
  });

  it("with the hooks drop-in too, a hook in flight at stop finishes within the monitor's stop grace", async () => {
    const pid = mainPid();
    await eventFrom(pid, named("node.up", "5"), 10_000);
    box.ok("rm", "-f", SLOW_LOG);
    box.ok("systemctl", "kill", "-s", "STOP", "hb-node@5");
    await eventFrom(pid, named("node.down", "5"), 10_000);
    box.ok("systemctl", "kill", "-s", "CONT", "hb-node@5");
    await box.waitFor("the slow hook to start", () => slowLog().includes("start node.up"), 10_000);
    box.ok("systemctl", "stop", "hb-monitor");
    expectEveryHookFinished();
    expect(box.show("hb-monitor", "Result").Result).toBe("success");
  });

  describe("the OnFailure= example (hb-monitor-onfailure.conf, hb-monitor-failed@.service)", () => {
    const HANDLER = "hb-monitor-failed@hb-monitor.service";

    beforeAll(() => {
      box.ok(
        "install",
        "-D",
        "-m",
        "0644",
        `${EXAMPLES}/hb-monitor-onfailure.conf`,
        `${DROP_INS}/onfailure.conf`,
      );
      box.ok("install", "-m", "0644", `${EXAMPLES}/hb-monitor-failed@.service`, "/etc/systemd/system/");
      box.ok("systemctl", "daemon-reload");
      box.ok("systemctl", "start", "hb-monitor");
    });

    it("does not start hb-monitor-failed@ when systemd restarts the monitor after a crash", async () => {
      expect(box.show("hb-monitor", "OnFailure").OnFailure).toBe(HANDLER);
      const before = box.show("hb-monitor", "MainPID", "NRestarts");
      box.ok("systemctl", "kill", "-s", "KILL", "hb-monitor");
      await box.waitFor(
        "the restart",
        () => {
          const now = box.show("hb-monitor", "MainPID", "ActiveState");
          return now.MainPID !== before.MainPID && now.MainPID !== "0" && now.ActiveState === "active";
        },
        10_000,
      );
      expect(Number(box.show("hb-monitor", "NRestarts").NRestarts)).toBe(Number(before.NRestarts) + 1);
      expect(box.show(HANDLER, "ActiveState", "InvocationID")).toEqual({
        ActiveState: "inactive",
        InvocationID: "",
      });
    });

    it("starts hb-monitor-failed@hb-monitor.service when the monitor fails for good (a bad config, exit 78), with MONITOR_SERVICE_RESULT and MONITOR_EXIT_STATUS", async () => {
      box.writeFile("/etc/hb/heartbeat.yaml", `${CONFIG}no_such_key: 1\n`);
      expect(box.run("systemctl", "restart", "hb-monitor").code).not.toBe(0);
      const failedAt = Date.now();
      expect(box.show("hb-monitor", "ActiveState", "Result", "ExecMainStatus")).toEqual({
        ActiveState: "failed",
        Result: "exit-code",
        ExecMainStatus: "78",
      });
      let said: string[] = [];
      await box.waitFor(
        "the handler's report",
        () => (said = box.journal(HANDLER).map((e) => e.MESSAGE)).some((m) => m.startsWith("journal=")),
        10_000,
      );
      expect(said.find((m) => m.startsWith("unit="))).toMatch(
        /^unit=hb-monitor\.service result=exit-code code=exited status=78 monitor_unit=hb-monitor\.service user=(?!root$)\S+$/,
      );
      expect(said).toContain("journal=readable");
      // Past RestartSec=1s: 78 is in RestartPreventExitStatus=, so systemd did not start it again.
      await new Promise((r) => setTimeout(r, Math.max(0, failedAt + 1500 - Date.now())));
      expect(box.show("hb-monitor", "ActiveState", "NRestarts")).toEqual({
        ActiveState: "failed",
        NRestarts: "0",
      });
      expect(box.show(HANDLER, "Result").Result).toBe("success");
    });
  });
});
