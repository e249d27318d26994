// What `hb node` and `hb send` share: the flags that say who this node is, where its monitors
// are and which key signs its datagrams (each also an HB_* environment variable; flags win).

import { createSecretKey } from "node:crypto";
import { basename } from "node:path";
import { HbError } from "../errors.js";
import type { SenderOptions } from "../node/sender.js";
import { readKeyFile } from "../wire/key-file.js";
import { MAX_ID_BYTES, MAX_KEY_ID_BYTES, isId, type SigningKey } from "../wire/protocol.js";
import { addressFlag, flagOrEnv, usageError } from "./flags.js";
import type { Io } from "./io.js";

export const SENDER_FLAGS = {
  id: { type: "string" },
  monitor: { type: "string", multiple: true },
  "key-file": { type: "string" },
  "key-id": { type: "string" },
} as const;

export async function senderOptions(
  values: Record<string, string | boolean | string[] | undefined>,
  io: Io,
  usage: string,
): Promise<Omit<SenderOptions, "incarnation" | "intervalMs">> {
  const nodeId = flagOrEnv(values.id, io.env, "HB_NODE_ID");
  if (nodeId === undefined) throw usageError("--id (or HB_NODE_ID) is required", usage);
  if (!isId(nodeId)) {
    throw usageError(
      `--id: "${nodeId}" must be 1-${MAX_ID_BYTES} of [A-Za-z0-9._-], starting alphanumeric`,
      usage,
    );
  }
  const monitorTexts = Array.isArray(values.monitor) ? values.monitor : (io.env.HB_MONITOR ?? "").split(",");
  const monitors = monitorTexts
    .filter((m) => m.trim() !== "")
    .map((m) => addressFlag(m, "--monitor", usage, true));
  if (monitors.length === 0) throw usageError("--monitor (or HB_MONITOR) is required", usage);

  let key: SigningKey | undefined;
  const keyFile = flagOrEnv(values["key-file"], io.env, "HB_KEY_FILE");
  if (keyFile !== undefined) {
    const id = flagOrEnv(values["key-id"], io.env, "HB_KEY_ID") ?? basename(keyFile).replace(/\.key$/, "");
    if (!isId(id, MAX_KEY_ID_BYTES)) {
      throw usageError(
        `key id "${id}" must be 1-${MAX_KEY_ID_BYTES} of [A-Za-z0-9._-] (set --key-id)`,
        usage,
      );
    }
    try {
      key = { id, secret: createSecretKey(await readKeyFile(keyFile)) };
    } catch (err) {
      throw new HbError("HB_ERR_KEY_FILE", `key file: ${(err as Error).message}`, { cause: err });
    }
  }
  return { nodeId, monitors, key };
}
