import { connect } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { StatusServer } from "../../src/monitor/http.js";

const server = new StatusServer({ status: () => ({ ok: true }) });
let base = "";
beforeAll(async () => {
  const bound = await server.listen({ host: "127.0.0.1", port: 0 });
  base = `http://127.0.0.1:${bound.port}`;
});
afterAll(() => server.close());

/** Sends raw bytes and returns the status line of the answer. */
function raw(request: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(Number(new URL(base).port), "127.0.0.1");
    let answer = "";
    socket.on("data", (d) => (answer += d.toString()));
    socket.on("end", () => resolve(answer.split("\r\n")[0] ?? ""));
    socket.on("error", reject);
    socket.end(request);
  });
}

describe("the status endpoint", () => {
  it("answers GET /status with JSON, and HEAD without a body", async () => {
    const get = await fetch(`${base}/status`);
    expect(get.status).toBe(200);
    expect(get.headers.get("content-type")).toBe("application/json");
    expect(await get.json()).toEqual({ ok: true });
    const head = await fetch(`${base}/status`, { method: "HEAD" });
    expect(head.status).toBe(200);
    expect(await head.text()).toBe("");
  });

  it("gives a clean 4xx for unknown paths, other methods and request bodies", async () => {
    expect((await fetch(`${base}/admin`)).status).toBe(404);
    const post = await fetch(`${base}/status`, { method: "POST" });
    expect(post.status).toBe(405);
    expect(post.headers.get("allow")).toBe("GET, HEAD");
    expect((await fetch(`${base}/status`, { method: "DELETE" })).status).toBe(405);
    expect(
      await raw("GET /status HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello"),
    ).toBe("HTTP/1.1 413 Payload Too Large");
  });

  it("refuses oversized headers and garbage with a 4xx, and keeps serving", async () => {
    expect(await raw(`GET /status HTTP/1.1\r\nHost: x\r\nX-Big: ${"a".repeat(20_000)}\r\n\r\n`)).toMatch(
      /^HTTP\/1\.1 431/,
    );
    expect(await raw("\x00\x01\x02 not http at all\r\n\r\n")).toMatch(/^HTTP\/1\.1 400/);
    expect((await fetch(`${base}/status`)).status).toBe(200);
  });
});
