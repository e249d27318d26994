// The gate in front of the detector: bytes -> a decoded datagram that may be judged, or the
// reason it is refused. It decodes (wire/protocol.ts) and then authenticates as the config
// asks: under `required` every datagram must carry a valid tag; under `optional` an unsigned
// one passes unless its node is bound to keys (`nodes.ID.keys`); a signed one must verify with a
// key its node may use. Another monitor's datagrams must verify with the cluster's key, and only
// they may be sync datagrams. Replay and capacity need the node's history: those are the detector's.

import type { LoadedConfig } from "../config/load.js";
import type { AuthMode } from "../config/types.js";
import { finish, type Sliced } from "../slices.js";
import {
  DECODE_REASONS,
  Kind,
  decode,
  nodeIdOf,
  tagKey,
  verifyTag,
  type Datagram,
  type DecodeReason,
  type TagKey,
} from "../wire/protocol.js";

/** Every reason a datagram is refused, here or by the detector; stable counter labels. */
export const REJECT_REASONS = [
  ...DECODE_REASONS,
  "not_a_monitor",
  "unauthenticated",
  "unknown_key",
  "key_not_allowed",
  "bad_tag",
  "replay",
  "future_incarnation",
  "unconfirmed_jump",
  "unknown_node",
  "too_many_nodes",
] as const;
export type RejectReason = (typeof REJECT_REASONS)[number];

export type AdmitReason =
  DecodeReason | "not_a_monitor" | "unauthenticated" | "unknown_key" | "key_not_allowed" | "bad_tag";

/** The other monitors of the cluster, told apart by their ids' bytes (no string per datagram). */
export class PeerIds {
  private readonly ids: readonly Buffer[];

  constructor(
    ids: readonly string[],
    /** The only key a peer may sign with, and one no node may use. */
    readonly key: string,
  ) {
    this.ids = ids.map((id) => Buffer.from(id, "latin1"));
  }

  /** True when `dg` names one of the peers. */
  match(dg: Datagram): boolean {
    for (const id of this.ids) {
      if (id.length !== dg.idLength) continue;
      let i = 0;
      while (i < id.length && id[i] === dg.buf[dg.idStart + i]) i++;
      if (i === id.length) return true;
    }
    return false;
  }
}

/** What admission needs of a config, made ready before it is swapped in. */
export interface AdmissionRules {
  readonly auth: AuthMode;
  /** The other monitors, when the config has a cluster. */
  readonly peers: PeerIds | null;
  /** The keys that may authenticate a datagram, by key id, made ready once per config loaded. */
  readonly keys: ReadonlyMap<string, TagKey>;
  /** Nodes bound to keys; null when none is, so datagrams skip the lookup. */
  readonly boundKeys: ReadonlyMap<string, ReadonlySet<string>> | null;
}

/** Nodes looked at between two points where preparing may pause (see slices.ts). */
const NODES_PER_STEP = 4096;

/** This monitor's id in its cluster: the config's, else the one given at start. */
export function selfOf(loaded: LoadedConfig): string | null {
  return loaded.config.cluster?.self ?? loaded.monitorId ?? null;
}

export function* admissionRules(loaded: LoadedConfig): Sliced<AdmissionRules> {
  const bound = new Map<string, ReadonlySet<string>>();
  let i = 0;
  for (const node of loaded.config.nodes.values()) {
    if (node.keys !== null) bound.set(node.id, node.keys);
    if (++i % NODES_PER_STEP === 0) yield;
  }
  // A key that signs webhooks is known to their receivers: it never authenticates a heartbeat.
  const signing = new Set<string>();
  for (const o of loaded.config.notify)
    if (o.kind === "webhook" && o.signWith !== null) signing.add(o.signWith);
  const keys = new Map<string, TagKey>();
  for (const [id, secret] of loaded.keyring) if (!signing.has(id)) keys.set(id, tagKey(secret));
  const { cluster } = loaded.config;
  const peers =
    cluster === null
      ? null
      : new PeerIds(
          cluster.monitors.map((m) => m.id).filter((id) => id !== selfOf(loaded)),
          cluster.key,
        );
  return { auth: loaded.config.auth, peers, keys, boundKeys: bound.size === 0 ? null : bound };
}

export class Admission {
  private rules: AdmissionRules;

  constructor(loaded: LoadedConfig) {
    this.rules = finish(admissionRules(loaded));
  }

  configure(rules: AdmissionRules): void {
    this.rules = rules;
  }

  /** Whether an admitted datagram is another monitor's (it goes to the peers). */
  fromPeer(dg: Datagram): boolean {
    return this.rules.peers?.match(dg) ?? false;
  }

  /** Decodes `msg` into `out`; null when it may go on to the detector, else why not. */
  admit(msg: Buffer, out: Datagram): AdmitReason | null {
    const reason = decode(msg, out);
    if (reason !== null) return reason;
    const { auth, boundKeys, keys, peers } = this.rules;
    // Another monitor's datagram is always signed, with the cluster's key and no other; and no
    // node may sign with that key, whatever the auth mode, nor send what only monitors send.
    if (peers !== null && peers.match(out)) {
      if (out.tagOffset === 0) return "unauthenticated";
      if (out.keyId !== peers.key) return "key_not_allowed";
      const key = keys.get(peers.key);
      if (key === undefined) return "unknown_key";
      return verifyTag(msg, out.tagOffset, key) ? null : "bad_tag";
    }
    if (out.kind === Kind.SYNC) return "not_a_monitor";
    if (peers !== null && out.tagOffset !== 0 && out.keyId === peers.key) return "key_not_allowed";
    if (auth === "off") return null;
    // A node bound to keys must always sign, even where signing is optional.
    const allowed = boundKeys === null ? null : (boundKeys.get(nodeIdOf(out)) ?? null);
    if (out.tagOffset === 0) return auth === "required" || allowed !== null ? "unauthenticated" : null;
    const key = keys.get(out.keyId);
    if (key === undefined) return "unknown_key";
    if (allowed !== null && !allowed.has(out.keyId)) return "key_not_allowed";
    if (!verifyTag(msg, out.tagOffset, key)) return "bad_tag";
    return null;
  }
}
