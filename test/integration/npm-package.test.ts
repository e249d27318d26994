// The npm package that `npm run package` builds, installed as a user of npm would: into an empty
// prefix, from the tarball alone, with nothing fetched. It carries the one bundled file, the units,
// the examples and the man pages, and no dependencies.
import { spawnSync } from "node:child_process";
import { createSocket } from "node:dgram";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { decode, emptyDatagram, nodeIdOf } from "../../src/wire/protocol.js";
import { TempDir } from "../support/hb-process.js";

const REPO = fileURLToPath(new URL("../..", import.meta.url));
const { version } = JSON.parse(readFileSync(join(REPO, "package.json"), "utf8")) as { version: string };
const TGZ = join(REPO, "dist", `hb-${version}.tgz`);
const dir = new TempDir();
const prefix = join(dir.path, "prefix");
const hb = join(prefix, "bin", "hb");
const run = (command: string, args: string[]) =>
  spawnSync(command, args, { encoding: "utf8", env: { ...process.env, npm_config_loglevel: "error" } });

describe("the npm package", () => {
  beforeAll(() => {
    if (!existsSync(TGZ)) throw new Error(`${TGZ} is missing: run "npm run package" (npm test does)`);
    const r = run("npm", ["install", "-g", "--prefix", prefix, "--offline", "--no-audit", "--no-fund", TGZ]);
    expect(r.status, r.stderr).toBe(0);
  }, 60_000);
  afterAll(() => dir.remove());

  it("installs into an empty prefix a working hb --version, with no node_modules of its own", () => {
    const r = run(hb, ["--version"]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe(version);
    const installed = join(prefix, "lib", "node_modules", "hb");
    expect(existsSync(join(installed, "node_modules"))).toBe(false);
    for (const file of ["hb.mjs", "systemd/hb-monitor.service", "systemd/hb-node@.service", "man/hb.1"])
      expect(existsSync(join(installed, file)), file).toBe(true);
    expect(existsSync(join(installed, "systemd/examples/hb-monitor-hooks.conf"))).toBe(true);
  });

  it("sends a heartbeat with hb send", async () => {
    const socket = createSocket("udp4");
    const received = new Promise<Buffer>((resolve) => socket.once("message", resolve));
    await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", resolve));
    const r = run(hb, ["send", "--id", "npm-1", "--monitor", `127.0.0.1:${socket.address().port}`]);
    expect(r.status, r.stderr).toBe(0);
    const datagram = emptyDatagram();
    expect(decode(await received, datagram)).toBeNull();
    socket.close();
    expect(nodeIdOf(datagram)).toBe("npm-1");
  });
});
