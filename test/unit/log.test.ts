import { describe, expect, it } from "vitest";
import { EVENT_LEVELS } from "../../src/events.js";
import { createEventLog } from "../../src/log.js";

function capture(journal: boolean) {
  const lines: string[] = [];
  const emit = createEventLog({ out: { write: (l) => void lines.push(l) }, journal });
  return { lines, emit };
}

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
    expect(byLevel("error")).toEqual(["config.rejected", "node.down"]);
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
      "sender.failed",
      "sender.warning",
    ]);
  });
});
