// The design a user might build instead: an HTTP heartbeat endpoint. `http` is the well-known
// node:http example (POST /heartbeat with {"id"}: remember when it arrived); `express` is the
// same endpoint on Express with express.json(). Prints its port.
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";

const mode = process.argv[2] ?? "http";
const lastSeen = new Map<string, number>();
let count = 0;

if (mode === "express") {
  const { default: express } = await import("express");
  const app = express();
  app.use(express.json());
  app.post("/heartbeat", (req, res) => {
    const id = (req.body as { id?: unknown }).id;
    if (typeof id !== "string") return void res.status(400).end();
    lastSeen.set(id, Date.now());
    count++;
    res.status(204).end();
  });
  const server = app.listen(0, "127.0.0.1", () =>
    process.stdout.write(`${JSON.stringify({ port: (server.address() as AddressInfo).port })}\n`),
  );
  server.keepAliveTimeout = 60_000;
} else {
  const server = createServer((req, res) => {
    if (req.method !== "POST" || req.url !== "/heartbeat") {
      res.statusCode = 404;
      return res.end();
    }
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (chunk: string) => (body += chunk));
    req.on("end", () => {
      try {
        const { id } = JSON.parse(body) as { id?: unknown };
        if (typeof id !== "string") throw new Error("no id");
        lastSeen.set(id, Date.now());
        count++;
        res.statusCode = 204;
      } catch {
        res.statusCode = 400;
      }
      res.end();
    });
  });
  server.keepAliveTimeout = 60_000;
  server.listen(0, "127.0.0.1", () =>
    process.stdout.write(`${JSON.stringify({ port: (server.address() as AddressInfo).port })}\n`),
  );
}
process.stdin.on("data", () => process.stdout.write(`${JSON.stringify({ count })}\n`));
