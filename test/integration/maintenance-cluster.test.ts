// Maintenance windows are shared by the monitors of a site: two real `hb monitor` processes with
// `speak: leader`, nodes' heartbeats sent to both from this process, `hb maint` run against either
// monitor, and a hook per monitor that records every notice it is given. A window told to one
// holds on the other; an ended window stays ended; a new speaker pages neither what a window
// covers nor what the last speaker paged already.
import { randomBytes } from "node:crypto";
import { createSocket } from "node:dgram";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { Kind, encode } from "../../src/wire/protocol.js";
import { HbProcess, TempDir, runHb, sleep, until } from "../support/hb-process.js";
import { freeUdpPorts } from "../support/udp-ports.js";

const INTERVAL_MS = 200;
const TIMEOUT_MS = 2000;

const dir = new TempDir();
const procs: HbProcess[] = [];
afterAll(async () => {
  await Promise.all(procs.map((p) => p.stop()));
  dir.remove();
});

const keyText = randomBytes(24).toString("hex");
const keyPath = dir.file("kc", `${keyText}\n`, 0o600);

const nodes = ["n1", "n2", "n3"];

class Monitor {
  process!: HbProcess;
  statusUrl = "";
  readonly notices: string;
  readonly config: string;
  readonly stateDir: string;

  constructor(
    readonly id: string,
    readonly port: number,
    monitors: string,
  ) {
    this.notices = join(dir.path, `${id}.notices`);
    const hook = dir.file(
      `${id}.sh`,
      `#!/bin/sh\ncat >> "${this.notices}"\necho >> "${this.notices}"\n`,
      0o755,
    );
    this.stateDir = join(dir.path, `${id}.state`);
    this.config = dir.file(
      `${id}.yaml`,
      [
        `keys: { kc: ${keyPath} }`,
        `defaults: { interval: ${INTERVAL_MS}ms, timeout: ${TIMEOUT_MS}ms }`,
        `startup_grace: ${TIMEOUT_MS}ms`,
        `nodes: { ${nodes.map((n) => `${n}: {}`).join(", ")} }`,
        "notify:",
        `  - { name: pager, exec: [${hook}], on: [node.down, node.up, node.late] }`,
        "cluster:",
        `  self: ${id}`,
        `  monitors: { ${monitors} }`,
        `  interval: ${INTERVAL_MS}ms`,
        `  timeout: ${TIMEOUT_MS}ms`,
        "  speak: leader",
        "  key: kc",
        "  settle: 1s",
        "",
      ].join("\n"),
    );
  }

  async start(): Promise<this> {
    this.process = new HbProcess([
      "monitor",
      "--config",
      this.config,
      "--listen",
      `127.0.0.1:${this.port}`,
      "--status",
      "127.0.0.1:0",
      "--state-dir",
      this.stateDir,
    ]);
    procs.push(this.process);
    const started = await this.process.waitFor("monitor.started");
    this.statusUrl = `http://${started.status as string}/status`;
    return this;
  }

  hb(...args: string[]): { code: number | null; stdout: string; stderr: string } {
    return runHb([...args, "--url", this.statusUrl]);
  }

  paged(): Record<string, unknown>[] {
    if (!existsSync(this.notices)) return [];
    return readFileSync(this.notices, "utf8")
      .split("\n")
      .filter((l) => l !== "")
      .flatMap((l) => {
        const parsed = JSON.parse(l) as Record<string, unknown> | Record<string, unknown>[];
        return Array.isArray(parsed) ? parsed : [parsed];
      });
  }

  windows(): { id: string; state: string }[] {
    return (
      JSON.parse(this.hb("maint", "list", "--json", "--expired").stdout) as {
        windows: { id: string; state: string }[];
      }
    ).windows;
  }

  speaking(): boolean {
    const doc = JSON.parse(this.hb("status", "--json").stdout) as { cluster: { speaking: boolean } };
    return doc.cluster.speaking;
  }
}

describe("maintenance windows in a cluster", () => {
  it("hold on every monitor, stay ended, and a new speaker pages nothing they cover", async () => {
    const [portA, portB] = await freeUdpPorts(2);
    const monitors = `mon-a: "127.0.0.1:${portA}", mon-b: "127.0.0.1:${portB}"`;
    const a = await new Monitor("mon-a", portA!, monitors).start();
    const b = await new Monitor("mon-b", portB!, monitors).start();
    // The nodes beat to both monitors.
    const socket = createSocket("udp4");
    const alive = new Set(nodes);
    const incarnation = Date.now();
    let sequence = 0;
    const beat = setInterval(() => {
      sequence++;
      for (const node of alive)
        for (const port of [portA!, portB!])
          socket.send(encode({ kind: Kind.BEAT, nodeId: node, incarnation, sequence }), port, "127.0.0.1");
    }, INTERVAL_MS);
    try {
      await until("mon-a speaking", () => a.speaking() && !b.speaking());

      // A window added on the second monitor makes the speaker hold its pages.
      const added = b.hb("maint", "add", "n1", "--for", "1m", "--comment", "shared");
      expect(added.code, added.stderr).toBe(0);
      const first = added.stdout.trim();
      const seen = await a.process.waitFor("maint.added", undefined, 5000);
      expect(seen).toMatchObject({ id: first, by: "mon-b" });
      alive.delete("n1");
      expect(await a.process.waitFor("node.down", "n1")).toMatchObject({ suppressedBy: [`maint:${first}`] });

      // Ended on the speaker: ended on the other one too.
      expect(a.hb("maint", "end", first).code).toBe(0);
      await b.process.waitFor("maint.ended", undefined, 5000);
      expect(b.windows().find((w) => w.id === first)?.state).toBe("ended");
      // n1 is still down once it has settled: the speaker pages it, once, and tells the other.
      await until("mon-a's page of n1", () => a.paged().some((n) => n.node === "n1"), 10_000);

      // A second window, then the speaker dies: the new one pages neither n2 (in the window) nor
      // n1 (paged already by mon-a).
      const second = a.hb("maint", "add", "n2", "--for", "1m", "--comment", "reboot").stdout.trim();
      await until("mon-b to hear of the second window", () => b.windows().some((w) => w.id === second));
      alive.delete("n2");
      await b.process.waitFor("node.down", "n2");
      a.process.signal("SIGKILL");
      await a.process.exited;
      await until("mon-b speaking", () => b.speaking(), 10_000);
      await sleep(TIMEOUT_MS);
      expect(b.paged()).toEqual([]);

      // Ended while mon-a was stopped: mon-a comes back with the window running in its state
      // file, and does not bring it back.
      expect(b.hb("maint", "end", second).code).toBe(0);
      await a.start();
      await until(
        "mon-a to hear of the end",
        () => a.windows().find((w) => w.id === second)?.state === "ended",
      );
      await sleep(TIMEOUT_MS + 2000);
      expect(b.windows().find((w) => w.id === second)?.state).toBe("ended");
      expect(a.windows().find((w) => w.id === second)?.state).toBe("ended");
      // n2 went down inside its window and is still down after it: paged once, by one monitor.
      const pagesOf = (node: string): number =>
        [...a.paged(), ...b.paged()].filter((n) => n.node === node && n.event === "node.down").length;
      expect([pagesOf("n1"), pagesOf("n2"), pagesOf("n3")]).toEqual([1, 1, 0]);
    } finally {
      clearInterval(beat);
      socket.close();
    }
  });
});
