// A monitor put together in this process the way `hb monitor` puts it together (daemon/assemble.ts),
// on a fake clock and a fake heartbeat socket, its status server on loopback: heartbeats are
// judged, and each operator action of the table (src/actions.ts) is asked through the client
// that the commands use, with the events and answers it gives. Reloads read the file on a worker
// thread started on the built bundle, as the monitor's own do.
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ACTIONS } from "../../src/actions.js";
import { ask, statusEndpoint, type StatusEndpoint } from "../../src/cli/status-client.js";
import { loadConfig } from "../../src/config/load.js";
import { assembleMonitor, type AssembledMonitor } from "../../src/daemon/assemble.js";
import { Kind, encode } from "../../src/wire/protocol.js";
import { FakeClock } from "../support/fake-clock.js";
import { FakeSocket } from "../support/fake-socket.js";
import { HB_BIN, TempDir, sleep } from "../support/hb-process.js";

type Logged = { event: string; t: number } & Record<string, unknown>;

const dir = new TempDir();
const notices = join(dir.path, "notices");
const hook = dir.file("record.sh", `#!/bin/bash\ncat >> "${notices}"\necho >> "${notices}"\n`, 0o755);
const configText = (nodes: string): string =>
  [
    "listen: 127.0.0.1:0",
    "status: 127.0.0.1:0",
    "defaults: { interval: 1s }",
    `nodes: { ${nodes} }`,
    "notify:",
    `  - { name: pager, exec: [${hook}], on: [node.down] }`,
    "",
  ].join("\n");
const configPath = dir.file("hb.yaml", configText(`a: {}, b: {}`));

const clock = new FakeClock();
const socket = new FakeSocket();
const events: Logged[] = [];
const reloads: string[] = [];
let assembled: AssembledMonitor;
let endpoint: StatusEndpoint;
const sequences = new Map<string, number>();

function beat(node: string): void {
  const sequence = (sequences.get(node) ?? 0) + 1;
  sequences.set(node, sequence);
  socket.deliver(encode({ kind: Kind.BEAT, nodeId: node, incarnation: 1, sequence }));
}

/** The notices the hook was given, one JSON object a line. */
const sent = (): Record<string, unknown>[] =>
  existsSync(notices)
    ? readFileSync(notices, "utf8")
        .split("\n")
        .filter((line) => line !== "")
        .map((line) => JSON.parse(line) as Record<string, unknown>)
    : [];

const of = (event: string, node?: string): Logged[] =>
  events.filter((e) => e.event === event && (node === undefined || e.node === node));

beforeAll(async () => {
  assembled = assembleMonitor(await loadConfig(configPath), {
    clock,
    log: (event, fields) => void events.push({ event, t: clock.monoMs(), ...fields }),
    socket: () => socket,
    pid: process.pid,
    stateDir: undefined,
    monitorId: "mon-test",
    configPath,
    entry: pathToFileURL(HB_BIN),
    onReload: (phase) => void reloads.push(phase),
    kernelDrops: () => 0,
  });
  await assembled.bind();
  assembled.start();
  endpoint = statusEndpoint(`http://${assembled.status}/status`);
});
afterAll(async () => {
  await assembled?.stop("SIGTERM");
  dir.remove();
});

describe("a monitor assembled in process", () => {
  it("announces itself with its bound addresses once started, and judges the heartbeats that arrive", () => {
    expect(of("monitor.started")).toEqual([
      expect.objectContaining({
        listen: "127.0.0.1:40000",
        status: assembled.status,
        nodes: 2,
        config: configPath,
      }),
    ]);
    expect(assembled.status).toMatch(/^127\.0\.0\.1:\d+$/);
    beat("a");
    beat("b");
    expect(of("node.up").map((e) => e.node)).toEqual(["a", "b"]);
    clock.advance(5000);
    beat("a");
    clock.advance(6000); // b silent for 11 s: past its 10 s timeout
    expect(of("node.late", "b")).toHaveLength(1);
    expect(of("node.down", "b")).toEqual([expect.objectContaining({ timeoutMs: 10_000 })]);
    expect(of("node.down", "a")).toEqual([]);
  });

  it("forgets a node through the table's forget action, and refuses a browser's request", async () => {
    expect(await ask(endpoint, "forget", "b")).toBe(true);
    expect(of("node.forgotten")).toEqual([expect.objectContaining({ node: "b", by: "operator" })]);
    expect(await ask(endpoint, "forget", "nobody")).toBe(false);
    const forged = await fetch(`http://${assembled.status}${ACTIONS.forget.path}?node=a`, {
      method: ACTIONS.forget.method,
      headers: { origin: "http://evil.example", [ACTIONS.forget.header!]: "1" },
    });
    expect(forged.status).toBe(403);
    expect(of("node.forgotten")).toHaveLength(1);
  });

  it("sends a test notice through the table's notify test action, to the configured hook", async () => {
    const answer = await ask(endpoint, "notifyTest", "pager");
    expect(answer).toMatchObject({ output: "pager", ok: true });
    expect(of("notify.test")).toEqual([expect.objectContaining({ output: "pager", outcome: "delivered" })]);
    expect(sent().find((n) => n.test)).toMatchObject({ event: "notify.test", monitor: "mon-test" });
    expect(await ask(endpoint, "notifyTest", "nobody")).toBeNull();
  });

  it("hands the events it judges to the configured outputs", async () => {
    for (let waitedMs = 0; !sent().some((n) => n.event === "node.down"); waitedMs += 10) {
      if (waitedMs > 10_000) throw new Error("no node.down reached the hook");
      await sleep(10);
    }
    expect(sent().find((n) => n.event === "node.down")).toMatchObject({ node: "b", test: false });
  });

  it("applies a valid new file on reload and rejects an invalid one, as the table's reload status shows", async () => {
    const before = await ask(endpoint, "reloadStatus");
    expect(before).toMatchObject({ pid: process.pid, reload: { generation: 0, ok: null } });

    writeFileSync(configPath, configText(`a: {}, b: {}, c: { timeout: 30s }`));
    await assembled.reload();
    const applied = await ask(endpoint, "reloadStatus");
    expect(applied.reload).toMatchObject({ generation: 1, ok: true, errors: [] });
    expect(applied.reload.changes).toContain("nodes.c: added (interval 1s, timeout 30s, late 15s)");
    expect(of("config.reloaded")).toHaveLength(1);
    expect(assembled.monitor.nodeCount).toBe(3);

    writeFileSync(configPath, configText(`a: { timeout: 1s }`)); // timeout <= 2 x interval
    await assembled.reload();
    const rejected = await ask(endpoint, "reloadStatus");
    expect(rejected.reload).toMatchObject({ generation: 2, ok: false });
    expect(rejected.reload.errors.join("\n")).toContain("timeout");
    expect(of("config.rejected")).toHaveLength(1);
    expect(assembled.monitor.nodeCount).toBe(3);
    expect(reloads).toEqual(["start", "done", "start", "done"]);
  });

  it("serves the reloads asked while one runs with a single next one", async () => {
    writeFileSync(configPath, configText(`a: {}, b: {}`));
    const first = assembled.reload();
    while (reloads.length % 2 === 0) await sleep(1); // until the first has started
    const second = assembled.reload();
    expect(assembled.reload()).toBe(second);
    await Promise.all([first, second]);
    expect((await ask(endpoint, "reloadStatus")).reload).toMatchObject({ generation: 4, ok: true });
    expect(assembled.monitor.nodeCount).toBe(2);
  });
});
