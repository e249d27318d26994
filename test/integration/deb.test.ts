// The Debian package that `npm run package` builds, read as dpkg and lintian read it: what it
// installs, what it depends on, which files are the operator's, and lintian's verdict.
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const REPO = fileURLToPath(new URL("../..", import.meta.url));
const { version } = JSON.parse(readFileSync(join(REPO, "package.json"), "utf8")) as { version: string };
const DEB = join(REPO, "dist", `hb_${version}_all.deb`);
const required = process.env.CI === "true";
const missing = (command: string): boolean => spawnSync(command, ["--version"]).error !== undefined;

function dpkgDeb(flag: string, ...members: string[]): string {
  const r = spawnSync("dpkg-deb", [flag, DEB, ...members], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`dpkg-deb ${flag} ${members.join(" ")}: ${r.stderr}`);
  return r.stdout;
}

describe.skipIf(missing("dpkg-deb") && !required)("the Debian package", () => {
  it("is built by npm run package", () => {
    expect(existsSync(DEB), `${DEB}: run "npm run package" (npm test does)`).toBe(true);
  });

  it("installs the command, the bundle, the units, the config, the man pages and the docs, and no node_modules", () => {
    const files = dpkgDeb("--contents")
      .split("\n")
      .filter((line) => line !== "" && !line.startsWith("d"))
      .map((line) => line.split(/\s+/).slice(5).join(" ").replace(/^\./, ""));
    expect(files.filter((f) => f.includes("node_modules"))).toEqual([]);
    expect(files.sort()).toEqual(
      [
        "/usr/bin/hb -> ../share/hb/hb.mjs",
        "/usr/share/hb/hb.mjs",
        "/usr/share/hb/heartbeat.yaml",
        "/lib/systemd/system/hb-monitor.service",
        "/lib/systemd/system/hb-node@.service",
        "/usr/lib/sysctl.d/90-hb.conf",
        "/etc/hb/heartbeat.yaml",
        "/etc/hb/node.env",
        "/usr/share/man/man1/hb.1.gz",
        "/usr/share/man/man5/heartbeat.yaml.5.gz",
        "/usr/share/man/man8/hb-monitor.8.gz",
        "/usr/share/doc/hb/copyright",
        "/usr/share/doc/hb/changelog.gz",
        "/usr/share/doc/hb/CHANGELOG.md.gz",
        "/usr/share/doc/hb/README.md.gz",
        "/usr/share/doc/hb/examples/hb-monitor-hooks.conf",
        "/usr/share/doc/hb/examples/hb-monitor-onfailure.conf",
        "/usr/share/doc/hb/examples/hb-monitor-failed@.service",
        "/usr/share/doc/hb/examples/heartbeat-ha.yaml",
        "/usr/share/doc/hb/examples/heartbeat.yaml",
      ].sort(),
    );
  });

  it("depends on Node.js 20.19 or later, is for all architectures, and keeps /etc/hb's files as conffiles", () => {
    expect(dpkgDeb("--field").trim().split("\n")).toEqual(
      expect.arrayContaining([
        "Package: hb",
        `Version: ${version}`,
        "Architecture: all",
        "Depends: nodejs (>= 20.19), adduser",
      ]),
    );
    expect(dpkgDeb("--info", "conffiles").trim().split("\n")).toEqual([
      "/etc/hb/heartbeat.yaml",
      "/etc/hb/node.env",
    ]);
  });

  it("runs the bundle with Debian's node, and ships the units that run /usr/bin/hb", () => {
    const tree = join(REPO, "dist", "root");
    expect(readFileSync(join(tree, "usr/share/hb/hb.mjs"), "utf8").split("\n")[0]).toBe("#!/usr/bin/node");
    expect(readFileSync(join(tree, "lib/systemd/system/hb-monitor.service"), "utf8")).toContain(
      "ExecStart=/usr/bin/hb monitor --config /etc/hb/heartbeat.yaml",
    );
    expect(readFileSync(join(tree, "lib/systemd/system/hb-node@.service"), "utf8")).toContain(
      "ExecStart=/usr/bin/hb node --id %i",
    );
  });

  it("has maintainer scripts that the shell parses", () => {
    for (const script of ["postinst", "prerm", "postrm"]) {
      const r = spawnSync("sh", ["-n", join(REPO, "dist", "root", "DEBIAN", script)], { encoding: "utf8" });
      expect(r.status, `${script}: ${r.stderr}`).toBe(0);
    }
  });

  it.skipIf(missing("lintian") && !required)(
    "has no lintian errors or warnings",
    () => {
      const r = spawnSync("lintian", ["--no-cfg", DEB], { encoding: "utf8" });
      const tags = `${r.stdout}`.split("\n").filter((line) => /^[EW]: /.test(line));
      expect(tags).toEqual([]);
      expect(r.status, r.stderr).toBe(0);
    },
    120_000,
  );
});
