// `hb node` whose stdout does not drain (journald paused, a full pipe) keeps beating: its event
// lines wait in memory, never in front of a heartbeat, and a SIGTERM still sends `leave` before
// the lines are written. Its stdout here is a FIFO, blocking as systemd gives it, filled to the
// brim before the node starts, so that its very first line cannot be written.
import { spawn, type ChildProcess } from "node:child_process";
import { createSocket } from "node:dgram";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Kind, decode, emptyDatagram, nodeIdOf } from "../../src/wire/protocol.js";
import { stalledFifo } from "../support/fifo.js";
import { HB_BIN, sleep } from "../support/hb-process.js";

/** Stands in for a monitor: what the node sends arrives here. */
const received: { kind: number; node: string }[] = [];
const socket = createSocket("udp4").on("message", (msg) => {
  const dg = emptyDatagram();
  if (decode(msg, dg) === null) received.push({ kind: dg.kind, node: nodeIdOf(dg) });
});
const fifo = stalledFifo();
const children: ChildProcess[] = [];
beforeAll(() => new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", resolve)));
afterAll(() => {
  children.forEach((c) => c.exitCode === null && c.signalCode === null && c.kill("SIGKILL"));
  fifo.cleanup();
  socket.close();
});

const FILLER = '{"filler":true}\n';

describe("hb node with a stdout that does not drain", () => {
  it("keeps sending a heartbeat every interval, and its leave on SIGTERM, while its first line waits", async () => {
    fifo.fill(FILLER);
    const monitor = `127.0.0.1:${socket.address().port}`;
    const args = [HB_BIN, "node", "--id", "blocked-1", "--monitor", monitor, "--interval", "50ms"];
    const node = spawn(process.execPath, args, { stdio: ["ignore", fifo.writer, "pipe"] });
    children.push(node);
    fifo.closeWriter(); // the node has its own
    let stderr = "";
    node.stderr!.on("data", (chunk: Buffer) => void (stderr += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => node.once("exit", resolve));

    for (let i = 0; i < 200 && received.length < 20; i++) await sleep(50);
    expect(received.length, stderr).toBeGreaterThanOrEqual(20);
    expect(received.every((d) => d.kind === Kind.BEAT && d.node === "blocked-1")).toBe(true);

    node.kill("SIGTERM");
    for (let i = 0; i < 100 && !received.some((d) => d.kind === Kind.LEAVE); i++) await sleep(50);
    expect(received.at(-1)).toEqual({ kind: Kind.LEAVE, node: "blocked-1" });

    // The reader comes back: every line is there, after what filled the pipe, and the node exits.
    let text = "";
    let code: number | null | undefined;
    void exited.then((c) => (code = c));
    while (code === undefined) {
      text += fifo.readAll();
      await sleep(10);
    }
    text += fifo.readAll();
    expect(code, stderr).toBe(0);
    const events = text
      .split("\n")
      .filter((l) => l !== "" && l !== FILLER.trim())
      .map((l) => (JSON.parse(l) as { event: string }).event);
    expect(events).toEqual(["sender.started", "sender.stopping"]);
  });
});
