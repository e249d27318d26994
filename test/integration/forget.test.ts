// `hb forget NODE` against a running monitor: a node held back by a forged high mark is heard
// again without a restart; an unknown node is exit 1; a browser-style request is refused.
import { createSocket } from "node:dgram";
import { afterAll, describe, expect, it } from "vitest";
import { Kind, encode } from "../../src/wire/protocol.js";
import { TempDir, runHb, sleep, startMonitor, type HbProcess } from "../support/hb-process.js";

const dir = new TempDir();
const started: HbProcess[] = [];
afterAll(async () => {
  await Promise.all(started.map((p) => p.stop()));
  dir.remove();
});

describe("hb forget", () => {
  it("clears one node's replay mark in the running monitor", async () => {
    const { monitor, port, statusUrl } = await startMonitor(dir.file("hb.yaml", `nodes: { a: {} }\n`));
    started.push(monitor);
    const socket = createSocket("udp4");
    const send = (incarnation: number, sequence: number): void =>
      socket.send(encode({ kind: Kind.BEAT, nodeId: "a", incarnation, sequence }), port, "127.0.0.1");
    const now = Date.now();
    send(now, 1); // the mark: incarnation `now`
    await monitor.waitFor("node.up", "a");
    send(now - 1000, 1); // an older incarnation: a replay, refused
    await sleep(300);
    const rejected = async (): Promise<number> =>
      (
        (await (await fetch(`${statusUrl}?nodes=0`)).json()) as {
          datagrams: { rejected: { replay: number } };
        }
      ).datagrams.rejected.replay;
    expect(await rejected()).toBe(1);

    const r = runHb(["forget", "a", "--url", statusUrl]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe("forgot a\n");
    await monitor.waitFor("node.forgotten", "a");
    send(now - 1000, 2); // the same older incarnation is a fresh start now
    await sleep(300);
    expect(await rejected()).toBe(1);
    expect(monitor.of("node.up", "a")).toHaveLength(2);

    expect(runHb(["forget", "nobody", "--url", statusUrl]).code).toBe(1);
    expect(runHb(["forget", "bad id!", "--url", statusUrl]).code).toBe(64);
    // What a web page could send: no hb header, an Origin. Refused, nothing forgotten.
    const forged = await fetch(`${statusUrl.replace("/status", "")}/forget?node=a`, {
      method: "POST",
      headers: { origin: "http://evil.example" },
    });
    expect(forged.status).toBe(403);
    expect(monitor.of("node.forgotten")).toHaveLength(1);
    socket.close();
  });
});
