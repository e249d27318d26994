// The monitor and its status address: a port someone else holds does not stop detection, and a
// Unix socket address serves `hb status --socket`.
import { spawn } from "node:child_process";
import { createServer } from "node:http";
import { afterAll, describe, expect, it } from "vitest";
import { HB_BIN, HbProcess, TempDir, startNode } from "../support/hb-process.js";

const dir = new TempDir();
afterAll(() => dir.remove());

/** Runs hb without blocking this process's event loop (a server here must keep answering). */
function hb(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [HB_BIN, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("exit", (code) => resolve({ code, stdout, stderr }));
  });
}

describe("the status address", () => {
  it("when taken by another process is a warning and a retry, and the monitor goes on detecting", async () => {
    const squatter = createServer((_, res) => res.end("{}"));
    await new Promise<void>((resolve) => squatter.listen(0, "127.0.0.1", resolve));
    const taken = `127.0.0.1:${(squatter.address() as { port: number }).port}`;
    const path = dir.file("taken.yaml", `nodes: { "a": {} }\n`);
    const monitor = new HbProcess([
      "monitor",
      "--config",
      path,
      "--listen",
      "127.0.0.1:0",
      "--status",
      taken,
    ]);
    let node: HbProcess | undefined;
    try {
      const started = await monitor.waitFor("monitor.started");
      expect(started.status).toBe(taken);
      const warning = await monitor.waitFor("monitor.warning");
      expect(warning).toMatchObject({ problem: "status" });
      expect(warning.detail).toContain("EADDRINUSE");
      node = startNode("a", started.listen as string);
      await monitor.waitFor("node.up", "a");
      expect(monitor.child.exitCode).toBeNull();
    } finally {
      await node?.stop();
      await monitor.stop();
      await new Promise<void>((resolve) => squatter.close(() => resolve()));
    }
  });

  it("may be a Unix socket, which hb status --socket reads", async () => {
    const socket = `${dir.path}/status.sock`;
    const path = dir.file("unix.yaml", `status: ${socket}\nnodes: { "a": {} }\n`);
    const monitor = new HbProcess(["monitor", "--config", path, "--listen", "127.0.0.1:0"]);
    let node: HbProcess | undefined;
    try {
      const started = await monitor.waitFor("monitor.started");
      expect(started.status).toBe(`unix:${socket}`);
      node = startNode("a", started.listen as string);
      await monitor.waitFor("node.up", "a");
      const r = await hb(["status", "--socket", socket, "--state", "up"]);
      expect(r.stderr).toBe("");
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/^a\s+up\s/m);
      const viaConfig = await hb(["status", "--config", path, "--json"]);
      expect((JSON.parse(viaConfig.stdout) as { counts: { up: number } }).counts.up).toBe(1);
    } finally {
      await node?.stop();
      await monitor.stop();
    }
  });
});
