// The packages the systemd tests install: the one `npm run package` built in dist/ (npm test
// builds it), or the same tree built again at a higher version, to install over it as an upgrade.
// Both are under the checkout, which the sandbox binds, so that the container sees them.
import { spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { REPO } from "./sandbox.js";

export const VERSION = (JSON.parse(readFileSync(join(REPO, "package.json"), "utf8")) as { version: string })
  .version;

/** The .deb that `npm run package` built for this checkout's version. */
export function builtDeb(): string {
  const deb = join(REPO, "dist", `hb_${VERSION}_all.deb`);
  if (!existsSync(deb)) throw new Error(`${deb} is missing: run "npm run package" (npm test does)`);
  return deb;
}

/** This checkout's version with its patch number raised by one. */
export const nextVersion = (): string => VERSION.replace(/\d+$/, (patch) => String(Number(patch) + 1));

/** Builds this checkout again as `version` (in dist/upgrade-VERSION-PID) and returns its .deb. */
export function buildDebAt(version: string): string {
  const dir = join(REPO, "dist", `upgrade-${version}-${process.pid}`);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  for (const entry of [
    "src",
    "systemd",
    "docs",
    "heartbeat.yaml",
    "README.md",
    "CHANGELOG.md",
    "tsconfig.json",
  ])
    cpSync(join(REPO, entry), join(dir, entry), { recursive: true });
  symlinkSync(join(REPO, "node_modules"), join(dir, "node_modules"));
  const manifest = JSON.parse(readFileSync(join(REPO, "package.json"), "utf8")) as Record<string, unknown>;
  writeFileSync(join(dir, "package.json"), JSON.stringify({ ...manifest, version }, null, 2));
  const r = spawnSync(process.execPath, ["--import", "tsx", "systemd/package.ts"], {
    cwd: dir,
    encoding: "utf8",
  });
  if (r.status !== 0) throw new Error(`building ${version} failed: ${r.stderr}${r.stdout}`);
  const deb = r.stdout.split("\n").find((line) => line.endsWith(".deb"));
  if (deb === undefined) throw new Error(`building ${version} printed no .deb: ${r.stdout}`);
  return deb;
}
