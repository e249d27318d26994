// The client side of the monitor's status endpoint: where it is (a URL, a Unix socket, or the
// status address a config names), and fetching its documents with a timeout, a size limit and a
// clear error when it is not there or what answers is not an hb monitor; the operator's actions,
// as the table in src/actions.ts describes them.

import { request, type ClientRequest, type IncomingMessage } from "node:http";
import {
  ACTIONS,
  type Action,
  type ActionName,
  type AnswerOf,
  type NotifyTestAnswer,
  type ReloadStatus,
} from "../actions.js";
import { HbError } from "../errors.js";
import type { StatusDocument } from "../monitor/status.js";
import { formatHostPort } from "../wire/address.js";
import { flagOrEnv } from "./flags.js";

export const DEFAULT_STATUS_URL = "http://127.0.0.1:26723/status";
/** No progress for this long and the request is given up. */
const TIMEOUT_MS = 5000;
/** A million nodes is about 250 MB of JSON; anything far beyond is not a status document. */
const MAX_BODY_BYTES = 1024 * 1024 * 1024;

/** Where the endpoint is: a URL, and a Unix socket when it is reached through one. */
export interface StatusEndpoint {
  readonly url: URL;
  readonly socketPath?: string;
}

/** `--socket PATH` wins; `--url` may be http://… or unix:PATH. */
export function statusEndpoint(url: string, socketPath?: string): StatusEndpoint {
  if (socketPath === undefined && url.startsWith("unix:")) socketPath = url.slice("unix:".length);
  if (socketPath !== undefined) return { url: new URL("http://localhost/status"), socketPath };
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new HbError("HB_ERR_USAGE", `"${url}" is not a URL`);
  }
  if (parsed.protocol !== "http:") throw new HbError("HB_ERR_USAGE", `"${url}" is not an http:// URL`);
  return { url: parsed };
}

function describe(endpoint: StatusEndpoint): string {
  return endpoint.socketPath === undefined ? endpoint.url.href : `unix:${endpoint.socketPath}`;
}

interface CallOptions {
  method?: "GET" | "POST";
  headers?: Record<string, string>;
  /** Status codes whose JSON body is an answer, not a failure. */
  answers?: readonly number[];
  /** No progress for this long and the request is given up (default TIMEOUT_MS). */
  timeoutMs?: number;
  /** A JSON body. */
  body?: string;
  /** Aborts the request, and the response while it is read. */
  signal?: AbortSignal;
}

/**
 * Sends a request and hands its response to `then` when its status is one of `options.answers`
 * (default 200); any other status, no answer, or no progress for the timeout goes to
 * `unavailable` instead.
 */
function open(
  endpoint: StatusEndpoint,
  path: string,
  options: CallOptions,
  unavailable: (message: string, cause?: unknown) => void,
  then: (res: IncomingMessage, req: ClientRequest) => void,
): void {
  const where = describe(endpoint);
  const req = request(
    {
      ...(endpoint.socketPath === undefined
        ? { host: endpoint.url.hostname.replace(/^\[|\]$/g, ""), port: endpoint.url.port || 80 }
        : { socketPath: endpoint.socketPath }),
      path,
      method: options.method ?? "GET",
      headers: {
        host: endpoint.socketPath === undefined ? endpoint.url.host : "localhost",
        ...(options.body === undefined
          ? {}
          : {
              "content-type": "application/json",
              "content-length": String(Buffer.byteLength(options.body)),
            }),
        ...options.headers,
      },
      timeout: options.timeoutMs ?? TIMEOUT_MS,
      ...(options.signal === undefined ? {} : { signal: options.signal }),
    },
    (res) => {
      if (!(options.answers ?? [200]).includes(res.statusCode ?? 0)) {
        res.resume();
        return unavailable(`${where} answered ${res.statusCode}`);
      }
      then(res, req);
    },
  );
  req.on("timeout", () => req.destroy(new Error("ETIMEDOUT")));
  req.on("error", (err: NodeJS.ErrnoException) =>
    unavailable(`cannot reach the monitor at ${where}: ${err.code ?? err.message}`, err),
  );
  req.end(options.body);
}

function unavailableError(message: string, cause?: unknown): HbError {
  return new HbError("HB_ERR_STATUS_UNAVAILABLE", message, cause === undefined ? {} : { cause });
}

/** Reads a JSON answer of at most MAX_BODY_BYTES. */
function readJson(
  where: string,
  res: IncomingMessage,
  req: ClientRequest,
  resolve: (value: unknown) => void,
  unavailable: (message: string, cause?: unknown) => void,
): void {
  const chunks: Buffer[] = [];
  let bytes = 0;
  res.on("data", (chunk: Buffer) => {
    bytes += chunk.length;
    if (bytes > MAX_BODY_BYTES) {
      req.destroy();
      return unavailable(`${where} sent more than ${MAX_BODY_BYTES} bytes`);
    }
    chunks.push(chunk);
  });
  res.on("end", () => {
    try {
      resolve(JSON.parse(Buffer.concat(chunks).toString("utf8")));
    } catch (err) {
      unavailable(`${where} did not answer with JSON`, err);
    }
  });
  res.on("error", (err) => unavailable(`${where}: ${err.message}`, err));
}

function get(endpoint: StatusEndpoint, path: string, options: CallOptions = {}): Promise<unknown> {
  const where = describe(endpoint);
  return new Promise((resolve, reject) => {
    const unavailable = (message: string, cause?: unknown): void => reject(unavailableError(message, cause));
    open(endpoint, path, options, unavailable, (res, req) => readJson(where, res, req, resolve, unavailable));
  });
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Filters for `hb status`: the same as the endpoint's query parameters. */
export interface StatusFilters {
  state?: string;
  node?: string;
  limit?: string;
}

export async function fetchStatus(
  where: string | StatusEndpoint,
  filters: StatusFilters = {},
): Promise<StatusDocument> {
  const endpoint = typeof where === "string" ? statusEndpoint(where) : where;
  const params = new URLSearchParams(endpoint.url.search);
  for (const [name, value] of Object.entries(filters)) if (typeof value === "string") params.set(name, value);
  const query = params.toString();
  const doc = await get(endpoint, endpoint.url.pathname + (query === "" ? "" : `?${query}`));
  const counts = isRecord(doc) ? doc.counts : undefined;
  if (
    !isRecord(doc) ||
    !isRecord(counts) ||
    !Object.values(counts).every((n) => typeof n === "number") ||
    !Array.isArray(doc.nodes) ||
    !doc.nodes.every(isRecord)
  ) {
    throw new HbError(
      "HB_ERR_STATUS_UNAVAILABLE",
      `${describe(endpoint)} did not answer with an hb status document`,
    );
  }
  return doc as unknown as StatusDocument;
}

/**
 * Asks for one action of the table (src/actions.ts) with its argument, and reads the answer. A
 * POST carries the action's header, which no web page can add without the monitor's consent.
 */
export async function ask<K extends ActionName>(
  endpoint: StatusEndpoint,
  name: K,
  arg = "",
  body?: unknown,
): Promise<AnswerOf<K>> {
  const action: Action<never, AnswerOf<K>> = ACTIONS[name] as Action<never, AnswerOf<K>>;
  const base = endpoint.url.pathname.replace(/\/+$/, "");
  // An action under the status path is asked beside the document the endpoint names.
  const path = action.underStatus
    ? `${base === "" ? "/status" : base}${action.path.slice("/status".length)}`
    : action.path;
  const answer = action.read(
    arg,
    await get(
      endpoint,
      action.param === null ? path : `${path}?${action.param.name}=${encodeURIComponent(arg)}`,
      {
        method: action.method,
        headers: action.header === null ? {} : { [action.header]: "1" },
        answers: action.answers,
        ...(action.timeoutMs === null ? {} : { timeoutMs: action.timeoutMs }),
        ...(action.body ? { body: JSON.stringify(body ?? {}) } : {}),
      },
    ),
  );
  if (answer === undefined)
    throw new HbError(
      "HB_ERR_STATUS_UNAVAILABLE",
      `${describe(endpoint)} did not answer with ${action.answerName}`,
    );
  return answer;
}

/**
 * Asks for a streaming action (`hb capture`): the response to read as it comes when the monitor
 * answers 200, or the action's answer for its other codes (a refusal). `idleMs`: no byte for this
 * long and the request is given up; `signal` gives it up at once.
 */
export function askStream<K extends ActionName>(
  endpoint: StatusEndpoint,
  name: K,
  body: unknown,
  idleMs: number,
  signal?: AbortSignal,
): Promise<{ stream: IncomingMessage } | { answer: AnswerOf<K> }> {
  const action: Action<never, AnswerOf<K>> = ACTIONS[name] as Action<never, AnswerOf<K>>;
  const where = describe(endpoint);
  return new Promise((resolve, reject) => {
    const unavailable = (message: string, cause?: unknown): void => reject(unavailableError(message, cause));
    const options: CallOptions = {
      method: action.method,
      headers: action.header === null ? {} : { [action.header]: "1" },
      answers: action.answers,
      timeoutMs: idleMs,
      body: JSON.stringify(body ?? {}),
      ...(signal === undefined ? {} : { signal }),
    };
    open(endpoint, action.path, options, unavailable, (res, req) => {
      if (res.statusCode === 200) return resolve({ stream: res });
      readJson(
        where,
        res,
        req,
        (doc) => {
          const answer = action.read("", doc);
          if (answer === undefined) unavailable(`${where} did not answer with ${action.answerName}`);
          else resolve({ answer });
        },
        unavailable,
      );
    });
  });
}

/** The last reload's outcome, from the cheap `/status/reload` beside the status document. */
export function fetchReloadStatus(endpoint: StatusEndpoint): Promise<ReloadStatus> {
  return ask(endpoint, "reloadStatus");
}

/** The flags that say where the monitor's status endpoint is (shared by the commands that ask it). */
export const ENDPOINT_FLAGS = {
  url: { type: "string" },
  socket: { type: "string" },
  config: { type: "string" },
} as const;

/**
 * The endpoint the flags name: --socket, else --url (or HB_STATUS_SOCKET, HB_STATUS_URL), else
 * the one the --config file names, else `defaultConfig`'s, else the default URL. Null when the
 * config turns the endpoint off.
 */
export async function endpointFromFlags(
  values: Readonly<Record<string, string | boolean | string[] | undefined>>,
  env: Readonly<Record<string, string | undefined>>,
  defaultConfig?: string,
): Promise<StatusEndpoint | null> {
  const socket = flagOrEnv(values.socket, env, "HB_STATUS_SOCKET");
  const url = flagOrEnv(values.url, env, "HB_STATUS_URL");
  if (socket !== undefined || url !== undefined) return statusEndpoint(url ?? DEFAULT_STATUS_URL, socket);
  const config = typeof values.config === "string" ? values.config : defaultConfig;
  return config === undefined ? statusEndpoint(DEFAULT_STATUS_URL) : statusEndpointOf(config);
}

/** The status endpoint a config file names, or null when it turns the endpoint off. */
export async function statusEndpointOf(path: string): Promise<StatusEndpoint | null> {
  // Loaded here, not up front: `hb status --url` needs no YAML parser.
  const [{ readConfigText }, { parseConfig }] = await Promise.all([
    import("../config/load.js"),
    import("../config/parse.js"),
  ]);
  const parsed = parseConfig(await readConfigText(path), path);
  // A config that does not parse still has to be reloaded (and rejected) by the monitor; its
  // status endpoint is then the default one.
  if (!parsed.ok) return statusEndpoint(DEFAULT_STATUS_URL);
  const status = parsed.config.status;
  if (status === null) return null;
  return "path" in status
    ? statusEndpoint("", status.path)
    : statusEndpoint(`http://${formatHostPort(status)}/status`);
}

/** Asks the monitor to forget one node's replay mark and history (`hb forget`); false: no such node. */
export function forgetNode(endpoint: StatusEndpoint, node: string): Promise<boolean> {
  return ask(endpoint, "forget", node);
}

/** Asks the monitor to send a test notice through one output (`hb notify test`); null: no such output. */
export function notifyTest(endpoint: StatusEndpoint, output: string): Promise<NotifyTestAnswer | null> {
  return ask(endpoint, "notifyTest", output);
}
