// The output of each kind of `notify:` entry, made from its spec and what the monitor gives the
// outputs: its name, the keys a webhook signs with, the status URL for links, and whether a node
// is down (an alert held for a node that is not is resolved). Also what makes two specs of one
// name differ beyond their text: a webhook's rotated key.

import { createHash } from "node:crypto";
import type { Clock } from "../clock.js";
import type { Keyring } from "../config/load.js";
import type { NotifySpec } from "../config/types.js";
import { VERSION } from "../version.js";
import { AlertmanagerOutput } from "./alertmanager.js";
import { firingWhileDown } from "./alerts.js";
import { ExecOutput } from "./exec.js";
import type { Output } from "./output.js";
import { WebhookOutput } from "./webhook.js";

export interface OutputContext {
  readonly clock: Clock;
  /** This monitor's name in notices. */
  readonly monitor: string;
  readonly keyring: Keyring;
  /** Base URL of the status endpoint; null when there is none to give. */
  readonly statusUrl: string | null;
  isDown(node: string): boolean;
}

export function makeOutput(spec: NotifySpec, context: OutputContext): Output {
  const { clock, statusUrl } = context;
  switch (spec.kind) {
    case "exec":
      return new ExecOutput(spec, { clock, monitor: context.monitor });
    case "webhook":
      return new WebhookOutput(spec, {
        clock,
        key: spec.signWith === null ? null : (context.keyring.get(spec.signWith) ?? null),
        userAgent: `hb/${VERSION}`,
        ...(statusUrl === null ? {} : { externalUrl: statusUrl }),
      });
    case "alertmanager":
      return new AlertmanagerOutput(spec, {
        clock,
        statusUrl,
        stillFiring: firingWhileDown((node) => context.isDown(node)),
      });
  }
}

/** A webhook whose key file was rotated is a changed output: its next requests use the new key. */
export function outputIdentity(spec: NotifySpec, keyring: Keyring): string {
  const key = spec.kind === "webhook" && spec.signWith !== null ? keyring.get(spec.signWith) : undefined;
  return key === undefined ? "" : createHash("sha256").update(key.export()).digest("hex");
}
