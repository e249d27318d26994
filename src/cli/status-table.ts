// The status document as operators read it: one row per node, then the counts. Shared by
// `hb status` and `hb demo`. Whatever answered on the status port wrote the text, so control
// characters are shown escaped, never sent to the terminal.

import { formatAgo, formatDuration } from "../duration.js";
import type { StatusDocument } from "../monitor/status.js";

// C0 controls, DEL and C1 controls (U+009B is a one-character CSI on many terminals).
// eslint-disable-next-line no-control-regex
const CONTROLS = /[\u0000-\u001f\u007f-\u009f]/g;

const hex = (c: string): string => c.charCodeAt(0).toString(16).padStart(2, "0");

/** `text` with every control character written as \xHH. */
export function escapeControls(text: string): string {
  return text.replace(CONTROLS, (c) => `\\x${hex(c)}`);
}

/** JSON text safe on a terminal: C0 controls are escaped by JSON already, DEL and C1 are not. */
export function terminalJson(value: unknown): string {
  return (JSON.stringify(value, null, 2) ?? "null").replace(/[\u007f-\u009f]/g, (c) => `\\u00${hex(c)}`);
}

function number(value: unknown, format: (n: number) => string): string {
  return typeof value === "number" && Number.isFinite(value) ? format(value) : "?";
}

/** "down", "down (via sw-3)", "down (maint m-k2x9q4ab)": the state and what keeps it from paging. */
function stateText(n: StatusDocument["nodes"][number]): string {
  const notes: string[] = [];
  if (Array.isArray(n.via) && n.via.length > 0) notes.push(`via ${n.via.join(", ")}`);
  if (Array.isArray(n.maintenance) && n.maintenance.length > 0)
    notes.push(`maint ${n.maintenance.join(", ")}`);
  return notes.length === 0 ? String(n.state) : `${String(n.state)} (${notes.join("; ")})`;
}

export function renderTable(doc: StatusDocument, shownOf?: number): string {
  const header = ["NODE", "STATE", "LAST HEARD", "TIMEOUT", "LOSS", "RESTARTS", "FROM"];
  const rows = doc.nodes.map((n) =>
    [
      String(n.node) + (n.expected === false ? " (unlisted)" : ""),
      stateText(n),
      n.silentMs === null ? "never" : `${number(n.silentMs, formatAgo)} ago`,
      number(n.timeoutMs, formatDuration),
      `${number(n.lossPct, (p) => p.toFixed(1))}%`,
      String(n.restarts),
      n.from === null ? "-" : String(n.from),
    ].map(escapeControls),
  );
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => c.padEnd(widths[i]!))
      .join("  ")
      .trimEnd();
  const c = doc.counts;
  const summary = `${c.up} up, ${c.late} late, ${c.down} down, ${c.left} left, ${c.new} new, ${c.paused} paused`;
  const more =
    shownOf !== undefined && shownOf > rows.length ? [`(${rows.length} of ${shownOf} nodes shown)`] : [];
  return [line(header), ...rows.map(line), ...more, "", summary, ...clusterLines(doc)].join("\n") + "\n";
}

/** A span for humans: "1.003s", "12.5ms", "4m10s". */
function span(ms: number): string {
  if (ms < 1000) return `${Math.round(ms * 10) / 10}ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(3)}s`;
  return formatAgo(ms);
}

const percent = (share: number): string => `${Math.round(share * 100)} %`;

/**
 * What `hb status --node ID` adds under the row of each node it lists: how its heartbeats have
 * arrived, how close its longest silence came to late and down, and what φ makes of it.
 */
export function renderEvidence(doc: StatusDocument): string {
  const lines: string[] = [];
  for (const n of doc.nodes) {
    const g = n.gaps;
    if (g == null) {
      lines.push(`${n.node}: not heard twice yet: no gaps to go by`);
      continue;
    }
    lines.push(
      `${n.node}: ${g.count} gaps (statistics of about the last 1 024): mean ${span(g.meanMs)}, σ ${span(g.stdMs)}, p99 ${span(g.p99Ms)}, largest ${span(g.maxMs)}`,
      `  headroom: the largest gap is ${percent(g.headroom.late)} of the silence that makes it late, ${percent(g.headroom.timeout)} of the one that makes it down`,
    );
    const phi = n.phi;
    if (phi !== undefined) {
      const at = (epoch: number): string =>
        `${span(Math.max(0, epoch - (n.lastSeen ?? epoch)))} after its last heartbeat`;
      lines.push(
        `  φ-accrual: μ ${span(phi.meanMs)}, σ ${span(phi.stdMs)} over ${phi.samples} intervals; φ now ${phi.value}; late ${at(phi.lateAt)}, down ${at(phi.downAt)}`,
      );
    }
  }
  return lines.map(escapeControls).join("\n") + (lines.length > 0 ? "\n" : "");
}

/** "monitor mon-b (speaking; speaker mon-b), peers: mon-a down 12s ago, mon-c up". */
function clusterLines(doc: StatusDocument): string[] {
  const cluster = doc.cluster as StatusDocument["cluster"] | undefined;
  if (cluster == null) return [];
  const speaking = cluster.speaking ? "speaking" : "not speaking";
  const speaker =
    cluster.speak === "all" ? "every monitor speaks" : `speaker ${cluster.speaker ?? "not known yet"}`;
  const peers = cluster.peers.map((p) => {
    const heard = p.lastSeen === null ? "" : ` (heard ${formatAgo(Math.max(0, doc.now - p.lastSeen))} ago)`;
    // It beats but sends no digests, though this monitor shares state: an older version.
    const unshared = p.shares === false && p.state === "up" ? " (shares no state: upgrade it)" : "";
    return `${p.peer} ${p.state}${heard}${unshared}`;
  });
  return [escapeControls(`monitor ${cluster.self} (${speaking}; ${speaker}); peers: ${peers.join(", ")}`)];
}
