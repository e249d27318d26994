import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { EVENT_LEVELS, type Emit, type EventFields, type EventName } from "../../src/events.js";
import { createLineLog, droppedLinesNote, type EventLogOptions } from "../../src/journal.js";
import { createEventLog } from "../../src/log.js";

function capture(journal: boolean, create: (options: EventLogOptions) => Emit = createEventLog) {
  const lines: string[] = [];
  const emit = create({ out: { write: (l) => void lines.push(l) }, journal });
  return { lines, emit };
}

/** One record of every event in the registry, with strings that need escaping and an optional field left out. */
const maintSample = {
  id: "m-k2x9q4ab",
  match: ["web-*"],
  author: "ops",
  comment: "kernel upgrade",
  startsAt: 1_796_000_000_000,
  endsAt: 1_796_003_600_000,
  by: "mon-a",
};

const SAMPLES: { [E in EventName]: EventFields[E] } = {
  "node.up": { node: "web-1", from: "192.0.2.1:4000", previous: "down" },
  "node.late": { node: "web-1", silentMs: 5001, lateMs: 5000 },
  "node.down": { node: "web-1", lastSeen: null, silentMs: 10_000, timeoutMs: 10_000, at: 1_700_000_000_000 },
  "node.left": { node: "web-1", from: "[2001:db8::1]:4000" },
  "node.restarted": { node: "web-1", from: "192.0.2.1:4000", incarnation: 7, previousIncarnation: 6 },
  "node.flapping": { node: "web-1", changes: 6, windowMs: 60_000, settled: false, state: "up" },
  "node.forgotten": { node: "web-1", silentMs: null, by: "operator" },
  "peer.up": { peer: "mon-b", from: "192.0.2.6:26722", previous: "down", downMs: 6000 },
  "peer.late": { peer: "mon-b", silentMs: 2501, lateMs: 2500 },
  "peer.down": {
    peer: "mon-b",
    lastSeen: 1_700_000_000_000,
    silentMs: 5001,
    timeoutMs: 5000,
    at: 1_700_000_005_000,
  },
  "peer.left": { peer: "mon-b", from: "192.0.2.6:26722" },
  "peer.restarted": { peer: "mon-b", from: "192.0.2.6:26722", incarnation: 9, previousIncarnation: 8 },
  "monitor.speaking": { speaking: true, speaker: "mon-a", reason: "peer.down" },
  "monitor.isolated": { heardNodes: 0, expectedNodes: 12, holdMs: 2000 },
  "monitor.started": {
    listen: "0.0.0.0:26722",
    status: "127.0.0.1:26723",
    nodes: 3,
    version: "0.1.0",
    config: "/etc/hb.yaml",
  },
  "monitor.stopping": {
    listen: "0.0.0.0:26722",
    status: "127.0.0.1:26723",
    nodes: 3,
    version: "0.1.0",
    signal: "SIGTERM",
  },
  "monitor.stalled": { stalledMs: 1200, holdMs: 5000 },
  "monitor.overloaded": { cause: "kernel_drops", kernelDrops: 17, holdMs: 5000 },
  "monitor.warning": { problem: "p", detail: 'a "quoted" \\ back\nslash, tab\t, é and \u0001' },
  "config.reloaded": { changes: ["nodes.web-1 added", "late: 5s -> 3s"] },
  "config.rejected": { errors: ['hb.yaml:3:5: nodes.x: unknown key "tiemout"'] },
  "nodes.summarized": { counts: { "node.up": 40, "node.late": 2 }, total: 42, windowMs: 10_000 },
  "notify.failed": {
    output: "pager",
    reason: "exit_1",
    detail: 'page: no route to "ops"\n',
    attempts: 1,
    notices: 2,
    nodes: ["web-1", "web-2"],
  },
  "notify.dropped": { output: "chat", notices: 12, windowMs: 60_000 },
  "notify.test": { output: "pager", outcome: "delivered", detail: "" },
  "datagrams.rejected": { counts: { bad_tag: 3 }, total: 3, windowMs: 10_000 },
  "log.dropped": { lines: 12 },
  "maint.added": maintSample,
  "maint.extended": maintSample,
  "maint.ended": maintSample,
  "maint.expired": maintSample,
  "capture.started": { seconds: 60, node: "web-*", maxBytes: 67_108_864, author: "alice" },
  "capture.ended": {
    seconds: 60,
    node: "web-*",
    author: "alice",
    reason: "done",
    rows: 1200,
    nodes: 20,
    bytes: 30_120,
    capturedMs: 60_000,
  },
  "sender.started": {
    node: "web-1",
    monitors: ["192.0.2.1:26722"],
    intervalMs: 1000,
    incarnation: 9,
    keyId: null,
  },
  "sender.stopping": { node: "web-1", signal: "SIGTERM", sent: 42 },
  "sender.failed": { node: "web-1", monitor: "mon.example:26722", error: "ENOTFOUND", failures: 1 },
  "sender.warning": { node: "web-1", problem: "incarnation_file_repaired", detail: '/var/lib/hb held "x\\"' },
};

describe("event log", () => {
  it("writes one JSON object per line with a stable event name, level label and epoch time", () => {
    const { lines, emit } = capture(false);
    emit("node.late", { node: "3", silentMs: 5001, lateMs: 5000 });
    expect(lines).toHaveLength(1);
    expect(lines[0]!.endsWith("\n")).toBe(true);
    const record = JSON.parse(lines[0]!) as Record<string, unknown>;
    expect(record).toMatchObject({
      level: "warn",
      event: "node.late",
      node: "3",
      silentMs: 5001,
      lateMs: 5000,
    });
    expect(typeof record.time).toBe("number");
    expect(record).not.toHaveProperty("pid");
    expect(record).not.toHaveProperty("hostname");
  });

  it("prefixes each line with its syslog priority when writing to the journal", () => {
    const { lines, emit } = capture(true);
    emit("node.down", { node: "3", lastSeen: 1, silentMs: 10, timeoutMs: 10, at: 11 });
    emit("node.late", { node: "3", silentMs: 5, lateMs: 5 });
    emit("node.left", { node: "3", from: "x" });
    expect(lines.map((l) => l.slice(0, 3))).toEqual(["<3>", "<4>", "<6>"]);
    expect(JSON.parse(lines[0]!.slice(3))).toMatchObject({ event: "node.down" });
  });

  it("gives exactly the levels of the contract: down and rejected config at error; late, restarted, stalled and rejected datagrams at warning", () => {
    const byLevel = (level: string) =>
      Object.entries(EVENT_LEVELS)
        .filter(([, l]) => l === level)
        .map(([e]) => e)
        .sort();
    expect(byLevel("error")).toEqual(["config.rejected", "monitor.isolated", "node.down", "peer.down"]);
    expect(byLevel("warn")).toEqual([
      "datagrams.rejected",
      "log.dropped",
      "monitor.overloaded",
      "monitor.stalled",
      "monitor.warning",
      "node.flapping",
      "node.late",
      "node.restarted",
      "nodes.summarized",
      "notify.dropped",
      "notify.failed",
      "peer.late",
      "peer.restarted",
      "sender.failed",
      "sender.warning",
    ]);
  });
});

describe("the node's event lines, written without pino", () => {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime(1_796_000_000_123);
  });
  afterEach(() => vi.useRealTimers());

  it("give a sender.warning with the same fields, values and key order as the monitor's pino line", () => {
    const fields = SAMPLES["sender.warning"];
    const [fromPino, fromNode] = [createEventLog, createLineLog].map((create) => {
      const { lines, emit } = capture(false, create);
      emit("sender.warning", fields);
      expect(lines).toHaveLength(1);
      return JSON.parse(lines[0]!) as Record<string, unknown>;
    });
    expect(Object.keys(fromNode!)).toEqual(["level", "time", "event", "node", "problem", "detail"]);
    expect(Object.keys(fromNode!)).toEqual(Object.keys(fromPino!));
    expect(fromNode).toEqual(fromPino);
    expect(fromNode).toEqual({ level: "warn", time: 1_796_000_000_123, event: "sender.warning", ...fields });
  });

  it.each([false, true])(
    "are byte for byte the monitor's pino lines, for every event in the registry (journal: %s)",
    (journal) => {
      const pino = capture(journal, createEventLog);
      const node = capture(journal, createLineLog);
      for (const event of Object.keys(SAMPLES) as EventName[]) {
        pino.emit(event, SAMPLES[event]);
        node.emit(event, SAMPLES[event]);
      }
      expect(node.lines).toHaveLength(Object.keys(EVENT_LEVELS).length);
      expect(node.lines).toEqual(pino.lines);
    },
  );

  it("include the writer's log.dropped note, in the same format", () => {
    const pino = capture(true, createEventLog);
    pino.emit("log.dropped", { lines: 12 });
    expect(droppedLinesNote(true)(12)).toBe(pino.lines[0]);
  });
});
