// Maintenance windows and dependencies as an operator meets them: a real `hb monitor` process on
// loopback, nodes' heartbeats sent over UDP from this process, `hb maint` and `hb status` run as
// commands, and an exec hook that appends every notice it is given to a file. What the journal
// says is read from the monitor's stdout; what paged, from the hook's file.
import { createSocket } from "node:dgram";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { Kind, encode } from "../../src/wire/protocol.js";
import { TempDir, runHb, sleep, startMonitor, until, type HbProcess } from "../support/hb-process.js";

const INTERVAL_MS = 200;
/** Nodes' timeout: 2 s (10 intervals), late at 1 s. */
const TIMEOUT_MS = 2000;

const dir = new TempDir();
const procs: HbProcess[] = [];
afterAll(() => dir.remove());
afterEach(async () => {
  fleets.splice(0).forEach((f) => f.stop());
  await Promise.all(procs.splice(0).map((p) => p.stop()));
});

/** Nodes beating from this process: each its own id, incarnation and sequence, every interval. */
class Fleet {
  private readonly socket = createSocket("udp4");
  private readonly sequence = new Map<string, number>();
  private readonly incarnation = new Map<string, number>();
  readonly alive = new Set<string>();
  private readonly timer: NodeJS.Timeout;

  constructor(
    private port: number,
    nodes: string[],
  ) {
    for (const node of nodes) this.alive.add(node);
    this.timer = setInterval(() => this.beatAll(), INTERVAL_MS);
    this.beatAll();
  }

  retarget(port: number): void {
    this.port = port;
  }

  private beatAll(): void {
    for (const node of this.alive) this.beat(node);
  }

  private beat(node: string): void {
    const incarnation = this.incarnation.get(node) ?? Date.now();
    this.incarnation.set(node, incarnation);
    const sequence = (this.sequence.get(node) ?? 0) + 1;
    this.sequence.set(node, sequence);
    this.socket.send(
      encode({ kind: Kind.BEAT, nodeId: node, incarnation, sequence }),
      this.port,
      "127.0.0.1",
    );
  }

  kill(...nodes: string[]): void {
    for (const node of nodes) this.alive.delete(node);
  }

  /** The node's process starts again: a new incarnation, beating at once. */
  restart(...nodes: string[]): void {
    for (const node of nodes) {
      this.incarnation.set(node, Math.max(Date.now(), (this.incarnation.get(node) ?? 0) + 1));
      this.sequence.delete(node);
      this.alive.add(node);
      this.beat(node);
    }
  }

  stop(): void {
    clearInterval(this.timer);
    this.socket.close();
  }
}
const fleets: Fleet[] = [];

let sites = 0;
/** A monitor with a hook that records each notice as one line of JSON; its config lists `nodes`. */
async function site(nodes: string, options: { stateDir?: string; extra?: string } = {}) {
  const name = `site${++sites}`;
  const notices = join(dir.path, `${name}.notices`);
  const hook = dir.file(
    `${name}.sh`,
    `#!/bin/sh\n# one line per notice: HB_COUNT notices come as a JSON array when more than one\ncat >> "${notices}"\necho >> "${notices}"\n`,
    0o755,
  );
  const config = dir.file(
    `${name}.yaml`,
    [
      "listen: 127.0.0.1:0",
      "status: 127.0.0.1:0",
      `startup_grace: ${TIMEOUT_MS}ms`,
      `defaults: { interval: ${INTERVAL_MS}ms }`,
      "nodes:",
      nodes,
      "notify:",
      `  - { name: pager, exec: [${hook}], on: [node.down, node.up, node.late, node.restarted, node.flapping] }`,
      options.extra ?? "",
    ].join("\n"),
  );
  const stateDir = options.stateDir ?? join(dir.path, `${name}.state`);
  const started = await startMonitor(config, ["--state-dir", stateDir]);
  procs.push(started.monitor);
  /** Every delivery the hook was given, as the notices in it. */
  const deliveries = (): Record<string, unknown>[][] =>
    existsSync(notices)
      ? readFileSync(notices, "utf8")
          .split("\n")
          .filter((l) => l !== "")
          .map((l) => {
            const parsed = JSON.parse(l) as Record<string, unknown> | Record<string, unknown>[];
            return Array.isArray(parsed) ? parsed : [parsed];
          })
      : [];
  const paged = (event?: string): Record<string, unknown>[] =>
    deliveries()
      .flat()
      .filter((n) => event === undefined || n.event === event);
  const hb = (...args: string[]) => runHb([...args, "--url", started.statusUrl]);
  return { ...started, config, stateDir, deliveries, paged, hb };
}

const ids = (prefix: string, n: number): string[] => Array.from({ length: n }, (_, i) => `${prefix}${i + 1}`);
const listed = (nodes: string[], extra = ""): string => nodes.map((n) => `  ${n}: {${extra}}`).join("\n");

const web = ids("web-", 20);

describe("a maintenance window", () => {
  it("holds the pages of the nodes it covers; when it ends, what is still down pages once", async () => {
    const s = await site(listed([...web, "db-1"]));
    const fleet = new Fleet(s.port, [...web, "db-1"]);
    fleets.push(fleet);
    await s.monitor.waitFor("node.up", "db-1");
    const add = s.hb("maint", "add", "web-*", "--for", "8s", "--comment", "test", "--author", "ops");
    expect(add.code, add.stderr).toBe(0);
    const id = add.stdout.trim();
    expect(id).toMatch(/^m-[a-z0-9]+$/);
    await s.monitor.waitFor("maint.added");
    fleet.kill("web-1", "web-2", "web-3");
    for (const node of ["web-1", "web-2", "web-3"]) {
      const down = await s.monitor.waitFor("node.down", node);
      expect(down).toMatchObject({ notice: "suppressed", suppressedBy: [`maint:${id}`] });
    }
    const status = s.hb("status", "--json");
    const doc = JSON.parse(status.stdout) as {
      nodes: { node: string; state: string; maintenance?: string[] }[];
    };
    expect(doc.nodes.find((n) => n.node === "web-1")).toMatchObject({ state: "down", maintenance: [id] });
    expect(s.hb("status").stdout).toMatch(/web-1 +down \(maint m-/);
    fleet.restart("web-2");
    await s.monitor.waitFor("node.up", "web-2", 10_000, s.monitor.of("node.up", "web-2").length);
    expect(s.paged()).toEqual([]);
    const list = s.hb("maint", "list");
    expect(list.stdout).toContain(id);
    // The window ends at 8 s; each node then settles for its timeout before anything pages.
    await s.monitor.waitFor("maint.expired", undefined, 15_000);
    await until("the pages after the window", () => s.paged("node.down").length >= 2, 20_000);
    await sleep(TIMEOUT_MS + 1000);
    expect(
      s
        .paged("node.down")
        .map((n) => n.node)
        .sort(),
    ).toEqual(["web-1", "web-3"]);
    expect(s.paged().filter((n) => n.node === "web-2")).toEqual([]);
  });

  it("lets through the recovery of a down paged before the window", async () => {
    const s = await site(listed(["db-1", "db-2"]));
    const fleet = new Fleet(s.port, ["db-1", "db-2"]);
    fleets.push(fleet);
    await s.monitor.waitFor("node.up", "db-1");
    fleet.kill("db-1");
    await until("db-1's page", () => s.paged("node.down").length === 1, 20_000);
    expect(s.hb("maint", "add", "db-1", "--for", "1m", "--comment", "reboot").code).toBe(0);
    fleet.restart("db-1");
    await until("db-1's recovery page", () => s.paged("node.up").length === 1, 20_000);
    expect(s.paged("node.up")[0]).toMatchObject({ node: "db-1", previous: "down" });
  });

  it("survives a kill -9 of the monitor: listed after the restart, and nothing it covers pages", async () => {
    const first = await site(listed(["db-1", "db-2"]));
    const fleet = new Fleet(first.port, ["db-1", "db-2"]);
    fleets.push(fleet);
    await first.monitor.waitFor("node.up", "db-1");
    const id = first.hb("maint", "add", "db-1", "--for", "2m", "--comment", "disk swap").stdout.trim();
    fleet.kill("db-1");
    await first.monitor.waitFor("node.late", "db-1");
    first.monitor.signal("SIGKILL");
    await first.monitor.exited;
    const second = await site(listed(["db-1", "db-2"]), { stateDir: first.stateDir });
    fleet.retarget(second.port);
    const list = second.hb("maint", "list", "--json");
    expect((JSON.parse(list.stdout) as { windows: { id: string }[] }).windows.map((w) => w.id)).toEqual([id]);
    const down = await second.monitor.waitFor("node.down", "db-1", 15_000);
    expect(down).toMatchObject({ notice: "suppressed", suppressedBy: [`maint:${id}`] });
    await sleep(TIMEOUT_MS);
    expect(second.paged()).toEqual([]);
    expect(first.paged()).toEqual([]);
  });

  it("refuses what an operator did not mean: no comment, a window over every node, bad times", async () => {
    const s = await site(listed(["db-1", "db-2"]));
    const fleet = new Fleet(s.port, ["db-1", "db-2"]);
    fleets.push(fleet);
    await s.monitor.waitFor("node.up", "db-2");
    expect(s.hb("maint", "add", "db-1", "--for", "1m").code).toBe(64);
    const all = s.hb("maint", "add", "db-*", "--for", "1m", "--comment", "x");
    expect([all.code, all.stderr]).toEqual([64, expect.stringContaining("--all")]);
    expect(s.hb("maint", "add", "db-*", "--for", "1m", "--comment", "x", "--all").code).toBe(0);
    expect(s.hb("maint", "add", "db-1", "--until", "yesterday", "--comment", "x").code).toBe(64);
    expect(s.hb("maint", "add", "db-1", "--for", "30d", "--comment", "x").code).toBe(64);
    expect(s.hb("maint", "end", "m-nosuch").code).toBe(1);
  });
});

describe("dependencies", () => {
  const children = ids("c", 40);

  it("a rack that dies at once pages once, then its children still down in one delivery", async () => {
    const s = await site([listed(["sw"]), listed(children, " parents: [sw] ")].join("\n"));
    const fleet = new Fleet(s.port, ["sw", ...children]);
    fleets.push(fleet);
    await s.monitor.waitFor("node.up", "c40");
    await sleep(500);
    fleet.kill("sw", ...children);
    await until("41 downs", () => s.monitor.of("node.down").length >= 41, 15_000);
    await until("the parent's page", () => s.paged("node.down").length >= 1, 20_000);
    await sleep(1500);
    const pages = s.paged("node.down");
    expect(pages).toHaveLength(1);
    expect(pages[0]).toMatchObject({ node: "sw", fields: { children: { down: 40 } } });
    expect(s.hb("status").stdout).toMatch(/c1 +down \(via sw\)/);
    fleet.restart("sw");
    await until("the parent's recovery", () => s.paged("node.up").length === 1, 20_000);
    await until("the children's delivery", () => s.paged("node.down").length >= 41, 15_000);
    const batch = s.deliveries().filter((d) => d.some((n) => n.node === "c1"));
    expect(batch).toHaveLength(1);
    expect(batch[0]!.filter((n) => n.event === "node.down")).toHaveLength(40);
  });

  it("everything back at once: recoveries only for what was paged", async () => {
    const s = await site([listed(["sw"]), listed(children, " parents: [sw] ")].join("\n"));
    const fleet = new Fleet(s.port, ["sw", ...children]);
    fleets.push(fleet);
    await s.monitor.waitFor("node.up", "c40");
    fleet.kill("sw", ...children);
    await until("the parent's page", () => s.paged("node.down").length >= 1, 20_000);
    fleet.restart("sw", ...children);
    await until("the children back", () => s.monitor.of("node.up", "c40").length >= 2, 20_000);
    await sleep(1000);
    expect(s.paged("node.up").map((n) => n.node)).toEqual(["sw"]);
  });
});
