// The node's sender on a fake clock and socket, with name resolution injected.
import { describe, expect, it } from "vitest";
import type { EventName } from "../../src/events.js";
import { RESOLVE_EVERY_MS, Sender } from "../../src/node/sender.js";
import { Kind, decode, emptyDatagram } from "../../src/wire/protocol.js";
import { FakeClock } from "../support/fake-clock.js";
import { FakeSocket } from "../support/fake-socket.js";

const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

function setup(dns: Map<string, string>) {
  const clock = new FakeClock();
  const socket = new FakeSocket();
  const events: EventName[] = [];
  let lookups = 0;
  const sender = new Sender(
    { nodeId: "n1", monitors: [{ host: "monitor.example", port: 26722 }], intervalMs: 1000, incarnation: 9 },
    {
      clock,
      socket: () => socket,
      emit: (event) => void events.push(event),
      resolve: (host) => {
        lookups++;
        const address = dns.get(host);
        return address === undefined ? Promise.reject(new Error("ENOTFOUND")) : Promise.resolve(address);
      },
    },
  );
  /** Runs the clock to `ms` from now, one beat at a time, letting each send settle. */
  const run = async (ms: number): Promise<void> => {
    for (let t = 0; t < ms; t += 1000) {
      clock.advance(1000);
      await settle();
    }
  };
  return { clock, socket, events, sender, run, lookups: () => lookups };
}

describe("the sender's monitor addresses", () => {
  it("sends to a monitor's new address once its name moves, without a lookup per beat", async () => {
    const dns = new Map([["monitor.example", "192.0.2.1"]]);
    const { socket, sender, run, lookups } = setup(dns);
    sender.start();
    await settle();
    await run(5000);
    expect(socket.sent.map((s) => s.to.host)).toEqual(Array(6).fill("192.0.2.1"));

    dns.set("monitor.example", "192.0.2.2");
    await run(RESOLVE_EVERY_MS + 1000);
    const last = socket.sent.slice(-3).map((s) => s.to);
    expect(last).toEqual(Array(3).fill({ host: "192.0.2.2", port: 26722 }));
    expect(socket.sent.length).toBe(6 + (RESOLVE_EVERY_MS + 1000) / 1000);
    expect(lookups()).toBeLessThanOrEqual(3);
    await sender.stop("test", false);
  });

  it("keeps sending to the last address while the name cannot be resolved", async () => {
    const dns = new Map([["monitor.example", "192.0.2.1"]]);
    const { socket, sender, run, events } = setup(dns);
    sender.start();
    await settle();
    dns.delete("monitor.example");
    await run(RESOLVE_EVERY_MS + 5000);
    expect(socket.sent.length).toBe(1 + (RESOLVE_EVERY_MS + 5000) / 1000);
    expect(new Set(socket.sent.map((s) => s.to.host))).toEqual(new Set(["192.0.2.1"]));
    expect(events).not.toContain("sender.failed");
    await sender.stop("test", false);
  });

  it("looks the name up again after a failed send", async () => {
    const dns = new Map([["monitor.example", "192.0.2.1"]]);
    const { socket, sender, run, events, lookups } = setup(dns);
    sender.start();
    await settle();
    socket.failSends = Object.assign(new Error("unreachable"), { code: "ENETUNREACH" });
    dns.set("monitor.example", "192.0.2.2");
    await run(1000);
    expect(events).toContain("sender.failed");
    socket.failSends = undefined;
    await run(1000);
    expect(socket.sent.at(-1)!.to.host).toBe("192.0.2.2");
    expect(lookups()).toBe(2);
    await sender.stop("test", false);
  });
});

describe("unnumbered senders", () => {
  it("flag their datagrams unnumbered and start at the given sequence", async () => {
    const clock = new FakeClock();
    const socket = new FakeSocket();
    const sender = new Sender(
      {
        nodeId: "cron-1",
        monitors: [{ host: "127.0.0.1", port: 26722 }],
        intervalMs: 1000,
        incarnation: 0,
        unnumbered: true,
      },
      { clock, socket: () => socket, emit: () => undefined },
    );
    sender.startSequenceAt(clock.wallMs());
    await sender.sendAll(Kind.BEAT);
    const dg = emptyDatagram();
    expect(decode(socket.sent[0]!.msg, dg)).toBeNull();
    expect(dg).toMatchObject({ incarnation: 0, sequence: clock.wallMs(), unnumbered: true });
  });
});
