// The unit files, linted on the host: systemd-analyze verify (any diagnostic fails) and the
// hardening score of systemd-analyze security. No container needed.
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { REPO, systemdRequired } from "./sandbox.js";

const MAX_EXPOSURE = 2.0;

function unavailable(): string | null {
  if (process.getuid?.() !== 0) return "not root (verify runs in a private mount namespace)";
  if (spawnSync("systemd-analyze", ["--version"]).status !== 0) return "systemd-analyze is not installed";
  if (spawnSync("unshare", ["--mount", "true"]).status !== 0) return "cannot create a mount namespace";
  return null;
}
const why = unavailable();
if (why !== null && !systemdRequired) console.warn(`\n*** unit file lint SKIPPED: ${why}\n`);

describe.skipIf(why !== null && !systemdRequired)("the unit files", () => {
  const dir = mkdtempSync(join(tmpdir(), "hb-units-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("pass systemd-analyze verify without a single diagnostic", () => {
    if (why !== null) throw new Error(why);
    const r = spawnSync(
      "sh",
      [
        `${REPO}/test/systemd/verify.sh`,
        `${REPO}/systemd/hb-monitor.service`,
        `${REPO}/systemd/hb-node@.service`,
      ],
      {
        encoding: "utf8",
      },
    );
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
  });

  it("pass systemd-analyze verify with the example drop-ins of systemd/examples in place, and so does hb-monitor-failed@.service", () => {
    if (why !== null) throw new Error(why);
    const units = join(dir, "with-drop-ins");
    mkdirSync(join(units, "hb-monitor.service.d"), { recursive: true });
    copyFileSync(`${REPO}/systemd/hb-monitor.service`, join(units, "hb-monitor.service"));
    copyFileSync(
      `${REPO}/systemd/examples/hb-monitor-failed@.service`,
      join(units, "hb-monitor-failed@.service"),
    );
    for (const name of ["hooks", "onfailure"]) {
      copyFileSync(
        `${REPO}/systemd/examples/hb-monitor-${name}.conf`,
        join(units, "hb-monitor.service.d", `${name}.conf`),
      );
    }
    const r = spawnSync(
      "sh",
      [
        `${REPO}/test/systemd/verify.sh`,
        join(units, "hb-monitor.service"),
        join(units, "hb-monitor-failed@.service"),
      ],
      { encoding: "utf8" },
    );
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
  });

  it.each([
    ["hb-monitor.service", "hb-monitor.service"],
    ["hb-node@.service", "hb-node@3.service"],
    ["examples/hb-monitor-failed@.service", "hb-monitor-failed@hb-monitor.service"],
  ])(`%s has a systemd-analyze security exposure of at most ${MAX_EXPOSURE}`, (file, instance) => {
    if (why !== null) throw new Error(why);
    copyFileSync(`${REPO}/systemd/${file}`, join(dir, instance));
    const r = spawnSync("systemd-analyze", ["security", "--offline=yes", "--no-pager", join(dir, instance)], {
      encoding: "utf8",
    });
    const match = /Overall exposure level for \S+: (\d+\.\d+)/.exec(r.stdout);
    expect(match, r.stdout + r.stderr).not.toBeNull();
    const exposure = Number(match![1]);
    console.info(`${instance}: exposure ${exposure}`);
    expect(exposure).toBeLessThanOrEqual(MAX_EXPOSURE);
  });
});
