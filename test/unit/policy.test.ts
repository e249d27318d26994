// The policy layer decides what pages, never what is recorded: a monitor put together as `hb
// monitor` puts it (daemon/assemble.ts), on a fake clock and socket, its notices taken by an
// output that records every batch it is given. Maintenance windows, dependencies and flap damping
// each keep notices back, and the journal line says why.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { parseConfig } from "../../src/config/parse.js";
import { assembleMonitor, type AssembledMonitor } from "../../src/daemon/assemble.js";
import type { Notice } from "../../src/notify/notice.js";
import { DELIVERED } from "../../src/notify/output.js";
import { Kind, encode } from "../../src/wire/protocol.js";
import { FakeClock } from "../support/fake-clock.js";
import { FakeSocket } from "../support/fake-socket.js";
import { HB_BIN } from "../support/hb-process.js";

type Logged = { event: string; t: number } & Record<string, unknown>;

const ON = "[node.down, node.up, node.late, node.restarted, node.flapping]";

/**
 * A clock whose timers fire half a millisecond before their instant by monoMs(), as Node's may
 * (its timers count whole milliseconds of a clock read once per turn of the loop).
 */
class EarlyClock extends FakeClock {
  override setTimeout(callback: () => void, delayMs: number): ReturnType<FakeClock["setTimeout"]> {
    return super.setTimeout(callback, delayMs >= 1.5 ? delayMs - 0.5 : delayMs);
  }
}

class Site {
  readonly clock: FakeClock;
  readonly socket = new FakeSocket();
  readonly events: Logged[] = [];
  /** Every call an output got: one array of notices per delivery. */
  readonly deliveries: Notice[][] = [];
  assembled!: AssembledMonitor;
  private readonly sequences = new Map<string, number>();
  incarnation = new Map<string, number>();

  constructor(
    private readonly yaml: string,
    private readonly stateDir?: string,
    early = false,
  ) {
    this.clock = early ? new EarlyClock() : new FakeClock();
  }

  async start(): Promise<this> {
    const parsed = parseConfig(this.yaml, "test.yaml");
    if (!parsed.ok)
      throw new Error(parsed.problems.map((p) => `${p.line}:${p.col}: ${p.message}`).join("\n"));
    this.assembled = assembleMonitor(
      { config: parsed.config, keyring: new Map() },
      {
        clock: this.clock,
        log: (event, fields) => void this.events.push({ event, t: this.clock.monoMs(), ...fields }),
        socket: () => this.socket,
        pid: 1,
        stateDir: this.stateDir,
        monitorId: "mon-test",
        configPath: "test.yaml",
        entry: pathToFileURL(HB_BIN),
        kernelDrops: () => 0,
        makeOutput: (spec) => ({
          name: spec.name,
          kind: "exec",
          deliver: (notices) => {
            this.deliveries.push([...notices]);
            return Promise.resolve(DELIVERED);
          },
          close: () => Promise.resolve(),
        }),
      },
    );
    await this.assembled.bind();
    this.assembled.start();
    return this;
  }

  beat(node: string, kind: Kind = Kind.BEAT): void {
    const incarnation = this.incarnation.get(node) ?? 1;
    const key = `${node}/${incarnation}`;
    const sequence = (this.sequences.get(key) ?? 0) + 1;
    this.sequences.set(key, sequence);
    this.socket.deliver(encode({ kind, nodeId: node, incarnation, sequence }));
  }

  /** A planned stop: the node's leave. */
  leave(node: string): void {
    this.beat(node, Kind.LEAVE);
  }

  /** The node's process starts again: a new incarnation. */
  restart(node: string): void {
    this.incarnation.set(node, (this.incarnation.get(node) ?? 1) + 1);
    this.beat(node);
  }

  /** `ms` of time in which each node of `alive` beats every second. */
  async run(ms: number, alive: Iterable<string>): Promise<void> {
    const nodes = [...alive];
    const end = this.clock.monoMs() + ms;
    while (this.clock.monoMs() < end) {
      for (const node of nodes) this.beat(node);
      this.clock.advance(Math.min(1000, end - this.clock.monoMs()));
      await Promise.resolve();
    }
    // Deliveries are promises: let them settle.
    for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
  }

  of(event: string, node?: string): Logged[] {
    return this.events.filter((e) => e.event === event && (node === undefined || e.node === node));
  }

  notices(event?: string, node?: string): Notice[] {
    return this.deliveries
      .flat()
      .filter((n) => (event === undefined || n.event === event) && (node === undefined || n.node === node));
  }

  stop(): Promise<void> {
    return this.assembled.stop("SIGTERM");
  }
}

const nodes = (ids: string[], extra = ""): string =>
  ids.map((id) => `  ${id}: {${id.startsWith("c") ? extra : ""}}`).join("\n");

function yaml(ids: string[], extra = ""): string {
  return [
    "listen: 127.0.0.1:0",
    "status: off",
    "startup_grace: 3s",
    "defaults: { interval: 1s }",
    "nodes:",
    nodes(ids, extra),
    "notify:",
    `  - { name: pager, exec: [/bin/true], on: ${ON} }`,
    "",
  ].join("\n");
}

const sites: Site[] = [];
const dirs: string[] = [];
afterEach(async () => {
  for (const site of sites.splice(0)) await site.stop();
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

async function site(text: string, stateDir?: string, early = false): Promise<Site> {
  const s = await new Site(text, stateDir, early).start();
  sites.push(s);
  return s;
}

async function addWindow(s: Site, match: string[], forMs: number, all = false): Promise<string> {
  const reply = await s.assembled.policy.maint.add({
    match,
    comment: "test",
    author: "ops",
    endsAt: s.clock.wallMs() + forMs,
    all,
  });
  if (!reply.ok) throw new Error(reply.error);
  return reply.window.id;
}

const web = Array.from({ length: 20 }, (_, i) => `web-${i + 1}`);

describe("a maintenance window", () => {
  it("keeps the downs that begin in it from paging, with the journal saying why", async () => {
    const s = await site(yaml([...web, "db-1"]));
    await s.run(5000, [...web, "db-1"]);
    const id = await addWindow(s, ["web-*"], 30_000);
    expect(s.of("maint.added")[0]).toMatchObject({ id, match: ["web-*"], author: "ops", comment: "test" });
    const alive = new Set([...web, "db-1"]);
    for (const node of ["web-1", "web-2", "web-3"]) alive.delete(node);
    await s.run(15_000, alive);
    for (const node of ["web-1", "web-2", "web-3"])
      expect(s.of("node.down", node)).toEqual([
        expect.objectContaining({ notice: "suppressed", suppressedBy: [`maint:${id}`] }),
      ]);
    expect(s.notices()).toEqual([]);
    const status = s.assembled.monitor.status();
    expect(status.nodes.find((n) => n.node === "web-1")).toMatchObject({ state: "down", maintenance: [id] });
    expect(status.nodes.find((n) => n.node === "db-1")).not.toHaveProperty("maintenance");
  });

  it("pages, once its nodes have settled, only the downs that began in it and last past it", async () => {
    const s = await site(yaml([...web, "db-1"]));
    await s.run(5000, [...web, "db-1"]);
    await addWindow(s, ["web-*"], 30_000);
    const alive = new Set([...web, "db-1"]);
    for (const node of ["web-1", "web-2", "web-3"]) alive.delete(node);
    await s.run(15_000, alive);
    s.restart("web-2");
    alive.add("web-2");
    await s.run(14_000, alive); // the window ends at 30 s: its nodes settle for their 10 s timeout
    expect(s.notices()).toEqual([]);
    await s.run(12_000, alive);
    expect(
      s
        .notices("node.down")
        .map((n) => n.node)
        .sort(),
    ).toEqual(["web-1", "web-3"]);
    expect(s.notices()).toHaveLength(2);
    expect(s.of("maint.expired")).toHaveLength(1);
    await s.run(30_000, alive);
    expect(s.notices()).toHaveLength(2);
  });

  it("lets through the recovery of a down that was paged before it began", async () => {
    const s = await site(yaml(["db-1", "db-2"]));
    await s.run(5000, ["db-1", "db-2"]);
    await s.run(12_000, ["db-2"]);
    expect(s.notices("node.down", "db-1")).toHaveLength(1);
    await addWindow(s, ["db-1"], 60_000);
    await s.run(3000, ["db-1", "db-2"]);
    expect(s.of("node.up", "db-1").at(-1)).not.toHaveProperty("notice");
    expect(s.notices("node.up", "db-1")).toHaveLength(1);
  });

  it("is silent at its end about a node that was down before it and still is", async () => {
    const s = await site(yaml(["db-1", "db-2"]));
    await s.run(5000, ["db-1", "db-2"]);
    await s.run(12_000, ["db-2"]);
    await addWindow(s, ["db-1"], 10_000);
    await s.run(40_000, ["db-2"]);
    expect(s.notices("node.down", "db-1")).toHaveLength(1);
  });

  it("refuses a window over every node without --all, and one longer than max_duration", async () => {
    const s = await site(yaml(["db-1", "db-2"]));
    await s.run(2000, ["db-1", "db-2"]);
    const policy = s.assembled.policy.maint;
    const now = s.clock.wallMs();
    const base = { comment: "x", author: "ops", endsAt: now + 60_000 };
    expect(await policy.add({ ...base, match: ["db-*"] })).toMatchObject({ ok: false, status: 400 });
    expect(await policy.add({ ...base, match: ["*"], all: false })).toMatchObject({ ok: false });
    expect(await policy.add({ ...base, match: ["db-*"], all: true })).toMatchObject({ ok: true });
    expect(await policy.add({ ...base, match: ["db-1"], endsAt: now + 8 * 86_400_000 })).toMatchObject({
      ok: false,
      error: expect.stringContaining("max_duration") as unknown,
    });
    expect(await policy.add({ ...base, match: ["db-1"], comment: " " })).toMatchObject({ ok: false });
    expect(await policy.add({ ...base, match: ["not a selector"] })).toMatchObject({ ok: false });
  });

  it("ended early by an operator: its nodes settle and what differs from the last page goes out", async () => {
    const s = await site(yaml(["db-1", "db-2"]));
    await s.run(3000, ["db-1", "db-2"]);
    const id = await addWindow(s, ["db-1"], 3_600_000);
    await s.run(15_000, ["db-2"]);
    const window = s.assembled.policy.windows.get(id)!;
    const ended = await s.assembled.policy.maint.end({ id: window.id });
    expect(ended).toMatchObject({ ok: true, window: { state: "ended" } });
    expect(s.of("maint.ended")).toHaveLength(1);
    expect(await s.assembled.policy.maint.end({ id })).toMatchObject({ ok: false, status: 409 });
    await s.run(11_000, ["db-2"]);
    expect(s.notices("node.down", "db-1")).toHaveLength(1);
  });

  it("is kept in the state directory: a restarted monitor does not page what it covers", async () => {
    const dir = mkdtempSync(join(tmpdir(), "hb-policy-"));
    dirs.push(dir);
    const first = await site(yaml(["db-1", "db-2"]), dir);
    await first.run(3000, ["db-1", "db-2"]);
    const id = await addWindow(first, ["db-1"], 120_000);
    // As after a kill -9: the second monitor reads what the first wrote, nothing more.
    const second = await site(yaml(["db-1", "db-2"]), dir);
    expect(second.assembled.policy.maint.list().windows.map((w) => w.id)).toEqual([id]);
    await second.run(30_000, ["db-2"]);
    expect(second.of("node.down", "db-1")).toEqual([expect.objectContaining({ notice: "suppressed" })]);
    expect(second.notices()).toEqual([]);
  });
});

describe("dependencies", () => {
  const children = Array.from({ length: 40 }, (_, i) => `c${i + 1}`);
  const text = yaml(["sw", ...children], " parents: [sw] ");

  async function rackDown(early = false): Promise<Site> {
    const s = await site(text, undefined, early);
    await s.run(5000, ["sw", ...children]);
    // The children's last beats come just before the switch's, as when a rack loses power.
    for (const c of children) s.beat(c);
    s.clock.advance(300);
    s.beat("sw");
    await s.run(15_000, []);
    return s;
  }

  it("a rack that dies at once pages once: the parent, naming its 40 down children", async () => {
    const s = await rackDown();
    expect(s.of("node.down")).toHaveLength(41);
    expect(s.notices("node.down")).toEqual([
      expect.objectContaining({
        node: "sw",
        fields: expect.objectContaining({
          children: { down: 40, ids: [...children].sort().slice(0, 20) },
        }) as unknown,
      }),
    ]);
    for (const c of children) {
      const down = s.of("node.down", c)[0]!;
      expect(down.notice === "suppressed" || down.notice === "held").toBe(true);
    }
    expect(s.assembled.monitor.status().nodes.find((n) => n.node === "c1")).toMatchObject({
      state: "down",
      via: ["sw"],
    });
  });

  it("the children still down when the parent's block ends go out in one delivery", async () => {
    const s = await rackDown();
    s.restart("sw");
    await s.run(3000, ["sw"]);
    expect(s.notices("node.up", "sw")).toHaveLength(1);
    expect(s.notices("node.down").filter((n) => n.node !== "sw")).toEqual([]);
    await s.run(9000, ["sw"]);
    const batch = s.deliveries.filter((d) => d.some((n) => n.node === "c1"));
    expect(batch).toHaveLength(1);
    expect(batch[0]!.filter((n) => n.event === "node.down")).toHaveLength(40);
  });

  it("pages the children still down when the block ends even if its timer fires a little early", async () => {
    const s = await rackDown(true);
    s.restart("sw");
    await s.run(12_000, ["sw"]);
    expect(s.notices("node.up", "sw")).toHaveLength(1);
    const batch = s.deliveries.filter((d) => d.some((n) => n.node === "c1"));
    expect(batch).toHaveLength(1);
    expect(batch[0]!.filter((n) => n.event === "node.down")).toHaveLength(40);
  });

  it("everything back at once: recoveries only for what was paged", async () => {
    const s = await rackDown();
    for (const node of ["sw", ...children]) s.restart(node);
    await s.run(15_000, ["sw", ...children]);
    expect(s.notices("node.up").map((n) => n.node)).toEqual(["sw"]);
    expect(s.of("node.up", "c1").at(-1)).toMatchObject({ notice: "suppressed" });
  });

  it("a child that dies alone pages as usual", async () => {
    const s = await site(text);
    await s.run(5000, ["sw", ...children]);
    await s.run(15_000, ["sw", ...children.slice(1)]);
    expect(s.notices("node.down").map((n) => n.node)).toEqual(["c1"]);
  });
});

describe("flap damping", () => {
  it("pages a flapping node once; its down is written but not paged until it settles down", async () => {
    const s = await site(yaml(["f-1", "f-2"]));
    await s.run(2000, ["f-1", "f-2"]);
    // Late and back, again and again: the seventh change in a minute makes it flapping.
    for (let i = 0; i < 4; i++) {
      await s.run(6000, ["f-2"]);
      await s.run(1000, ["f-1", "f-2"]);
    }
    expect(s.notices("node.flapping", "f-1")).toHaveLength(1);
    const before = s.notices().length;
    await s.run(12_000, ["f-2"]);
    expect(s.of("node.down", "f-1")).toEqual([
      expect.objectContaining({ notice: "suppressed", suppressedBy: ["flapping"] }),
    ]);
    expect(s.notices().length).toBe(before);
    await s.run(60_000, ["f-2"]);
    expect(s.of("node.flapping", "f-1").at(-1)).toMatchObject({ settled: true, state: "down" });
    expect(s.notices("node.down", "f-1")).toHaveLength(1);
  });

  it("holds a flapping node's recovery until it has settled", async () => {
    const s = await site(yaml(["f-1", "f-2"]));
    await s.run(2000, ["f-1", "f-2"]);
    await s.run(12_000, ["f-2"]); // down, paged
    expect(s.notices("node.down", "f-1")).toHaveLength(1);
    for (let i = 0; i < 3; i++) {
      await s.run(1000, ["f-1", "f-2"]);
      await s.run(6000, ["f-2"]);
    }
    expect(s.of("node.flapping", "f-1")).toHaveLength(1);
    await s.run(6000, ["f-2"]); // down again, while flapping
    await s.run(1000, ["f-1", "f-2"]);
    expect(s.of("node.up", "f-1").at(-1)).toMatchObject({
      previous: "down",
      notice: "held",
      heldBy: ["flapping"],
    });
    const ups = s.notices("node.up", "f-1").length;
    await s.run(61_000, ["f-1", "f-2"]);
    expect(s.of("node.flapping", "f-1").at(-1)).toMatchObject({ settled: true, state: "up" });
    expect(s.notices("node.up", "f-1").length).toBe(ups + 1);
  });
});

describe("a recurring window", () => {
  it("covers its nodes whenever its schedule runs, in its timezone", async () => {
    const text = yaml(["r-1", "r-2"]).replace(
      "notify:",
      'maintenance:\n  windows: [{ name: always, match: [r-1], schedule: "daily 00:00-24:00", timezone: UTC }]\nnotify:',
    );
    const s = await site(text);
    await s.run(2000, ["r-1", "r-2"]);
    await s.run(12_000, ["r-2"]);
    expect(s.of("node.down", "r-1")).toEqual([
      expect.objectContaining({ notice: "suppressed", suppressedBy: ["maint:always"] }),
    ]);
    expect(s.notices()).toEqual([]);
    expect(s.assembled.policy.maint.list().recurring).toEqual([
      expect.objectContaining({ name: "always", state: "active" }),
    ]);
  });
});

describe("the last state paged, across a restart of the monitor", () => {
  it("a node still down is not paged again by hooks, and one that came back meanwhile is a recovery", async () => {
    const dir = mkdtempSync(join(tmpdir(), "hb-policy-"));
    dirs.push(dir);
    const first = await site(yaml(["k-1", "k-2", "k-3"]), dir);
    await first.run(2000, ["k-1", "k-2", "k-3"]);
    await first.run(12_000, ["k-3"]);
    expect(
      first
        .notices("node.down")
        .map((n) => n.node)
        .sort(),
    ).toEqual(["k-1", "k-2"]);
    await first.stop();
    sites.splice(sites.indexOf(first), 1);
    const second = await site(yaml(["k-1", "k-2", "k-3"]), dir);
    await second.run(6000, ["k-2", "k-3"]); // k-1 still down; k-2 came back while no monitor ran
    expect(second.of("node.down", "k-1")).toEqual([expect.objectContaining({ alreadyPaged: true })]);
    expect(second.notices("node.down")).toEqual([]);
    expect(second.notices("node.up")).toEqual([expect.objectContaining({ node: "k-2", previous: "down" })]);
  });
});

describe("what the review of the policy found", () => {
  it("a parent that leaves while down no longer blocks: its children still down page after their timeout", async () => {
    const s = await site(yaml(["sw", "c1", "c2"], " parents: [sw] "));
    await s.run(3000, ["sw", "c1", "c2"]);
    await s.run(12_000, []);
    expect(s.notices("node.down").map((n) => n.node)).toEqual(["sw"]);
    s.leave("sw");
    await s.run(11_000, []);
    expect(
      s
        .notices("node.down")
        .map((n) => n.node)
        .sort(),
    ).toEqual(["c1", "c2", "sw"]);
  });

  it("a child's page held for a silent parent goes out soon after the parent is heard again", async () => {
    const text = yaml(["gw", "c1"], " parents: [gw] ").replace(
      "  gw: {}",
      "  gw: { interval: 5s, timeout: 60s, late: 30s }",
    );
    const s = await site(text);
    await s.run(3000, ["gw", "c1"]);
    // gw misses its beats while c1 dies: c1's page waits for gw.
    await s.run(12_000, []);
    expect(s.of("node.down", "c1")[0]).toMatchObject({ notice: "held", heldBy: ["parent:gw"] });
    await s.run(1000, ["gw"]);
    await s.run(10_000, []);
    expect(s.notices("node.down").map((n) => n.node)).toEqual(["c1"]);
  });

  it("a running recurring window that a reload removes has ended: the downs that began in it page", async () => {
    const withWindow = yaml(["r-1", "r-2"]).replace(
      "notify:",
      'maintenance:\n  windows: [{ name: always, match: [r-1], schedule: "daily 00:00-24:00", timezone: UTC }]\nnotify:',
    );
    const s = await site(withWindow);
    await s.run(2000, ["r-1", "r-2"]);
    await s.run(12_000, ["r-2"]);
    expect(s.notices()).toEqual([]);
    const parsed = parseConfig(yaml(["r-1", "r-2"]), "test.yaml");
    if (!parsed.ok) throw new Error("bad config");
    s.assembled.policy.configure(parsed.config);
    await s.run(11_000, ["r-2"]);
    expect(s.notices("node.down").map((n) => n.node)).toEqual(["r-1"]);
  });

  it("a window in effect that cannot be kept in the state directory is answered so, and said in the journal", async () => {
    const dir = mkdtempSync(join(tmpdir(), "hb-policy-"));
    dirs.push(dir);
    const state = join(dir, "state");
    const s = await site(yaml(["db-1", "db-2"]), state);
    await s.run(2000, ["db-1", "db-2"]);
    rmSync(state, { recursive: true, force: true });
    writeFileSync(state, "not a directory\n");
    const reply = await s.assembled.policy.maint.add({
      match: ["db-1"],
      comment: "x",
      author: "ops",
      endsAt: s.clock.wallMs() + 60_000,
    });
    expect(reply).toMatchObject({ ok: false, status: 507 });
    expect(s.of("monitor.warning")).toEqual([expect.objectContaining({ problem: "state_dir" })]);
    expect(s.assembled.policy.maint.list().windows).toHaveLength(1);
  });
});
