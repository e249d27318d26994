// Which notices raise or end an Alertmanager alert, and the alert itself. Shared by the
// alertmanager output (pushes to /api/v2/alerts) and the webhook's `format: alertmanager`.
// Labels identify the alert and carry nothing that differs between two monitors watching the
// same node (no monitor name, no time), so that an HA pair's alerts deduplicate by fingerprint;
// what is for humans goes in annotations. A monitor's own problems carry a `monitor` label: they
// are that monitor's alone.

import type { Notice } from "./notice.js";

export interface Alert {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  /** RFC 3339. */
  startsAt: string;
  /** RFC 3339; for a firing alert, when it expires unless sent again. */
  endsAt?: string;
  generatorURL?: string;
}

export interface AlertChange {
  /** Stable identity of the alert within one monitor: its alertname and node (or monitor). */
  readonly key: string;
  /** True: raise (or keep) it; false: it has ended (endsAt = the notice's time). */
  readonly firing: boolean;
  readonly alert: Alert;
  /** A monitor-level alert is not kept firing: it ends on its own after this long, unless raised again. */
  readonly expiresAfterMs: number | null;
}

/** How long a monitor's own problem (a stall, an overload) stays firing unless raised again. */
export const MONITOR_ALERT_MS = 5 * 60_000;

/** The alertname of a node's down, the one alert a resend may resolve by itself. */
const NODE_DOWN = "HbNodeDown";

/** The events that may raise or end an alert. */
const ALERT_EVENTS: ReadonlySet<string> = new Set([
  "node.down",
  "node.up",
  "node.left",
  "node.forgotten",
  "node.flapping",
  "peer.down",
  "peer.up",
  "peer.left",
  "monitor.stalled",
  "monitor.overloaded",
]);

/** Whether an event may raise or end an alert: a first contact never does. */
export function alertEvent(event: string, fields: Readonly<Record<string, unknown>>): boolean {
  return ALERT_EVENTS.has(event) && fields.previous !== "new";
}

/**
 * Asked before each resend about a held alert that does not end on its own: a node's down alert
 * fires only while the node is down (a reload may have removed the node, and then no notice
 * ends its alert); any other fires until a notice ends it.
 */
export function firingWhileDown(
  isDown: (node: string) => boolean,
): (key: string, node: string | null) => boolean {
  return (key, node) => !key.startsWith(`${NODE_DOWN}/`) || node === null || isDown(node);
}

const iso = (ms: number): string => new Date(ms).toISOString();

function nodeAlert(
  n: Notice,
  alertname: string,
  severity: string,
  firing: boolean,
  summary: string,
): AlertChange {
  const node = n.node!;
  // A recovery knows how long the node was down: the alert it ends began then.
  const downMs = typeof n.fields.downMs === "number" ? n.fields.downMs : null;
  const startsAt = firing ? (n.since ?? n.time) : downMs === null ? n.time : n.time - downMs;
  return {
    key: `${alertname}/${node}`,
    firing,
    expiresAfterMs: null,
    alert: {
      labels: { ...n.labels, alertname, node, severity },
      annotations: { summary, dedup_key: n.dedupKey },
      startsAt: iso(startsAt),
      ...(firing ? {} : { endsAt: iso(n.time) }),
    },
  };
}

function monitorAlert(n: Notice, alertname: string, summary: string, description: string): AlertChange {
  return {
    key: `${alertname}/${n.monitor}`,
    firing: true,
    expiresAfterMs: MONITOR_ALERT_MS,
    alert: {
      labels: { alertname, monitor: n.monitor, severity: "warning" },
      annotations: { summary, description },
      startsAt: iso(n.time),
    },
  };
}

/**
 * A monitor of the cluster that is down, as every other monitor sees it: labelled by the dead
 * one alone, so that the survivors' alerts are one alert in Alertmanager.
 */
function peerAlert(n: Notice): AlertChange | null {
  const peer = String(n.fields.peer);
  if (n.event === "peer.up" && n.previous !== "down") return null;
  const firing = n.event === "peer.down";
  return {
    key: `HbMonitorDown/${peer}`,
    firing,
    expiresAfterMs: null,
    alert: {
      labels: { alertname: "HbMonitorDown", monitor: peer, severity: "critical" },
      annotations: {
        summary: firing ? `monitor ${peer} is down` : `monitor ${peer} is back`,
        description: `seen by ${n.monitor}`,
        dedup_key: n.dedupKey,
      },
      startsAt: iso(firing ? (n.since ?? n.time) : n.time),
      ...(firing ? {} : { endsAt: iso(n.time) }),
    },
  };
}

function seconds(ms: unknown): string {
  return typeof ms === "number" ? `${(ms / 1000).toFixed(1)} s` : "?";
}

/** The alert a notice raises or ends, or null when it has none. */
export function alertChange(n: Notice): AlertChange | null {
  const f = n.fields;
  const test = n.test ? " (test notice)" : "";
  if (n.node !== null) {
    switch (n.event) {
      case "node.down":
        return withDescription(
          nodeAlert(n, NODE_DOWN, "critical", true, `node ${n.node} is down${test}`),
          `no heartbeat for ${seconds(f.silentMs)} (timeout ${seconds(f.timeoutMs)})`,
        );
      case "node.up":
        // Only a return from down ends an alert: a late node that recovers never had one.
        if (n.previous !== "down") return null;
        return nodeAlert(n, NODE_DOWN, "critical", false, `node ${n.node} is up again${test}`);
      case "node.left":
      case "node.forgotten":
        return nodeAlert(
          n,
          NODE_DOWN,
          "critical",
          false,
          `node ${n.node} ${n.event === "node.left" ? "left" : "was forgotten"}${test}`,
        );
      case "node.flapping":
        return nodeAlert(
          n,
          "HbNodeFlapping",
          "warning",
          f.settled !== true,
          `node ${n.node} is flapping${test}`,
        );
      default:
        return null;
    }
  }
  switch (n.event) {
    case "peer.down":
    case "peer.up":
    case "peer.left":
      return peerAlert(n);
    case "monitor.stalled":
      return monitorAlert(
        n,
        "HbMonitorStalled",
        `monitor ${n.monitor} stalled${test}`,
        `its event loop was frozen for ${seconds(f.stalledMs)}`,
      );
    case "monitor.overloaded":
      return monitorAlert(
        n,
        "HbMonitorOverloaded",
        `monitor ${n.monitor} is overloaded${test}`,
        `cause ${String(f.cause)}; kernel drops ${String(f.kernelDrops)}`,
      );
    case "notify.test":
      return monitorAlert(
        n,
        "HbNotifyTest",
        `test notice from monitor ${n.monitor}`,
        "sent by hb notify test; it ends on its own",
      );
    default:
      return null;
  }
}

function withDescription(change: AlertChange, description: string): AlertChange {
  change.alert.annotations.description = description;
  return change;
}
