// The monitor's HTTP status endpoint: GET /status returns the live view as JSON, GET /metrics
// the Prometheus metrics (`?nodes=0` leaves per-node data out of either). Loopback by default;
// anything but GET/HEAD of a known path gets a short 4xx, and request bodies are refused.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { HbError } from "../errors.js";
import { formatHostPort, type HostPort } from "../wire/address.js";

export interface StatusSource {
  status(options: { nodes: boolean }): unknown;
}

export interface MetricsRenderer {
  readonly contentType: string;
  render(perNode: boolean): Promise<string>;
}

function send(res: ServerResponse, code: number, body: string, type = "text/plain; charset=utf-8"): void {
  res.writeHead(code, {
    "content-type": type,
    "content-length": Buffer.byteLength(body),
    "cache-control": "no-store",
  });
  res.end(res.req.method === "HEAD" ? undefined : body);
}

export class StatusServer {
  private readonly server: Server;

  constructor(source: StatusSource, metrics?: MetricsRenderer) {
    this.server = createServer(
      { maxHeaderSize: 8192, requestTimeout: 5000, headersTimeout: 5000 },
      (req: IncomingMessage, res: ServerResponse) => {
        const [path, query = ""] = (req.url ?? "/").split("?");
        const known = path === "/status" || path === "/" || (path === "/metrics" && metrics !== undefined);
        if (!known) return send(res, 404, "not found\n");
        if (req.method !== "GET" && req.method !== "HEAD") {
          res.setHeader("allow", "GET, HEAD");
          return send(res, 405, "method not allowed\n");
        }
        if (req.headers["content-length"] !== undefined && req.headers["content-length"] !== "0") {
          return send(res, 413, "request bodies are not accepted\n");
        }
        const nodes = !new URLSearchParams(query).has("nodes", "0");
        if (path === "/metrics") {
          metrics!.render(nodes).then(
            (text) => send(res, 200, text, metrics!.contentType),
            () => send(res, 500, "metrics failed\n"),
          );
          return;
        }
        send(res, 200, JSON.stringify(source.status({ nodes })) + "\n", "application/json");
      },
    );
    this.server.keepAliveTimeout = 5000;
  }

  listen(address: HostPort): Promise<HostPort> {
    return new Promise((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException): void =>
        reject(
          new HbError("HB_ERR_BIND", `cannot listen on ${formatHostPort(address)}: ${err.code}`, {
            cause: err,
          }),
        );
      this.server.once("error", onError);
      this.server.listen(address.port, address.host, () => {
        this.server.off("error", onError);
        const bound = this.server.address();
        if (bound === null || typeof bound === "string")
          return reject(new Error("unexpected server address"));
        resolve({ host: bound.address, port: bound.port });
      });
    });
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
