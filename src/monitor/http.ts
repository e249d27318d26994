// The monitor's HTTP status endpoint, on a loopback port or a Unix socket: GET /status (the live
// view as JSON, with filters), GET /metrics, and the operator's actions of src/actions.ts (the
// reload status that `hb reload` polls, forget, notify test, `hb maint`'s list and changes and
// `hb capture`, the only requests with a body: a JSON object of at most 16 KiB). Bodies
// are written a piece at a time, with a turn of the event loop between slices of work and a wait
// for `drain` when the client reads slowly, so no request delays the UDP socket for long and a
// client that does not read costs a bounded buffer, then its connection. A capture's stream is
// written by its own writer (monitor/capture.ts), which bounds what it holds the same way.
// Connections are capped, idle ones closed, and a Host header that names a foreign host (DNS
// rebinding) is refused.

import { chmod, unlink } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { connect, isIP } from "node:net";
import { systemClock, type Clock, type Timer } from "../clock.js";
import { formatStatusAddress, type StatusAddress } from "../config/types.js";
import {
  ACTION_ID,
  ACTIONS,
  MAX_ACTION_BODY_BYTES,
  type Action,
  type ActionName,
  type ResultOf,
} from "../actions.js";
import { HbError } from "../errors.js";
import type { HostPort } from "../wire/address.js";
import { untilSocketEmpty } from "../wire/udp.js";
import { parseNodeQuery, type NodeQuery } from "./status.js";

export interface StatusSource {
  /** The status document for `query`, as JSON pieces ("" = give the event loop a turn). */
  statusBody(query: NodeQuery): Iterator<string, void>;
  /** The last reload's outcome, with the pid and version, and no node data. */
  reloadStatus(): unknown;
  /** `hb forget`: clears one node's replay mark and history; false when it is unknown. */
  forget?(node: string): boolean;
  /** `hb notify test`: the outcome of a test notice through one output; null when there is none. */
  notifyTest?(output: string): Promise<{ ok: boolean } | null>;
  /** `hb maint`: the windows, and the commands that change them (a JSON body each). */
  maintList?(): unknown;
  maintAdd?(arg: string, body: unknown): Promise<ResultOf<"maintAdd">>;
  maintExtend?(arg: string, body: unknown): Promise<ResultOf<"maintExtend">>;
  maintEnd?(arg: string, body: unknown): Promise<ResultOf<"maintEnd">>;
  /** `hb capture`: a StreamedBody that records and writes the trace, or a refusal. */
  capture?(arg: string, body: unknown): ResultOf<"capture">;
}

/** Where a streamed body goes: the response, as much of it as the body's writer needs. */
export interface BodyOut {
  /** False when the client's buffer is full: wait for `onDrain` before writing more. */
  write(text: string): boolean;
  end(): void;
  /** Drops the connection: a client that stopped reading. */
  destroy(): void;
  onDrain(listener: () => void): void;
  /** The connection closed before end(): the client went away. */
  onClose(listener: () => void): void;
}

/** A body written as it comes, for as long as it takes (`hb capture`'s trace). */
export interface StreamedBody {
  readonly contentType: string;
  start(out: BodyOut): void;
}

/** The source's handler for each action of the table (an absent one: the path is not served). */
type Handlers = {
  readonly [K in ActionName]?: (arg: string, body: unknown) => ResultOf<K> | Promise<ResultOf<K>>;
};

/** The documents: what is neither an action nor unknown. */
const DOCUMENTS = ["/status", "/", "/metrics"];
/** Every route the server answers, with its methods (what the documentation lists). */
export const ROUTES: readonly { readonly path: string; readonly methods: readonly string[] }[] = [
  ...DOCUMENTS.map((path) => ({ path, methods: ["GET", "HEAD"] })),
  ...Object.values(ACTIONS).map((a) => ({
    path: a.path,
    methods: a.method === "GET" ? ["GET", "HEAD"] : [a.method],
  })),
];
const ACTION_AT: ReadonlyMap<string, ActionName> = new Map(
  (Object.keys(ACTIONS) as ActionName[]).map((name) => [ACTIONS[name].path, name]),
);

export interface MetricsRenderer {
  readonly contentType: string;
  body(perNode: boolean): Promise<Iterator<string, void>>;
}

export interface StatusServerOptions {
  clock?: Clock;
  maxConnections?: number;
  /** How long one response may take before its connection is dropped. */
  responseDeadlineMs?: number;
  /** A connection idle (no request, or a response the client stopped reading) this long is closed. */
  idleMs?: number;
  /** Datagrams read from the heartbeat socket so far: between slices, answering waits for it. */
  datagramsRead?: () => number;
}

export const MAX_CONNECTIONS = 64;
/** Work done between two rests while a body is written. */
const SLICE_MS = 2;
// After each slice of work the server rests a turn at a time until a turn reads fewer than
// READS_PER_TURN datagrams: the socket is empty, whatever the fleet's rate. Bodies are written one
// at a time, so four clients asking back to back cost what one does.
const RESPONSE_DEADLINE_MS = 60_000;
/** A connection with no request, or no progress writing one, for this long is closed. */
const IDLE_MS = 10_000;
const HEADERS_TIMEOUT_MS = 5000;
/** Bind retries start here and double up to the maximum. */
const FIRST_RETRY_MS = 1000;
const MAX_RETRY_MS = 60_000;
const SOCKET_MODE = 0o660;

function send(res: ServerResponse, code: number, body: string, type = "text/plain; charset=utf-8"): void {
  res.writeHead(code, {
    "content-type": type,
    "content-length": Buffer.byteLength(body),
    "cache-control": "no-store",
  });
  res.end(res.req.method === "HEAD" ? undefined : body);
}

/** A body refused: 413, and the connection closed (what the client still sends is not read). */
function refuseBody(res: ServerResponse, text: string): void {
  res.shouldKeepAlive = false;
  send(res, 413, text);
}

/** False when the request has a body (sized or chunked), and answered so: only `hb maint` takes one. */
function bodiless(req: IncomingMessage, res: ServerResponse): boolean {
  const length = req.headers["content-length"];
  if ((length === undefined || length === "0") && req.headers["transfer-encoding"] === undefined) return true;
  refuseBody(res, "request bodies are not accepted\n");
  return false;
}

/** The host a Host header names, without its port. */
function hostOf(header: string): string {
  if (header.startsWith("[")) return header.slice(1, header.indexOf("]"));
  const colon = header.lastIndexOf(":");
  return (colon < 0 ? header : header.slice(0, colon)).toLowerCase();
}

export class StatusServer {
  private readonly server: Server;
  private readonly clock: Clock;
  private readonly responseDeadlineMs: number;
  private configuredHost: string | null = null;
  private retry: Timer | undefined;
  private closed = false;
  /** Bodies are written one at a time: each waits for the one before it. */
  private queue: Promise<void> = Promise.resolve();
  private readonly datagramsRead: () => number;
  /** The source, seen as the table's handlers. */
  private readonly handlers: Handlers;

  constructor(
    private readonly source: StatusSource,
    private readonly metrics?: MetricsRenderer,
    options: StatusServerOptions = {},
  ) {
    this.handlers = source;
    this.clock = options.clock ?? systemClock;
    this.responseDeadlineMs = options.responseDeadlineMs ?? RESPONSE_DEADLINE_MS;
    this.datagramsRead = options.datagramsRead ?? (() => 0);
    this.server = createServer(
      { maxHeaderSize: 8192, requestTimeout: HEADERS_TIMEOUT_MS, headersTimeout: HEADERS_TIMEOUT_MS },
      (req, res) => this.answer(req, res),
    );
    this.server.keepAliveTimeout = HEADERS_TIMEOUT_MS;
    this.server.maxConnections = options.maxConnections ?? MAX_CONNECTIONS;
    // Inactivity on a socket, including a response the client stopped reading.
    this.server.timeout = options.idleMs ?? IDLE_MS;
  }

  private answer(req: IncomingMessage, res: ServerResponse): void {
    const host = req.headers.host;
    if (host !== undefined && !this.allowedHost(hostOf(host))) return send(res, 421, "unknown host\n");
    const [path = "/", query = ""] = (req.url ?? "/").split("?");
    const action = ACTION_AT.get(path);
    if (action !== undefined && this.handlers[action] !== undefined) return this.act(req, res, action, query);
    const known = DOCUMENTS.includes(path) && (path !== "/metrics" || this.metrics !== undefined);
    if (!known) return send(res, 404, "not found\n");
    if (!this.acceptable(req, res, "GET") || !bodiless(req, res)) return;
    const params = new URLSearchParams(query);
    if (path === "/metrics") {
      this.metrics!.body(!params.getAll("nodes").includes("0")).then(
        (body) => this.stream(res, this.metrics!.contentType, body),
        () => send(res, 500, "metrics failed\n"),
      );
      return;
    }
    const nodeQuery = parseNodeQuery(params);
    if (typeof nodeQuery === "string") return send(res, 400, `${nodeQuery}\n`);
    this.stream(res, "application/json", this.source.statusBody(nodeQuery));
  }

  /** The method is `method` (or HEAD for GET) and there is no body; false when refused, and answered so. */
  private acceptable(req: IncomingMessage, res: ServerResponse, method: "GET" | "POST"): boolean {
    if (method === "GET" ? req.method !== "GET" && req.method !== "HEAD" : req.method !== method) {
      res.setHeader("allow", method === "GET" ? "GET, HEAD" : method);
      send(res, 405, "method not allowed\n");
      return false;
    }
    return true;
  }

  /** One action of the table: its method, header (and no Origin), body (or none), argument; then its handler. */
  private act(req: IncomingMessage, res: ServerResponse, name: ActionName, query: string): void {
    // Each handler's result goes to its own action's reply (Handlers ties the two by name).
    const action: Action<unknown, unknown> = ACTIONS[name];
    if (!this.acceptable(req, res, action.method)) return;
    if (
      action.header !== null &&
      (req.headers[action.header] === undefined || req.headers.origin !== undefined)
    )
      return send(res, 403, `${action.name} needs the ${action.header} header, and no Origin\n`);
    if (action.body) return void this.readBody(req, res, (body) => this.run(res, name, query, body));
    if (!bodiless(req, res)) return;
    this.run(res, name, query, undefined);
  }

  /** Reads a JSON object of at most MAX_ACTION_BODY_BYTES; anything else is answered 4xx here. */
  private readBody(req: IncomingMessage, res: ServerResponse, then: (body: unknown) => void): void {
    const type = req.headers["content-type"] ?? "";
    if (!type.startsWith("application/json")) return send(res, 415, "the body must be application/json\n");
    const tooLarge = `the body is larger than ${MAX_ACTION_BODY_BYTES} bytes\n`;
    if (Number(req.headers["content-length"] ?? "0") > MAX_ACTION_BODY_BYTES)
      return refuseBody(res, tooLarge);
    const chunks: Buffer[] = [];
    let bytes = 0;
    let refused = false;
    req.on("data", (chunk: Buffer) => {
      bytes += chunk.length;
      if (bytes > MAX_ACTION_BODY_BYTES && !refused) {
        refused = true;
        refuseBody(res, tooLarge);
        req.destroy();
      }
      if (!refused) chunks.push(chunk);
    });
    req.on("end", () => {
      if (refused) return;
      let body: unknown;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString("utf8"));
      } catch {
        return send(res, 400, "the body is not JSON\n");
      }
      then(body);
    });
  }

  private run(res: ServerResponse, name: ActionName, query: string, body: unknown): void {
    const action: Action<unknown, unknown> = ACTIONS[name];
    let arg = "";
    if (action.param !== null) {
      arg = new URLSearchParams(query).get(action.param.name) ?? "";
      if (!ACTION_ID.test(arg)) return send(res, 400, `${action.param.name}: not ${action.param.what}\n`);
    }
    const answer = (result: unknown): void => {
      const reply = action.reply(arg, result);
      if (action.streams && reply.status === 200) return this.pipe(res, reply.body as StreamedBody);
      send(res, reply.status, JSON.stringify(reply.body) + "\n", "application/json");
    };
    // A hook may run for its whole timeout: waiting for it is not an idle connection.
    if (action.waits) res.socket?.setTimeout(0);
    const result = this.handlers[name]!.call(this.source, arg, body);
    if (!(result instanceof Promise)) return answer(result);
    result.then(answer, () => send(res, 500, `${action.name} failed\n`));
  }

  /** Loopback and IP literals, `localhost` and the configured host: a page elsewhere cannot rebind to us. */
  private allowedHost(host: string): boolean {
    return isIP(host) !== 0 || host === "localhost" || host === this.configuredHost;
  }

  /**
   * A streamed body, on its connection alone (not queued behind the documents: it may last a
   * day), which closes after it. The body's writer decides when a client reads too slowly.
   */
  private pipe(res: ServerResponse, body: StreamedBody): void {
    res.shouldKeepAlive = false;
    res.writeHead(200, { "content-type": body.contentType, "cache-control": "no-store" });
    res.socket?.setTimeout(0);
    body.start({
      write: (text) => res.write(text),
      end: () => res.end(),
      destroy: () => res.destroy(),
      onDrain: (listener) => void res.once("drain", listener),
      onClose: (listener) =>
        void res.once("close", () => {
          if (!res.writableEnded) listener();
        }),
    });
  }

  private stream(res: ServerResponse, type: string, body: Iterator<string, void>): void {
    res.writeHead(200, { "content-type": type, "cache-control": "no-store" });
    if (res.req.method === "HEAD") {
      res.end();
      return;
    }
    // Waiting for its turn is not idling: the connection's inactivity timeout starts with it.
    res.socket?.setTimeout(0);
    const turn = this.queue.then(() => {
      res.socket?.setTimeout(this.server.timeout);
      return this.write(res, body);
    });
    this.queue = turn.catch(() => undefined);
  }

  private async write(res: ServerResponse, body: Iterator<string, void>): Promise<void> {
    const clock = this.clock;
    const deadline = clock.monoMs() + this.responseDeadlineMs;
    let sliceStart = clock.monoMs();
    try {
      for (let piece = body.next(); piece.done !== true; piece = body.next()) {
        if (res.destroyed) return;
        if (piece.value.length > 0 && !res.write(piece.value)) {
          if (!(await this.drained(res, deadline - clock.monoMs()))) {
            res.destroy();
            return;
          }
        }
        // A 'drain' can come within the same poll phase, again and again while the client keeps
        // up: only setImmediate is a full turn of the loop (timers, then every socket read).
        if (clock.monoMs() - sliceStart >= SLICE_MS) {
          await untilSocketEmpty(
            () => new Promise((resolve) => clock.setImmediate(resolve)),
            this.datagramsRead,
            () => clock.monoMs(),
          );
          sliceStart = clock.monoMs();
        }
        if (clock.monoMs() > deadline) {
          res.destroy();
          return;
        }
      }
      res.end();
    } catch {
      res.destroy();
    }
  }

  /** True once `res` can take more; false if it closed or did not drain within `withinMs`. */
  private drained(res: ServerResponse, withinMs: number): Promise<boolean> {
    return new Promise((resolve) => {
      const done = (ok: boolean): void => {
        res.off("drain", onDrain);
        res.off("close", onClose);
        this.clock.clearTimeout(timer);
        resolve(ok);
      };
      const onDrain = (): void => done(true);
      const onClose = (): void => done(false);
      const timer = this.clock.setTimeout(() => done(false), Math.max(0, withinMs));
      res.on("drain", onDrain);
      res.on("close", onClose);
    });
  }

  /** Binds `address` once; a Unix socket gets mode 0660, and a stale one left by a crash is replaced. */
  async listen(address: StatusAddress): Promise<string> {
    if ("path" in address) {
      try {
        await this.bind(address.path);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "EADDRINUSE" || !(await isStale(address.path))) throw err;
        await unlink(address.path).catch(() => undefined);
        await this.bind(address.path);
      }
      await chmod(address.path, SOCKET_MODE);
      return formatStatusAddress(address);
    }
    this.configuredHost = address.host.toLowerCase();
    await this.bind(address);
    const bound = this.server.address();
    if (bound === null || typeof bound === "string") throw new Error("unexpected server address");
    return formatStatusAddress({ host: bound.address, port: bound.port });
  }

  private bind(address: HostPort | string): Promise<void> {
    return new Promise((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException): void =>
        reject(
          new HbError(
            "HB_ERR_BIND",
            `cannot listen on ${typeof address === "string" ? `unix:${address}` : formatStatusAddress(address)}: ${err.code}`,
            { cause: err },
          ),
        );
      this.server.once("error", onError);
      const listening = (): void => {
        this.server.off("error", onError);
        resolve();
      };
      if (typeof address === "string") this.server.listen(address, listening);
      else this.server.listen(address.port, address.host, listening);
    });
  }

  /**
   * Binds `address`, and while that fails tells `onFailure` and tries again with backoff: the
   * endpoint is a convenience, detection goes on without it. Resolves with the bound address, or
   * null when the first attempt failed (then `onBound` hears of a later success).
   */
  async serve(
    address: StatusAddress,
    onFailure: (err: Error, retryMs: number) => void,
    onBound: (bound: string) => void = () => undefined,
  ): Promise<string | null> {
    const attempt = async (retryMs: number): Promise<string | null> => {
      try {
        return await this.listen(address);
      } catch (err) {
        if (this.closed) return null;
        onFailure(err as Error, retryMs);
        this.retry = this.clock.setTimeout(() => {
          this.retry = undefined;
          void attempt(Math.min(MAX_RETRY_MS, retryMs * 2)).then((bound) => {
            if (bound !== null) onBound(bound);
          });
        }, retryMs);
        return null;
      }
    };
    return attempt(FIRST_RETRY_MS);
  }

  close(): Promise<void> {
    this.closed = true;
    if (this.retry !== undefined) this.clock.clearTimeout(this.retry);
    this.server.closeAllConnections();
    if (!this.server.listening) return Promise.resolve();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

/** True when nothing answers on the Unix socket at `path` (a socket file a crash left behind). */
function isStale(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = connect(path);
    probe.once("connect", () => {
      probe.destroy();
      resolve(false);
    });
    probe.once("error", (err: NodeJS.ErrnoException) => resolve(err.code === "ECONNREFUSED"));
  });
}
