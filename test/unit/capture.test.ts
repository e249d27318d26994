// `hb capture` in the monitor, on a fake clock and socket: the trace holds exactly the arrival
// times the detector was given for the datagrams it accepted (not the refused ones, not the
// peers'), in order; the glob filter is decided once per node; the file, and what a slow reader
// makes the monitor hold, are bounded, and a bound ends the capture with a marker, never with a
// row left out of the middle; one capture at a time; the client's going away, the monitor's
// stop, its own stalls and a reload's held datagrams are in the trace. Capture events never page.
import { createSecretKey } from "node:crypto";
import { describe, expect, it } from "vitest";
import { parseConfig } from "../../src/config/parse.js";
import { rowText, type CaptureLimits } from "../../src/monitor/capture.js";
import { askStream, statusEndpoint } from "../../src/cli/status-client.js";
import { StatusServer } from "../../src/monitor/http.js";
import { Monitor } from "../../src/monitor/monitor.js";
import { Recorder } from "../../src/monitor/recorder.js";
import { wanted } from "../../src/notify/notices.js";
import { Kind, emptyDatagram, encode, type SigningKey } from "../../src/wire/protocol.js";
import { formatRow } from "../../src/wire/trace.js";
import type { CaptureOut } from "../support/capture-out.js";
import { capturedFile, startOn } from "../support/capture-out.js";
import { FakeClock } from "../support/fake-clock.js";
import { FakeSocket } from "../support/fake-socket.js";
import { prng } from "../support/prng.js";
import { TEST_KEY, config, type Recorded } from "../support/monitor-harness.js";

const KC: SigningKey = { id: "kc", secret: createSecretKey(Buffer.from("cluster-secret-0123456789abcdef!")) };

/** A monitor on a fake clock and socket, with the capture's limits a test sets. */
class Site {
  readonly clock = new FakeClock();
  readonly socket = new FakeSocket();
  readonly events: Recorded[] = [];
  readonly monitor: Monitor;
  /** Every datagram the monitor took in, as [node, arrival]. */
  readonly accepted: [string, number][] = [];
  private readonly seqs = new Map<string, number>();

  constructor(yaml: string, limits: Partial<CaptureLimits> = {}, keyring = new Map<string, KeyObject>()) {
    this.monitor = new Monitor(
      { config: config(yaml), keyring },
      {
        clock: this.clock,
        socket: this.socket,
        emit: (event, fields) => this.events.push({ event, t: this.clock.monoMs(), ...fields } as Recorded),
        captureLimits: limits,
      },
    );
  }

  static async start(yaml: string, limits: Partial<CaptureLimits> = {}, keyring?: Map<string, KeyObject>) {
    const site = new Site(yaml, limits, keyring);
    await site.monitor.listen();
    return site;
  }

  /** A heartbeat of `node` now; noted as accepted when the monitor's count of accepted ones grew. */
  beat(node: string, key?: SigningKey): Buffer {
    const sequence = (this.seqs.get(node) ?? 0) + 1;
    this.seqs.set(node, sequence);
    const msg = encode({ kind: Kind.BEAT, nodeId: node, incarnation: 1, sequence }, key);
    this.deliver(msg, node);
    return msg;
  }

  deliver(msg: Buffer, node: string): void {
    const before = this.monitor.datagramCounters().accepted;
    this.socket.deliver(msg);
    if (this.monitor.datagramCounters().accepted > before) this.accepted.push([node, this.clock.monoMs()]);
  }

  capture(body: Record<string, unknown>): CaptureOut {
    return startOn(this.monitor.capture("", body));
  }

  of(event: string): Record<string, unknown>[] {
    return this.events.filter((e) => e.event === event);
  }
}
type KeyObject = SigningKey["secret"];

const MiB = 1024 * 1024;

/** A config listing `n` nodes: large enough that a reload of it takes several turns of the loop. */
function listed(n: number): string {
  const lines = ["defaults: { interval: 1s }", "nodes:"];
  for (let i = 0; i < n; i++) lines.push(`  n${i}: {}`);
  return lines.join("\n") + "\n";
}

describe("a capture", () => {
  it("holds exactly the arrival time the detector was given for each datagram it accepted, in order", async () => {
    const site = await Site.start(
      "defaults: { interval: 1s }\nnodes: { a: {}, b: { interval: 500ms }, c: {} }\nunknown_nodes: accept\n",
    );
    site.beat("a"); // before the capture: not in it
    site.clock.advance(10);
    const out = site.capture({ seconds: 10, maxBytes: MiB });
    const startMs = site.clock.monoMs();
    site.accepted.length = 0;
    for (let i = 0; i < 40; i++) {
      site.clock.advance(123.25);
      const a = site.beat("a");
      site.clock.advance(0.5);
      site.beat("b");
      site.deliver(a, "a"); // a replay: refused
      site.deliver(Buffer.from("not a heartbeat"), "?"); // refused
      if (i % 7 === 0) site.beat("new-1"); // an unlisted node, accepted
    }
    site.clock.advance(10_000);
    const captured = capturedFile(out.text);
    expect(out.ended).toBe(true);
    expect(site.monitor.datagramCounters().rejected).toMatchObject({ replay: 40, bad_magic: 40 });
    expect(captured.rows).toEqual(site.accepted);
    expect(captured.rows.length).toBe(86);
    expect(captured.trace.startMs).toBe(startMs);
    expect(captured.trace.endMs).toBe(startMs + 10_000);
    expect(captured.trace.intervalMs).toBe(1000);
    expect([...captured.trace.intervals]).toEqual([["b", 500]]);
    expect(captured.notes).toEqual([]);
    expect(captured.end).toEqual({ reason: "done", rows: 86, bytes: captured.file.length });
    expect(site.of("capture.started")).toMatchObject([
      { seconds: 10, node: null, maxBytes: MiB, author: "unknown" },
    ]);
    expect(site.of("capture.ended")).toMatchObject([
      { reason: "done", rows: 86, nodes: 3, bytes: captured.file.length, capturedMs: 10_000 },
    ]);
    // After its end, nothing more is recorded, and another capture may run.
    const written = out.text;
    site.beat("a");
    site.clock.advance(1000);
    expect(out.text).toBe(written);
    expect(site.monitor.capture("", { seconds: 1 }).ok).toBe(true);
  });

  it("leaves out the other monitors' heartbeats", async () => {
    const site = await Site.start(
      [
        "keys: { k1: /x, kc: /y }",
        "auth: optional",
        "defaults: { interval: 100ms, timeout: 1s }",
        "nodes: { n1: {} }",
        "cluster:",
        "  self: mon-a",
        '  monitors: { mon-a: "127.0.0.1:1", mon-b: "127.0.0.1:2" }',
        "  interval: 100ms",
        "  timeout: 500ms",
        "  key: kc",
      ].join("\n"),
      {},
      new Map([
        [TEST_KEY.id, TEST_KEY.secret],
        [KC.id, KC.secret],
      ]),
    );
    const out = site.capture({ seconds: 2, maxBytes: MiB });
    site.accepted.length = 0;
    for (let i = 0; i < 10; i++) {
      site.beat("mon-b", KC);
      site.beat("n1");
      site.clock.advance(100);
    }
    site.clock.advance(2000);
    // The peer's heartbeats were taken in (it is up), and are not in the trace.
    expect(site.of("peer.up")).toMatchObject([{ peer: "mon-b" }]);
    expect(site.monitor.datagramCounters()).toMatchObject({ received: 20, accepted: 10, rejected: {} });
    expect(capturedFile(out.text).rows).toEqual(site.accepted);
    expect(capturedFile(out.text).trace.nodes).toEqual(["n1"]);
  });

  it("takes only the nodes its glob matches", async () => {
    const site = await Site.start("defaults: { interval: 1s }\n");
    const out = site.capture({ seconds: 5, node: "web-?", maxBytes: MiB });
    site.accepted.length = 0;
    for (let i = 0; i < 5; i++) {
      for (const node of ["web-1", "web-22", "db-1", "web-3"]) site.beat(node);
      site.clock.advance(200);
    }
    site.monitor.forget("web-1"); // its slot may go to another node
    site.beat("db-2");
    site.beat("web-1");
    site.clock.advance(5000);
    const captured = capturedFile(out.text);
    expect(captured.rows).toEqual(site.accepted.filter(([node]) => /^web-.$/.test(node)));
    expect(captured.trace.nodes).toEqual(["web-1", "web-3"]);
    expect(site.of("capture.ended")).toMatchObject([{ node: "web-?", rows: 11, nodes: 2 }]);
  });

  it("stops at the file's bound: the file within it, its end at the first row left out, and said", async () => {
    const site = await Site.start("defaults: { interval: 1s }\n");
    const maxBytes = 4096;
    const out = site.capture({ seconds: 60, maxBytes });
    site.accepted.length = 0;
    for (let i = 0; i < 2000; i++) {
      site.beat(`node-${i % 50}`);
      site.clock.advance(i % 10 === 0 ? 150 : 0.125);
    }
    site.clock.advance(1000);
    const captured = capturedFile(out.text);
    expect(out.ended).toBe(true);
    expect(captured.notes).toEqual(["truncated max_bytes"]);
    expect(captured.file.length).toBeLessThanOrEqual(maxBytes);
    expect(captured.file.length).toBeGreaterThan(maxBytes - 64);
    const kept = captured.rows.length;
    expect(captured.rows).toEqual(site.accepted.slice(0, kept));
    expect(captured.trace.endMs).toBe(site.accepted[kept]![1]);
    expect(site.of("capture.ended")).toMatchObject([
      { reason: "max_bytes", rows: kept, bytes: captured.file.length },
    ]);
  });

  it("stops when a slow reader lets rows pile up past the bound, and then writes every row it kept", async () => {
    const site = await Site.start("defaults: { interval: 1s }\n", { maxHeldRows: 300 });
    const out = site.capture({ seconds: 60, maxBytes: MiB });
    site.accepted.length = 0;
    site.clock.advance(100); // the first rows are written, and the client stops reading
    out.full = true;
    for (let i = 0; i < 1000; i++) {
      site.beat(`n${i % 20}`);
      if (i % 50 === 0) site.clock.advance(100);
    }
    out.drain();
    site.clock.advance(1000);
    const captured = capturedFile(out.text);
    const kept = captured.rows.length;
    expect(captured.notes).toEqual(["truncated slow_reader"]);
    expect(captured.rows).toEqual(site.accepted.slice(0, kept));
    expect(kept).toBeLessThan(1000);
    expect(captured.trace.endMs).toBe(site.accepted[kept]![1]);
    expect(site.of("capture.ended")).toMatchObject([{ reason: "slow_reader", rows: kept }]);
  });

  it("drops a client that takes nothing after the end, and lets the next capture run", async () => {
    const site = await Site.start("defaults: { interval: 1s }\n", { drainMs: 5000 });
    const out = site.capture({ seconds: 1, maxBytes: MiB });
    out.full = true;
    site.beat("a");
    site.clock.advance(1000);
    expect(site.monitor.capture("", { seconds: 1 })).toMatchObject({ ok: false, status: 409 });
    site.clock.advance(5000);
    expect(out.destroyed).toBe(true);
    expect(out.ended).toBe(false);
    expect(site.of("capture.ended")).toMatchObject([{ reason: "slow_reader" }]);
    expect(site.monitor.capture("", { seconds: 1 }).ok).toBe(true);
  });

  it("runs one at a time, refuses a bad request, and ends when its client goes away", async () => {
    const site = await Site.start("defaults: { interval: 1s }\n");
    const out = site.capture({ seconds: 30, node: "web-*" });
    const second = site.monitor.capture("", { seconds: 30 });
    expect(second).toMatchObject({ ok: false, status: 409 });
    expect(!second.ok && second.error).toMatch(/one at a time/);
    for (const body of [
      {},
      { seconds: 0 },
      { seconds: 86_401 },
      { seconds: 1.5 },
      { seconds: 1, node: "label:team=x" },
      { seconds: 1, node: "a b" },
      { seconds: 1, maxBytes: 10 },
      { seconds: 1, author: 7 },
      [],
    ])
      expect(site.monitor.capture("", body), JSON.stringify(body)).toMatchObject({ ok: false, status: 400 });
    site.beat("web-1");
    site.clock.advance(200);
    out.close();
    expect(site.of("capture.ended")).toMatchObject([{ reason: "client_gone", rows: 1 }]);
    site.beat("web-1");
    site.clock.advance(30_000);
    expect(out.text).not.toContain("# end");
    expect(site.monitor.capture("", { seconds: 1 }).ok).toBe(true);
  });

  it("ends with what it recorded when the monitor stops, and is refused after", async () => {
    const site = await Site.start("defaults: { interval: 1s }\n");
    const out = site.capture({ seconds: 600 });
    site.accepted.length = 0;
    site.beat("a");
    site.clock.advance(250);
    site.beat("b");
    const stoppedAt = site.clock.monoMs();
    const closed = site.monitor.close();
    site.clock.advance(0);
    await closed;
    const captured = capturedFile(out.text);
    expect(captured.notes).toEqual(["truncated monitor_stopping"]);
    expect(captured.rows).toEqual(site.accepted);
    expect(captured.trace.endMs).toBe(stoppedAt);
    expect(site.monitor.capture("", { seconds: 1 })).toMatchObject({ ok: false, status: 503 });
  });

  it("records what a reload held back, at its arrival, once it is taken in", async () => {
    const yaml = listed(20_000);
    const site = await Site.start(yaml);
    const out = site.capture({ seconds: 5 });
    const sent: [string, number][] = [];
    let held = 0;
    const pause = (): Promise<void> => {
      site.clock.advance(5);
      const before = site.monitor.datagramCounters().accepted;
      site.beat("n1");
      sent.push(["n1", site.clock.monoMs()]);
      if (site.monitor.datagramCounters().accepted === before) held++;
      return Promise.resolve();
    };
    await site.monitor.reloadInTurns(
      { config: config(yaml + "  extra: {}\n"), keyring: new Map() },
      pause,
      0,
    );
    site.clock.advance(5000);
    expect(held).toBeGreaterThan(0);
    expect(capturedFile(out.text).rows).toEqual(sent);
  });

  it("ends at the first datagram a reload still holds when its time runs out", async () => {
    const yaml = listed(20_000);
    const site = await Site.start(yaml);
    const out = site.capture({ seconds: 1 });
    const startMs = site.clock.monoMs();
    const sent: [string, number][] = [];
    let firstHeld: number | null = null;
    const pause = (): Promise<void> => {
      site.clock.advance(5);
      const before = site.monitor.datagramCounters().accepted;
      site.beat("n1");
      sent.push(["n1", site.clock.monoMs()]);
      // A turn while the new config is applied: the datagram is held back, and the capture's
      // time runs out before it is taken in.
      if (firstHeld === null && site.monitor.datagramCounters().accepted === before) {
        firstHeld = site.clock.monoMs();
        site.clock.advance(2000);
      }
      return Promise.resolve();
    };
    await site.monitor.reloadInTurns(
      { config: config(yaml + "  extra: {}\n"), keyring: new Map() },
      pause,
      0,
    );
    site.clock.advance(1000);
    const captured = capturedFile(out.text);
    expect(firstHeld).not.toBeNull();
    expect(firstHeld!).toBeLessThan(startMs + 1000);
    expect(captured.trace.endMs).toBe(firstHeld);
    // Taken in before the end: what came in while the reload was staged, at its own arrival.
    expect(captured.rows).toEqual(sent.filter(([, at]) => at < firstHeld!));
    expect(captured.rows.length).toBeGreaterThan(1);
  });

  it("notes the monitor's stalls: from the deadline its timer was armed for to when it ran", async () => {
    const site = await Site.start("defaults: { interval: 1s }\nnodes: { a: {} }\n");
    const out = site.capture({ seconds: 60 });
    site.beat("a"); // late at +5 s: the timer is armed for then
    const deadline = site.clock.monoMs() + 5000;
    site.clock.advance(1000);
    site.clock.freeze(10_000);
    const ranAt = site.clock.monoMs(); // the timer runs as soon as the loop does
    site.clock.advance(1);
    expect(site.of("monitor.stalled")).toHaveLength(1);
    site.clock.advance(60_000);
    expect(capturedFile(out.text).trace.stalls).toEqual([[deadline, ranAt]]);
  });
});

describe("POST /capture", () => {
  it("wants its header and no Origin, a JSON body, one capture at a time; streams the trace; ends when the client goes", async () => {
    const site = await Site.start("defaults: { interval: 1s }\n");
    const server = new StatusServer(site.monitor);
    const bound = await server.listen({ host: "127.0.0.1", port: 0 });
    try {
      const post = (headers: Record<string, string>, body = '{"seconds": 1}') =>
        fetch(`http://${bound}/capture`, { method: "POST", headers, body });
      expect((await post({ "content-type": "application/json" })).status).toBe(403);
      expect(
        (
          await post({
            "content-type": "application/json",
            "x-hb-capture": "1",
            origin: "http://evil.example",
          })
        ).status,
      ).toBe(403);
      expect((await post({ "x-hb-capture": "1", "content-type": "text/plain" })).status).toBe(415);
      const refused = await post(
        { "x-hb-capture": "1", "content-type": "application/json" },
        '{"seconds": 0}',
      );
      expect(refused.status).toBe(400);
      expect(await refused.json()).toMatchObject({ ok: false, status: 400 });
      expect((await fetch(`http://${bound}/capture`)).status).toBe(405);

      const endpoint = statusEndpoint(`http://${bound}/status`);
      const reply = await askStream(endpoint, "capture", { seconds: 1, maxBytes: MiB }, 10_000);
      if (!("stream" in reply)) throw new Error(`refused: ${JSON.stringify(reply)}`);
      expect(reply.stream.headers["content-type"]).toBe("text/plain; charset=utf-8");
      const second = await askStream(endpoint, "capture", { seconds: 1 }, 10_000);
      expect(second).toMatchObject({ answer: { ok: false, status: 409 } });
      site.accepted.length = 0;
      site.beat("a");
      site.clock.advance(300);
      site.beat("b");
      site.clock.advance(1000);
      let text = "";
      for await (const chunk of reply.stream) text += String(chunk);
      expect(capturedFile(text).rows).toEqual(site.accepted);

      const gone = await askStream(endpoint, "capture", { seconds: 60 }, 10_000);
      if (!("stream" in gone)) throw new Error(`refused: ${JSON.stringify(gone)}`);
      gone.stream.destroy();
      // The server hears of it on a later turn of the loop.
      while (site.of("capture.ended").length < 2) await new Promise((resolve) => setTimeout(resolve, 10));
      expect(site.of("capture.ended")[1]).toMatchObject({ reason: "client_gone" });
    } finally {
      await server.close();
    }
  });
});

describe("the recorder", () => {
  it("decides once per node whether the glob takes it, again when a slot holds another node", () => {
    const ids: (string | undefined)[] = ["a1", "b1"];
    const asked: string[] = [];
    const dg = emptyDatagram();
    let slot = 0;
    const recorder = new Recorder(0, {
      slotOf: () => slot,
      idAt: (s) => ids[s],
      match: (id) => (asked.push(id), id.startsWith("a")),
      maxRows: 1000,
      onChunk: () => undefined,
      onFull: () => undefined,
    });
    for (let i = 0; i < 100; i++) {
      slot = i % 2;
      recorder.accepted(dg, i);
    }
    ids[0] = "b2";
    slot = 0;
    recorder.accepted(dg, 100);
    expect(asked).toEqual(["a1", "b1", "b2"]);
    const rows: [string, number][] = [];
    recorder.take(1000, (id, at) => (rows.push([id, at]), true));
    expect(rows).toHaveLength(50);
    expect(rows.every(([id]) => id === "a1")).toBe(true);
  });
});

describe("the capture's rows", () => {
  it("are written exactly as the trace format writes them", () => {
    const random = prng(7);
    const times = [0, 0.0004, 0.0005, 1, 999.9995, 1000, 1234.5, 2 ** 31 + 0.125, 3.2e10 + 0.001, 4e12, 1e16];
    for (let i = 0; i < 20_000; i++) times.push(random() * 10 ** Math.floor(random() * 12));
    for (const at of times) expect(rowText("web-1", at), String(at)).toBe(formatRow("web-1", at));
  });
});

describe("capture events", () => {
  it("never page, and an output cannot be made to carry them", () => {
    for (const event of ["capture.started", "capture.ended"]) {
      expect(wanted(null, event, {})).toBe(false);
      expect(wanted(new Set([event]), event, {})).toBe(false);
    }
    const parsed = parseConfig(
      "notify:\n  - { name: x, exec: [/bin/true], on: [capture.ended] }\n",
      "hb.yaml",
    );
    expect(!parsed.ok && parsed.problems.map((p) => p.message)).toEqual([
      'notify.x.on: "capture.ended": an operator\'s capture is never a notice (see the journal)',
    ]);
  });
});
