// The `notify:` list and node labels: where notices go besides the journal, and what travels
// with every notice about a node. Read with positions like the rest of the config; what can only
// be checked on disk (a hook's file and its permissions) is load.ts's.

import { isMap, isScalar, isSeq, type Node, type Pair } from "yaml";
import { EVENT_LEVELS } from "../events.js";
import { isId } from "../wire/protocol.js";
import type { Reader } from "./reader.js";
import { quote } from "./reader.js";
import type { NotifySpec } from "./types.js";

export const NOTIFY_KINDS = ["exec", "webhook", "alertmanager"] as const;
export const NOTIFY_KEYS: readonly string[] = [
  "name",
  ...NOTIFY_KINDS,
  "on",
  "timeout",
  "queue",
  "attempts",
  "format",
  "sign_with",
  "resend",
  "generator_url",
];
/** Keys that only one kind of output takes. */
const KIND_KEYS: Readonly<Record<string, (typeof NOTIFY_KINDS)[number]>> = {
  format: "webhook",
  sign_with: "webhook",
  resend: "alertmanager",
  generator_url: "alertmanager",
};
export const DEFAULT_EXEC_TIMEOUT_MS = 30_000;
export const DEFAULT_HTTP_TIMEOUT_MS = 10_000;
export const DEFAULT_QUEUE = 10_000;
export const DEFAULT_ATTEMPTS = 8;
export const DEFAULT_RESEND_MS = 60_000;
/** Longest timeout or resend period: far beyond any use, and within what a timer can wait. */
export const MAX_NOTIFY_DURATION_MS = 24 * 3_600_000;
const MAX_NAME_BYTES = 64;
/** Alertmanager's label names; these three are hb's own on every node alert. */
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const RESERVED_LABELS: ReadonlySet<string> = new Set(["alertname", "node", "severity"]);
const MAX_LABELS = 32;
const MAX_LABEL_VALUE_BYTES = 256;

function httpUrl(r: Reader, at: Node, text: string, what: string): string | undefined {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    r.report(at, `${what}: ${quote(text)} is not a URL`);
    return undefined;
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    r.report(at, `${what}: ${quote(text)} must be an http:// or https:// URL`);
    return undefined;
  }
  // A password in a URL ends up wherever the URL is shown; and fetch refuses such URLs anyway.
  if (url.username !== "" || url.password !== "") {
    r.report(at, `${what}: a URL with a user name or password is not supported (put a token in the path)`);
    return undefined;
  }
  return text;
}

function stringList(r: Reader, pair: Pair, what: string, example: string): { text: string; at: Node }[] {
  const value = pair.value as Node | null;
  const items = isSeq(value) ? (value.items as Node[]) : isScalar(value) ? [value] : [];
  if (items.length === 0) r.report(value ?? (pair.key as Node), `${what} must be ${example}`);
  const out: { text: string; at: Node }[] = [];
  for (const item of items) {
    if (isScalar(item) && typeof item.value === "string" && item.value !== "")
      out.push({ text: item.value, at: item });
    else r.report(item, `${what} must be ${example}`);
  }
  return out;
}

/** `notify:` as a list of outputs; `keyIds`: the keys a webhook may sign with. */
export function parseNotify(r: Reader, pair: Pair, keyIds: ReadonlySet<string>): NotifySpec[] {
  const value = pair.value as Node | null;
  if (value == null || (isScalar(value) && value.value == null)) return [];
  if (!isSeq(value)) {
    r.report(value, "notify must be a list of outputs, e.g. - { name: pager, exec: [/path/to/hook] }");
    return [];
  }
  const out: NotifySpec[] = [];
  const names = new Set<string>();
  for (const [index, item] of value.items.entries()) {
    const spec = parseOutput(r, item as Node, `notify[${index}]`, keyIds);
    if (spec === undefined) continue;
    if (names.has(spec.name)) r.report(item as Node, `notify: two outputs are named ${quote(spec.name)}`);
    names.add(spec.name);
    out.push(spec);
  }
  return out;
}

function parseOutput(
  r: Reader,
  item: Node,
  where: string,
  keyIds: ReadonlySet<string>,
): NotifySpec | undefined {
  if (!isMap(item)) {
    r.report(item, `${where} must be a mapping with a name and one of: ${NOTIFY_KINDS.join(", ")}`);
    return undefined;
  }
  const fields = new Map(r.pairs(item, item, where, NOTIFY_KEYS));
  const namePair = fields.get("name");
  const name = namePair === undefined ? undefined : r.string(namePair, `${where}.name`);
  if (namePair === undefined) r.report(item, `${where} needs a name`);
  else if (name !== undefined && !isId(name, MAX_NAME_BYTES)) {
    r.report(
      namePair.value as Node,
      `${where}.name ${quote(name)} must be 1-${MAX_NAME_BYTES} of [A-Za-z0-9._-]`,
    );
  }
  const what = name === undefined ? where : `notify.${name}`;
  const kinds = NOTIFY_KINDS.filter((kind) => fields.has(kind));
  if (kinds.length !== 1) {
    r.report(item, `${what} needs exactly one of: ${NOTIFY_KINDS.join(", ")}`);
    return undefined;
  }
  const kind = kinds[0]!;
  for (const [key, only] of Object.entries(KIND_KEYS)) {
    const keyPair = fields.get(key);
    if (keyPair !== undefined && only !== kind)
      r.report(keyPair.key as Node, `${what}.${key} is for ${only} outputs`);
  }
  const common = {
    name: name ?? "",
    on: parseOn(r, fields.get("on"), what, kind),
    timeoutMs:
      optional(fields.get("timeout"), (p) => capped(r, p, `${what}.timeout`)) ??
      (kind === "exec" ? DEFAULT_EXEC_TIMEOUT_MS : DEFAULT_HTTP_TIMEOUT_MS),
    queue: optional(fields.get("queue"), (p) => r.integer(p, `${what}.queue`, 1)) ?? DEFAULT_QUEUE,
    attempts:
      optional(fields.get("attempts"), (p) => r.integer(p, `${what}.attempts`, 1)) ?? DEFAULT_ATTEMPTS,
    ...r.position(item),
  };
  const target = fields.get(kind)!;
  switch (kind) {
    case "exec": {
      const argv = stringList(
        r,
        target,
        `${what}.exec`,
        "a list: the hook's absolute path, then its arguments",
      );
      if (argv[0] !== undefined && !argv[0].text.startsWith("/"))
        r.report(
          argv[0].at,
          `${what}.exec: ${quote(argv[0].text)} must be an absolute path (hooks run without a shell)`,
        );
      return Object.freeze({ ...common, kind, argv: Object.freeze(argv.map((a) => a.text)) });
    }
    case "webhook": {
      const text = r.string(target, `${what}.webhook`);
      const url = text === undefined ? undefined : httpUrl(r, target.value as Node, text, `${what}.webhook`);
      const format =
        optional(fields.get("format"), (p) =>
          r.oneOf(p, `${what}.format`, ["hb", "alertmanager"] as const),
        ) ?? "hb";
      const signPair = fields.get("sign_with");
      const signWith = signPair === undefined ? null : (r.string(signPair, `${what}.sign_with`) ?? null);
      if (signPair !== undefined && signWith !== null && !keyIds.has(signWith))
        r.report(signPair.value as Node, `${what}.sign_with: ${quote(signWith)} is not a key under keys`);
      return Object.freeze({ ...common, kind, url: url ?? "", format, signWith });
    }
    case "alertmanager": {
      const urls = stringList(
        r,
        target,
        `${what}.alertmanager`,
        "a list of Alertmanager URLs, e.g. [http://127.0.0.1:9093]",
      )
        .map(({ text, at }) => httpUrl(r, at, text, `${what}.alertmanager`))
        .filter((url): url is string => url !== undefined)
        .map((url) => url.replace(/\/+$/, ""));
      const generatorPair = fields.get("generator_url");
      const generator =
        generatorPair === undefined ? undefined : r.string(generatorPair, `${what}.generator_url`);
      const generatorUrl =
        generator === undefined
          ? null
          : (httpUrl(r, generatorPair!.value as Node, generator, `${what}.generator_url`) ?? null);
      return Object.freeze({
        ...common,
        kind,
        urls: Object.freeze(urls),
        resendMs: optional(fields.get("resend"), (p) => capped(r, p, `${what}.resend`)) ?? DEFAULT_RESEND_MS,
        generatorUrl: generatorUrl?.replace(/\/+$/, "") ?? null,
      });
    }
  }
}

function capped(r: Reader, pair: Pair, name: string): number | undefined {
  const ms = r.duration(pair, name);
  if (ms === undefined || ms <= MAX_NOTIFY_DURATION_MS) return ms;
  r.report(pair.value as Node, `${name} must be at most 24h`);
  return undefined;
}

function optional<T>(pair: Pair | undefined, read: (pair: Pair) => T | undefined): T | undefined {
  return pair === undefined ? undefined : read(pair);
}

function parseOn(r: Reader, pair: Pair | undefined, what: string, kind: string): ReadonlySet<string> | null {
  if (pair === undefined) return null;
  if (kind === "alertmanager") {
    r.report(
      pair.key as Node,
      `${what}.on: an alertmanager output raises and resolves alerts from states, not chosen events`,
    );
    return null;
  }
  const events = new Set<string>();
  for (const { text, at } of stringList(
    r,
    pair,
    `${what}.on`,
    "a list of event names, e.g. [node.down, node.up]",
  )) {
    if (text.startsWith("notify."))
      r.report(at, `${what}.on: ${quote(text)}: what outputs do is never a notice (see the metrics)`);
    else if (text.startsWith("capture."))
      r.report(at, `${what}.on: ${quote(text)}: an operator's capture is never a notice (see the journal)`);
    else if (text in EVENT_LEVELS) events.add(text);
    else r.report(at, `${what}.on: ${quote(text)} is not an event hb writes`);
  }
  return Object.freeze(events);
}

/** `nodes.ID.labels`: names as Alertmanager takes them, string values. */
export function parseLabels(r: Reader, pair: Pair, what: string): Readonly<Record<string, string>> | null {
  const labels: Record<string, string> = {};
  let count = 0;
  for (const [name, labelPair] of r.pairs(pair.value, pair.key as Node, what)) {
    const at = labelPair.key as Node;
    if (!LABEL_NAME.test(name)) {
      r.report(at, `${what}: label ${quote(name)} must be a name of [a-zA-Z0-9_], not starting with a digit`);
      continue;
    }
    if (RESERVED_LABELS.has(name)) {
      r.report(at, `${what}: ${quote(name)} is a label hb sets itself`);
      continue;
    }
    const value = labelPair.value as Node | null;
    if (!isScalar(value) || typeof value.value !== "string") {
      r.report(value ?? at, `${what}.${name} must be a string (quote numbers: "1")`);
      continue;
    }
    if (Buffer.byteLength(value.value) > MAX_LABEL_VALUE_BYTES) {
      r.report(value, `${what}.${name} is longer than ${MAX_LABEL_VALUE_BYTES} bytes`);
      continue;
    }
    if (++count > MAX_LABELS) {
      r.report(at, `${what}: at most ${MAX_LABELS} labels`);
      break;
    }
    labels[name] = value.value;
  }
  return count === 0 ? null : Object.freeze(labels);
}
