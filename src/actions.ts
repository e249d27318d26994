// The operator's actions on a running monitor, as one table that the status server
// (monitor/http.ts) serves and the client (cli/status-client.ts) sends: each action's method,
// path, header and argument (in the query, or for `hb maint` and `hb capture` a small JSON body),
// and how its reply is written and read back (JSON, or for `hb capture` a stream of text). Pure
// data and small codecs, so that `hb forget` can import it without evaluating the monitor.

import { parseSelector } from "./selectors.js";

/** How many reloads were attempted (accepted or rejected) since start, and the last one's outcome. */
export interface ReloadState {
  generation: number;
  ok: boolean | null;
  at: number | null;
  changes: string[];
  errors: string[];
}

/** GET /status/reload: what `hb reload` polls, without counting or listing any node. */
export interface ReloadStatus {
  version: string;
  pid: number;
  reload: ReloadState;
}

/** `hb notify test`: how the test notice went. */
export interface NotifyTestAnswer {
  readonly ok: boolean;
  readonly reason?: string;
  readonly detail?: string;
}

/** A reply as the server writes it: a status code and a JSON body. */
export interface ActionReply {
  readonly status: number;
  readonly body: unknown;
}

/** The one argument an action takes, as `?NAME=VALUE`: a node or output id. */
export interface ActionParam {
  readonly name: string;
  /** What a valid value is, for the 400 text ("node: not a node id"). */
  readonly what: string;
}

/**
 * One action. `Result` is what the monitor's handler returns, `Answer` what the client makes of
 * the reply. A POST action's header keeps browsers out: a web page cannot add a custom header to a
 * request to another origin without a CORS preflight, which the server never grants.
 */
export interface Action<Result, Answer> {
  /** How the server's refusals name it ("forget needs the x-hb-forget header"). */
  readonly name: string;
  readonly method: "GET" | "POST";
  readonly path: string;
  /** Asked under the client's status path (`--url http://h/x/status` asks `/x/status/reload`). */
  readonly underStatus: boolean;
  /** The header a request must carry (any value), with no Origin; null: none. */
  readonly header: string | null;
  readonly param: ActionParam | null;
  /** It takes a JSON object as its body (at most MAX_ACTION_BODY_BYTES); others take none. */
  readonly body: boolean;
  /** The handler may take long (a hook's whole timeout): the connection does not idle out meanwhile. */
  readonly waits: boolean;
  /**
   * A 200 reply's body is text that the handler's result writes as it comes (monitor/http.ts's
   * StreamedBody), for as long as it takes; any other reply is JSON, as for the other actions.
   */
  readonly streams: boolean;
  /** How long the client waits for the reply; null: its default. */
  readonly timeoutMs: number | null;
  /** Status codes whose JSON body is an answer; any other is a failure. */
  readonly answers: readonly number[];
  /** What the client calls its answer when the body is not one ("an hb reload status"). */
  readonly answerName: string;
  reply(arg: string, result: Result): ActionReply;
  /** The client's answer from a reply's body; undefined when it is not one. */
  read(arg: string, body: unknown): Answer | undefined;
}

/** Node and output ids, as the wire carries them (wire/protocol.ts's ID_PATTERN, 64 bytes at most). */
export const ACTION_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
/** A test notice waits for its delivery, which may take a hook's whole timeout. */
const NOTIFY_TEST_TIMEOUT_MS = 15 * 60_000;
/** The largest body an action takes: a maintenance window's request is far smaller. */
export const MAX_ACTION_BODY_BYTES = 16 * 1024;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

const reloadStatus: Action<unknown, ReloadStatus> = {
  name: "reload status",
  method: "GET",
  path: "/status/reload",
  underStatus: true,
  header: null,
  param: null,
  body: false,
  waits: false,
  streams: false,
  timeoutMs: null,
  answers: [200],
  answerName: "an hb reload status",
  reply: (_arg, status) => ({ status: 200, body: status }),
  read(_arg, doc) {
    const reload = isRecord(doc) ? doc.reload : undefined;
    if (
      !isRecord(doc) ||
      typeof doc.pid !== "number" ||
      !isRecord(reload) ||
      typeof reload.generation !== "number" ||
      !(typeof reload.ok === "boolean" || reload.ok === null) ||
      !Array.isArray(reload.changes) ||
      !Array.isArray(reload.errors)
    )
      return undefined;
    return doc as unknown as ReloadStatus;
  },
};

const forget: Action<boolean, boolean> = {
  name: "forget",
  method: "POST",
  path: "/forget",
  underStatus: false,
  header: "x-hb-forget",
  param: { name: "node", what: "a node id" },
  body: false,
  waits: false,
  streams: false,
  timeoutMs: null,
  answers: [200, 404],
  answerName: "a forget outcome",
  reply: (node, forgotten) => ({ status: forgotten ? 200 : 404, body: { node, forgotten } }),
  read: (_node, body) => isRecord(body) && body.forgotten === true,
};

const notifyTest: Action<{ ok: boolean } | null, NotifyTestAnswer | null> = {
  name: "notify test",
  method: "POST",
  path: "/notify/test",
  underStatus: false,
  header: "x-hb-notify-test",
  param: { name: "output", what: "an output name" },
  body: false,
  waits: true,
  streams: false,
  timeoutMs: NOTIFY_TEST_TIMEOUT_MS,
  answers: [200, 404],
  answerName: "a notify test outcome",
  reply: (output, outcome) =>
    outcome === null
      ? { status: 404, body: { output, outcome: null } }
      : { status: 200, body: { output, ...outcome } },
  read(output, body) {
    if (!isRecord(body) || body.output !== output) return undefined;
    return body.outcome === null ? null : (body as unknown as NotifyTestAnswer);
  },
};

/** A maintenance window as `hb maint` shows it (src/policy/windows.ts's record, with its state). */
export interface MaintWindowView {
  readonly id: string;
  /** Selector texts: node ids, globs, label:KEY=VALUE. */
  readonly match: readonly string[];
  readonly author: string;
  readonly comment: string;
  /** Epoch ms. */
  readonly startsAt: number;
  readonly endsAt: number;
  readonly createdAt: number;
  /** When `hb maint end` ended it (epoch ms); null: it runs to `endsAt`. */
  readonly endedAt: number | null;
  /** The monitor that took the command. */
  readonly by: string;
  readonly state: "scheduled" | "active" | "ended" | "expired";
}

export interface RecurringWindowView {
  readonly name: string;
  readonly match: readonly string[];
  readonly schedule: string;
  readonly timezone: string;
  readonly state: "scheduled" | "active";
  /** The occurrence running now, or the next one (epoch ms). */
  readonly startsAt: number;
  readonly endsAt: number;
}

export interface MaintListAnswer {
  readonly now: number;
  readonly windows: readonly MaintWindowView[];
  readonly recurring: readonly RecurringWindowView[];
}

/** What a maintenance command made of a window, or why it refused. */
export type MaintAnswer =
  | { readonly ok: true; readonly window: MaintWindowView }
  | { readonly ok: false; readonly status: number; readonly error: string };

/** Why a maintenance command was refused: refused, no such window, it has ended, not kept. */
export type MaintRefusal = 400 | 404 | 409 | 507;

type MaintResult = { ok: true; window: unknown } | { ok: false; status: MaintRefusal; error: string };

const maintList: Action<unknown, MaintListAnswer> = {
  name: "maint list",
  method: "GET",
  path: "/maint",
  underStatus: false,
  header: null,
  param: null,
  body: false,
  waits: false,
  streams: false,
  timeoutMs: null,
  answers: [200],
  answerName: "a list of maintenance windows",
  reply: (_arg, list) => ({ status: 200, body: list }),
  read: (_arg, body) =>
    isRecord(body) && Array.isArray(body.windows) && Array.isArray(body.recurring)
      ? (body as unknown as MaintListAnswer)
      : undefined,
};

/** `hb maint add|extend|end`: a POST with a JSON body and the x-hb-maint header. */
function maintChange(verb: "add" | "extend" | "end"): Action<MaintResult, MaintAnswer> {
  return {
    name: `maint ${verb}`,
    method: "POST",
    path: `/maint/${verb}`,
    underStatus: false,
    header: "x-hb-maint",
    param: null,
    body: true,
    waits: false,
    streams: false,
    timeoutMs: null,
    answers: [200, 400, 404, 409, 507],
    answerName: `a maint ${verb} outcome`,
    reply: (_arg, result) =>
      result.ok
        ? { status: 200, body: { ok: true, window: result.window } }
        : { status: result.status, body: { ok: false, status: result.status, error: result.error } },
    read(_arg, body) {
      if (!isRecord(body)) return undefined;
      if (body.ok === true && isRecord(body.window) && typeof body.window.id === "string")
        return body as unknown as MaintAnswer;
      if (body.ok === false && typeof body.error === "string")
        return { ok: false, status: typeof body.status === "number" ? body.status : 400, error: body.error };
      return undefined;
    },
  };
}

/** `hb capture`: what the monitor is asked to record (POST /capture's JSON body). */
export interface CaptureRequest {
  readonly seconds: number;
  /** A node id or a glob over ids (selectors.ts); null: every node. */
  readonly node: string | null;
  /** The trace file's bound: the capture stops before the file would grow past it. */
  readonly maxBytes: number;
  /** Who asked, as the client says (the journal's audit trail); "unknown" when it does not. */
  readonly author: string;
}

export const MAX_CAPTURE_SECONDS = 86_400;
export const DEFAULT_CAPTURE_MAX_BYTES = 64 * 1024 ** 2;
/** Smaller could not hold a header and a few rows. */
export const MIN_CAPTURE_MAX_BYTES = 4096;
export const MAX_CAPTURE_MAX_BYTES = 1024 ** 4;
const MAX_AUTHOR_CHARS = 64;

/** Why a capture ended: its time was up, or it stopped early (the trace says so). */
export type CaptureEnd = "done" | "max_bytes" | "slow_reader" | "client_gone" | "monitor_stopping";
export const CAPTURE_ENDS: readonly CaptureEnd[] = [
  "done",
  "max_bytes",
  "slow_reader",
  "client_gone",
  "monitor_stopping",
];

/**
 * The capture's stream ends with this line: `# end REASON ROWS BYTES`. Before it comes the
 * trace's whole header, now that its end is known; what came before that is the stream's own
 * head (the start, the default interval) and the rows, as they were recorded.
 */
export const CAPTURE_END_MARKER = "# end";

export function formatCaptureEnd(reason: CaptureEnd, rows: number, bytes: number): string {
  return `${CAPTURE_END_MARKER} ${reason} ${rows} ${bytes}\n`;
}

export function parseCaptureEnd(line: string): { reason: CaptureEnd; rows: number; bytes: number } | null {
  const [marker, end, reason, rows, bytes, ...rest] = line.split(" ");
  if (`${marker} ${end}` !== CAPTURE_END_MARKER || rest.length > 0) return null;
  if (!CAPTURE_ENDS.includes(reason as CaptureEnd) || !/^\d+$/.test(rows ?? "") || !/^\d+$/.test(bytes ?? ""))
    return null;
  return { reason: reason as CaptureEnd, rows: Number(rows), bytes: Number(bytes) };
}

/** A capture request from a JSON body, or why it is not one (the 400's text). */
export function readCaptureRequest(body: unknown): CaptureRequest | string {
  if (!isRecord(body)) return "the body must be a JSON object";
  const { seconds, node = null, maxBytes = DEFAULT_CAPTURE_MAX_BYTES, author = "" } = body;
  if (
    typeof seconds !== "number" ||
    !Number.isInteger(seconds) ||
    seconds < 1 ||
    seconds > MAX_CAPTURE_SECONDS
  )
    return `seconds must be a whole number from 1 to ${MAX_CAPTURE_SECONDS}`;
  if (node !== null) {
    const selector = typeof node === "string" ? parseSelector(node) : "";
    if (typeof selector === "string" || selector.kind === "label")
      return "node must be a node id or a glob over ids (web-*, db-?), or null";
  }
  if (
    typeof maxBytes !== "number" ||
    !Number.isSafeInteger(maxBytes) ||
    maxBytes < MIN_CAPTURE_MAX_BYTES ||
    maxBytes > MAX_CAPTURE_MAX_BYTES
  )
    return `maxBytes must be a whole number of bytes from ${MIN_CAPTURE_MAX_BYTES} to ${MAX_CAPTURE_MAX_BYTES}`;
  if (typeof author !== "string" || author.length > MAX_AUTHOR_CHARS)
    return `author must be a name of at most ${MAX_AUTHOR_CHARS} characters`;
  return { seconds, node: node as string | null, maxBytes, author: author === "" ? "unknown" : author };
}

/** Why a capture was refused: a bad request, one runs already, the monitor is stopping. */
export type CaptureRefusal = 400 | 409 | 503;

/** What the monitor's handler makes of a capture request: its stream, or a refusal. */
type CaptureResult = { ok: true; body: unknown } | { ok: false; status: CaptureRefusal; error: string };

/** `hb capture`'s answer when it is not the stream (a 200 is read as it comes, not through `read`). */
export type CaptureAnswer = { readonly ok: false; readonly status: number; readonly error: string };

const capture: Action<CaptureResult, CaptureAnswer> = {
  name: "capture",
  method: "POST",
  path: "/capture",
  underStatus: false,
  header: "x-hb-capture",
  param: null,
  body: true,
  waits: true,
  streams: true,
  timeoutMs: null,
  answers: [200, 400, 409, 503],
  answerName: "a capture",
  reply: (_arg, result) =>
    result.ok
      ? { status: 200, body: result.body }
      : { status: result.status, body: { ok: false, status: result.status, error: result.error } },
  read: (_arg, body) =>
    isRecord(body) && body.ok === false && typeof body.error === "string"
      ? { ok: false, status: typeof body.status === "number" ? body.status : 400, error: body.error }
      : undefined,
};

/**
 * Every action, by the name of the status source's method that serves it (monitor/http.ts). A new
 * action is an entry here, its handler, its command and its row in docs/status.md.
 */
export const ACTIONS = {
  reloadStatus,
  forget,
  notifyTest,
  maintList,
  maintAdd: maintChange("add"),
  maintExtend: maintChange("extend"),
  maintEnd: maintChange("end"),
  capture,
} as const;

export type ActionName = keyof typeof ACTIONS;
export type ResultOf<K extends ActionName> = (typeof ACTIONS)[K] extends Action<infer R, unknown> ? R : never;
export type AnswerOf<K extends ActionName> = (typeof ACTIONS)[K] extends Action<never, infer A> ? A : never;
