// The status document as operators read it: one row per node, then the counts. Shared by
// `hb status` and `hb demo`.

import { formatAgo, formatDuration } from "../duration.js";
import type { StatusDocument } from "../monitor/status.js";

export function renderTable(doc: StatusDocument): string {
  const header = ["NODE", "STATE", "LAST HEARD", "TIMEOUT", "LOSS", "RESTARTS", "FROM"];
  const rows = doc.nodes.map((n) => [
    n.node + (n.expected ? "" : " (unlisted)"),
    n.state,
    n.silentMs === null ? "never" : `${formatAgo(n.silentMs)} ago`,
    formatDuration(n.timeoutMs),
    `${n.lossPct.toFixed(1)}%`,
    String(n.restarts),
    n.from ?? "-",
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => c.padEnd(widths[i]!))
      .join("  ")
      .trimEnd();
  const c = doc.counts;
  const summary = `${c.up} up, ${c.late} late, ${c.down} down, ${c.left} left, ${c.new} new, ${c.paused} paused`;
  return [line(header), ...rows.map(line), "", summary].join("\n") + "\n";
}
