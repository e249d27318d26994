import { mkdtempSync, rmSync, statSync } from "node:fs";
import { createServer, get, type IncomingMessage } from "node:http";
import { connect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { statusEndpoint, fetchStatus } from "../../src/cli/status-client.js";
import { StatusServer, type StatusSource } from "../../src/monitor/http.js";
import { MAX_REST_MS } from "../../src/wire/udp.js";
import type { StatusDocument } from "../../src/monitor/status.js";
import { FakeClock } from "../support/fake-clock.js";
import { Harness } from "../support/monitor-harness.js";

let h: Harness;
let server: StatusServer;
let port = 0;
let base = "";
const dir = mkdtempSync(join(tmpdir(), "hb-status-"));

beforeAll(async () => {
  h = await Harness.start(`nodes: { "n1": {}, "n2": {}, "n10": {}, "quiet": {}, "db": { paused: true } }\n`);
  for (const id of ["n1", "n2", "n10", "quiet"]) h.beat(id);
  h.clock.advance(6000); // every heard node is late now
  for (const id of ["n1", "n2", "n10"]) h.beat(id);
  h.clock.advance(1000);
  server = new StatusServer(h.monitor);
  const bound = await server.listen({ host: "127.0.0.1", port: 0 });
  port = Number(bound.split(":")[1]);
  base = `http://${bound}`;
});
afterAll(async () => {
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Sends raw bytes and returns the status line of the answer. */
function raw(request: string, to = port): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(to, "127.0.0.1");
    let answer = "";
    socket.on("data", (d) => (answer += d.toString()));
    socket.on("end", () => resolve(answer.split("\r\n")[0] ?? ""));
    socket.on("error", reject);
    socket.end(request);
  });
}

async function status(query = ""): Promise<StatusDocument> {
  const res = await fetch(`${base}/status${query}`);
  expect(res.status).toBe(200);
  return (await res.json()) as StatusDocument;
}

describe("the status endpoint", () => {
  it("answers GET /status with JSON, and HEAD without a body", async () => {
    const get = await fetch(`${base}/status`);
    expect(get.status).toBe(200);
    expect(get.headers.get("content-type")).toBe("application/json");
    expect(((await get.json()) as StatusDocument).counts).toEqual(h.monitor.counts());
    const head = await fetch(`${base}/status`, { method: "HEAD" });
    expect(head.status).toBe(200);
    expect(await head.text()).toBe("");
  });

  it("lists nodes in id order with numbers compared as numbers", async () => {
    expect((await status()).nodes.map((n) => n.node)).toEqual(["db", "n1", "n2", "n10", "quiet"]);
  });

  it("filters by state, node and limit, while the counts cover every node", async () => {
    const late = await status("?state=late");
    expect(late.nodes.map((n) => n.node)).toEqual(["quiet"]);
    expect(late.counts).toMatchObject({ up: 3, late: 1, paused: 1 });
    expect((await status("?state=late,paused")).nodes.map((n) => n.node)).toEqual(["db", "quiet"]);
    expect((await status("?node=n10")).nodes.map((n) => n.node)).toEqual(["n10"]);
    expect((await status("?node=n2,n1,nobody")).nodes.map((n) => n.node)).toEqual(["n1", "n2"]);
    expect((await status("?node=n10&state=late")).nodes).toEqual([]);
    expect((await status("?limit=2")).nodes.map((n) => n.node)).toEqual(["db", "n1"]);
    expect((await status("?state=up&limit=1")).nodes.map((n) => n.node)).toEqual(["n1"]);
    const none = await status("?nodes=0");
    expect(none.nodes).toEqual([]);
    expect(none.counts.up).toBe(3);
  });

  it("refuses a filter it does not understand with 400", async () => {
    expect((await fetch(`${base}/status?state=asleep`)).status).toBe(400);
    expect((await fetch(`${base}/status?limit=-1`)).status).toBe(400);
    expect((await fetch(`${base}/status?limit=lots`)).status).toBe(400);
  });

  it("answers GET /status/reload with the reload state and no node data", async () => {
    const res = await fetch(`${base}/status/reload`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as Record<string, unknown>;
    expect(Object.keys(body).sort()).toEqual(["pid", "reload", "version"]);
    expect(body.reload).toMatchObject({ generation: 0, ok: null });
  });

  it("gives a clean 4xx for unknown paths, other methods and request bodies, chunked or not", async () => {
    expect((await fetch(`${base}/admin`)).status).toBe(404);
    const post = await fetch(`${base}/status`, { method: "POST" });
    expect(post.status).toBe(405);
    expect(post.headers.get("allow")).toBe("GET, HEAD");
    expect((await fetch(`${base}/status`, { method: "DELETE" })).status).toBe(405);
    expect(
      await raw(
        "GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
      ),
    ).toBe("HTTP/1.1 413 Payload Too Large");
    expect(
      await raw(
        "GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
      ),
    ).toBe("HTTP/1.1 413 Payload Too Large");
  });

  it("refuses oversized headers and garbage with a 4xx, and keeps serving", async () => {
    expect(await raw(`GET /status HTTP/1.1\r\nHost: x\r\nX-Big: ${"a".repeat(20_000)}\r\n\r\n`)).toMatch(
      /^HTTP\/1\.1 431/,
    );
    expect(await raw("\x00\x01\x02 not http at all\r\n\r\n")).toMatch(/^HTTP\/1\.1 400/);
    expect((await fetch(`${base}/status`)).status).toBe(200);
  });

  it("refuses a Host header naming another host (DNS rebinding), and takes IPs and localhost", async () => {
    const ask = (host: string): Promise<string> =>
      raw(`GET /status?nodes=0 HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
    expect(await ask("attacker.example:26723")).toBe("HTTP/1.1 421 Misdirected Request");
    expect(await ask("127.0.0.1.nip.io")).toBe("HTTP/1.1 421 Misdirected Request");
    expect(await ask(`127.0.0.1:${port}`)).toBe("HTTP/1.1 200 OK");
    expect(await ask(`localhost:${port}`)).toBe("HTTP/1.1 200 OK");
    expect(await ask("[::1]:26723")).toBe("HTTP/1.1 200 OK");
  });
});

describe("connections", () => {
  function open(to: number): Promise<Socket> {
    return new Promise((resolve, reject) => {
      const socket = connect(to, "127.0.0.1", () => resolve(socket));
      socket.on("error", reject);
    });
  }
  const closed = (socket: Socket): Promise<void> =>
    new Promise((resolve) => (socket.destroyed ? resolve() : socket.once("close", () => resolve())));

  it("are capped: one past the cap is closed unanswered, and the endpoint serves again when they go", async () => {
    const capped = new StatusServer(h.monitor, undefined, { maxConnections: 3 });
    const at = Number((await capped.listen({ host: "127.0.0.1", port: 0 })).split(":")[1]);
    const held = await Promise.all([open(at), open(at), open(at)]);
    const extra = await open(at);
    let answer = "";
    extra.on("data", (d: Buffer) => (answer += d.toString()));
    extra.on("error", () => undefined);
    extra.write("GET /status?nodes=0 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    await closed(extra);
    expect(answer).toBe("");
    held.forEach((s) => s.destroy());
    await Promise.all(held.map(closed));
    // The server hears of the closes a moment later.
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(
      await raw("GET /status?nodes=0 HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", at),
    ).toBe("HTTP/1.1 200 OK");
    await capped.close();
  });

  it("that stay idle are closed", async () => {
    const idle = new StatusServer(h.monitor, undefined, { idleMs: 200 });
    const at = Number((await idle.listen({ host: "127.0.0.1", port: 0 })).split(":")[1]);
    const socket = await open(at);
    await closed(socket);
    await idle.close();
  });

  it("from a client that does not read buffer a bounded amount, then are dropped at the deadline", async () => {
    let pieces = 0;
    const PIECES = 10_000;
    const PIECE = "x".repeat(64 * 1024);
    const source: StatusSource = {
      statusBody: function* () {
        for (; pieces < PIECES; pieces++) yield PIECE;
      },
      reloadStatus: () => ({}),
    };
    const slow = new StatusServer(source, undefined, { responseDeadlineMs: 500 });
    const at = Number((await slow.listen({ host: "127.0.0.1", port: 0 })).split(":")[1]);
    const socket = await open(at);
    socket.pause(); // does not read until the deadline has passed
    socket.write("GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const made = pieces;
    let received = 0;
    socket.on("data", (chunk: Buffer) => (received += chunk.length));
    socket.on("error", () => undefined);
    socket.resume();
    await closed(socket);
    // 640 MB were on offer; what was made is what the kernel's socket buffers and a piece hold.
    expect(made).toBeGreaterThan(0);
    expect(made * PIECE.length).toBeLessThan(64 * 1024 * 1024);
    expect(pieces).toBe(made);
    expect(received).toBeLessThan(64 * 1024 * 1024);
    await slow.close();
  });
});

describe("a Unix socket status address", () => {
  it("is created with mode 0660, answers hb's client, and replaces a stale socket file", async () => {
    const path = join(dir, "status.sock");
    const stale = createServer();
    await new Promise<void>((resolve) => stale.listen(path, resolve));
    // A crash leaves the file behind: nothing listens on it any more.
    await new Promise<void>((resolve) => stale.close(() => resolve()));
    const unix = new StatusServer(h.monitor);
    expect(await unix.listen({ path })).toBe(`unix:${path}`);
    expect(statSync(path).mode & 0o777).toBe(0o660);
    const doc = await fetchStatus(statusEndpoint("", path), { state: "late" });
    expect(doc.nodes.map((n) => n.node)).toEqual(["quiet"]);
    const answer = await new Promise<IncomingMessage>((resolve) =>
      get({ socketPath: path, path: "/status/reload", headers: { host: "localhost" } }, resolve),
    );
    expect(answer.statusCode).toBe(200);
    answer.resume();
    await unix.close();
  });

  it("that another monitor is listening on is not taken over", async () => {
    const path = join(dir, "taken.sock");
    const first = new StatusServer(h.monitor);
    await first.listen({ path });
    const second = new StatusServer(h.monitor);
    await expect(second.listen({ path })).rejects.toMatchObject({ code: "HB_ERR_BIND" });
    expect((await fetchStatus(statusEndpoint("", path))).counts.up).toBe(3);
    await second.close();
    await first.close();
  });
});

describe("a status address that cannot be bound", () => {
  it("is reported and retried with backoff until it can be", async () => {
    const squatter = createServer();
    await new Promise<void>((resolve) => squatter.listen(0, "127.0.0.1", resolve));
    const taken = (squatter.address() as { port: number }).port;
    const clock = new FakeClock();
    const failures: number[] = [];
    let bound: string | null = null;
    const retrying = new StatusServer(h.monitor, undefined, { clock });
    const first = await retrying.serve(
      { host: "127.0.0.1", port: taken },
      (err, retryMs) => {
        expect(err.message).toContain("EADDRINUSE");
        failures.push(retryMs);
      },
      (address) => (bound = address),
    );
    expect(first).toBeNull();
    expect(failures).toEqual([1000]);
    clock.advance(1000);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(failures).toEqual([1000, 2000]);
    await new Promise<void>((resolve) => squatter.close(() => resolve()));
    clock.advance(2000);
    for (let i = 0; i < 50 && bound === null; i++) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(bound).toBe(`127.0.0.1:${taken}`);
    expect((await fetch(`http://127.0.0.1:${taken}/status?nodes=0`)).status).toBe(200);
    await retrying.close();
  });
});

describe("a socket that is never empty", () => {
  it("holds an answer back at most a bounded time per slice: a flood cannot stop /status", async () => {
    // Each piece of this body takes 3 ms, so the server rests after every one; every rest finds
    // the socket as full as ever (64 datagrams read per turn, forever).
    const slow: StatusSource = {
      *statusBody() {
        for (let i = 0; i < 3; i++) {
          const until = performance.now() + 3;
          while (performance.now() < until);
          yield `piece${i};`;
        }
      },
      reloadStatus: () => ({}),
    };
    let read = 0;
    const flooded = new StatusServer(slow, undefined, { datagramsRead: () => (read += 64) });
    const address = await flooded.listen({ host: "127.0.0.1", port: 0 });
    try {
      const t0 = performance.now();
      const body = await (
        await fetch(`http://${address}/status`, { signal: AbortSignal.timeout(10_000) })
      ).text();
      expect(body).toBe("piece0;piece1;piece2;");
      // Three rests of at most MAX_REST_MS each, and slack for a busy machine: held back for good,
      // the answer would not come before the client gives up (10 s).
      expect(performance.now() - t0).toBeLessThan(3 * MAX_REST_MS + 5000);
    } finally {
      await flooded.close();
    }
  });
});
