// A config or key file that cannot be read is exit 66 with a message saying why; one that reads
// but is not a usable config is exit 78; never 70 (an internal error). The same for
// `hb check-config` and `hb monitor`, and a reload that meets one keeps the old config running.
import { spawnSync } from "node:child_process";
import { randomFillSync } from "node:crypto";
import { chmodSync, mkdirSync, truncateSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { HB_BIN, TempDir, runHb, startMonitor } from "../support/hb-process.js";

const dir = new TempDir();
// Readable by the unprivileged user that the permission cases run as.
chmodSync(dir.path, 0o755);
afterAll(() => dir.remove());

const NOBODY = 65534;
const KEY = "0123456789abcdef0123456789abcdef\n";

/** A config with one recurring window (line 3) of this schedule, and `zone` as its last key. */
function window(schedule: string, zone = ""): string {
  const last = zone === "" ? "" : `, ${zone}`;
  return `maintenance:\n  windows:\n    - { name: w, match: ["web-*"], schedule: "${schedule}"${last} }\n`;
}

function garbage(bytes: number): Buffer {
  const data = randomFillSync(Buffer.alloc(bytes));
  data[10] = 0; // random bytes may happen to decode; a NUL never is a YAML text
  return data;
}

/** Runs hb as an unprivileged user, for whom a file of mode 0600 owned by root is unreadable. */
function runHbAsNobody(args: string[]): { code: number | null; stderr: string } {
  const r = spawnSync(
    "setpriv",
    [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, "--clear-groups", process.execPath, HB_BIN, ...args],
    { encoding: "utf8", timeout: 20_000 },
  );
  return { code: r.status, stderr: r.stderr };
}

const cases: { name: string; path: () => string; code: number; says: RegExp }[] = [
  {
    name: "a missing file",
    path: () => join(dir.path, "absent.yaml"),
    code: 66,
    says: /no such file \(ENOENT\)/,
  },
  {
    name: "a directory",
    path: () => (mkdirSync(join(dir.path, "dir.yaml"), { recursive: true }), join(dir.path, "dir.yaml")),
    code: 66,
    says: /is a directory/,
  },
  {
    name: "binary data",
    path: () => (writeFileSync(join(dir.path, "binary.yaml"), garbage(4096)), join(dir.path, "binary.yaml")),
    code: 78,
    says: /:\d+:\d+: not a text file/,
  },
  {
    name: "a 50 MB file",
    path: () => {
      const path = dir.file("huge.yaml", "nodes:\n");
      truncateSync(path, 50 * 1024 * 1024);
      return path;
    },
    code: 78,
    says: /is 50\.0 MiB; a config is at most 16\.0 MiB/,
  },
  {
    name: "a missing key file",
    path: () => dir.file("no-key.yaml", `keys: { k1: ${join(dir.path, "absent.key")} }\n`),
    code: 66,
    says: /no-key\.yaml:1:9: key k1: .*absent\.key: no such file/,
  },
  {
    name: "a directory as a key file",
    path: () => dir.file("dir-key.yaml", `keys: { k1: ${dir.path} }\n`),
    code: 66,
    says: /dir-key\.yaml:1:9: key k1: .*: is a directory/,
  },
  {
    name: "a key file too short to be a key",
    path: () => {
      dir.file("short.key", "short\n", 0o600);
      return dir.file("short-key.yaml", `keys: { k1: short.key }\n`);
    },
    code: 78,
    says: /short-key\.yaml:1:9: key k1: \S*\/short\.key holds 5 bytes/,
  },
  {
    name: "a dependency cycle",
    path: () =>
      dir.file("cycle.yaml", "nodes:\n  a: { parents: [b] }\n  b: { parents: [c] }\n  c: { parents: [a] }\n"),
    code: 78,
    says: /cycle\.yaml:4:18: dependency cycle: a -> b -> c -> a/,
  },
  {
    name: "an unknown parent",
    path: () => dir.file("parent.yaml", "nodes:\n  sw-1: {}\n  web-7: { parents: [sw-1, sw-3] }\n"),
    code: 78,
    says: /parent\.yaml:3:28: nodes\.web-7\.parents: unknown parent "sw-3"/,
  },
  {
    name: "a bad schedule",
    path: () => dir.file("schedule.yaml", window("Tue 2:00-04:00", "timezone: UTC")),
    code: 78,
    says: /schedule\.yaml:3:46: maintenance\.windows\.w\.schedule: "Tue 2:00-04:00": "2:00" is not a time of day .*a schedule is DAYS HH:MM-HH:MM/,
  },
  {
    name: "a window without a time zone",
    path: () => dir.file("no-zone.yaml", window("Tue 02:00-04:00")),
    code: 78,
    says: /no-zone\.yaml:3:7: maintenance\.windows\.w: timezone is required: a window's schedule is read in an explicit timezone, e\.g\. Europe\/Paris or UTC/,
  },
  {
    name: "a window in an unknown time zone",
    path: () => dir.file("zone.yaml", window("Tue 02:00-04:00", "timezone: Europe/Lutetia")),
    code: 78,
    says: /zone\.yaml:3:75: maintenance\.windows\.w\.timezone: "Europe\/Lutetia" is not a time zone/,
  },
  {
    name: "a detector window of 1",
    path: () => dir.file("window.yaml", "nodes:\n  api-1: { detector: { kind: phi, window: 1 } }\n"),
    code: 78,
    says: /window\.yaml:2:43: nodes\.api-1\.detector\.window must be a whole number from 2 to 100000/,
  },
  {
    name: "a detector threshold not above its late_threshold",
    path: () =>
      dir.file("phi.yaml", "defaults:\n  detector: { kind: phi, threshold: 3, late_threshold: 3 }\n"),
    code: 78,
    says: /phi\.yaml:2:56: defaults\.detector: late_threshold \(3\) must be less than threshold \(3\)/,
  },
  {
    name: "a detector of an unknown kind",
    path: () => dir.file("kind.yaml", "nodes:\n  api-1: { detector: { kind: adaptive } }\n"),
    code: 78,
    says: /kind\.yaml:2:30: nodes\.api-1\.detector\.kind must be one of: fixed, phi/,
  },
  {
    name: "an unknown key in a detector",
    path: () => dir.file("detector-key.yaml", "defaults:\n  detector: { kind: phi, min_stddev: 100ms }\n"),
    code: 78,
    says: /detector-key\.yaml:2:26: unknown key "min_stddev" in defaults\.detector \(expected one of: kind, threshold, late_threshold, min_std, acceptable_pause, window\)/,
  },
];

describe("a config that cannot be used", () => {
  it.each(cases.map((c) => [c.name, c]))(
    "%s: check-config and monitor say why, with the right exit code",
    (_, c) => {
      const path = c.path();
      for (const args of [
        ["check-config", path],
        ["monitor", "--config", path, "--listen", "127.0.0.1:0", "--status", "off"],
      ]) {
        const r = runHb(args);
        expect({ args, code: r.code }).toEqual({ args, code: c.code });
        expect(r.stderr).toMatch(c.says);
        expect(r.stderr).not.toContain("HB_ERR_INTERNAL");
      }
    },
  );

  it("a config without read permission is exit 66, permission denied", () => {
    const path = dir.file("private.yaml", "nodes: {}\n", 0o600);
    for (const args of [
      ["check-config", path],
      ["monitor", "--config", path, "--status", "off"],
    ]) {
      const r = runHbAsNobody(args);
      expect(r.code).toBe(66);
      expect(r.stderr).toMatch(/permission denied \(EACCES\)/);
    }
  });

  it("a key file without read permission is exit 66, naming the key", () => {
    dir.file("private.key", KEY, 0o600);
    const path = dir.file("private-key.yaml", "keys: { k1: private.key }\n");
    const r = runHbAsNobody(["check-config", path]);
    expect(r.code).toBe(66);
    expect(r.stderr).toMatch(
      /private-key\.yaml:1:9: key k1: \S*\/private\.key: permission denied \(EACCES\)/,
    );
  });

  it("a reload that meets an unusable file rejects it with one clear error and keeps running", async () => {
    const path = dir.file("reload.yaml", "nodes: { a: {} }\n");
    const { monitor } = await startMonitor(path);
    try {
      let seen = 0;
      const expectRejected = async (says: RegExp): Promise<void> => {
        monitor.signal("SIGHUP");
        const rejected = await monitor.waitFor("config.rejected", undefined, 15_000, seen);
        seen = monitor.events.indexOf(rejected) + 1;
        expect(rejected.errors).toHaveLength(1);
        expect((rejected.errors as string[])[0]).toMatch(says);
        expect(monitor.child.exitCode).toBeNull();
      };
      writeFileSync(path, garbage(2048));
      await expectRejected(/reload\.yaml:\d+:\d+: not a text file/);
      truncateSync(path, 50 * 1024 * 1024);
      await expectRejected(/is 50\.0 MiB/);
      writeFileSync(path, `nodes: { a: {} }\nkeys: { k1: ${join(dir.path, "absent.key")} }\n`);
      await expectRejected(/reload\.yaml:2:9: key k1: .*no such file/);
      writeFileSync(path, "nodes: { a: {}, b: {} }\n");
      monitor.signal("SIGHUP");
      expect((await monitor.waitFor("config.reloaded")).changes).toEqual([
        "nodes.b: added (interval 1s, timeout 10s, late 5s)",
      ]);
    } finally {
      await monitor.stop();
    }
  }, 60_000);
});
