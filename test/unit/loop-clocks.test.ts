// The clocks the monitor runs on in a replay (VirtualClock) and in the tests that model
// production (FakeClock with `pollPhase`) turn as Node's event loop does: the timers due at an
// instant, then the I/O ready by then (the poll phase), then the immediates queued before it;
// an immediate queued by an immediate runs in the next turn, after that turn's I/O.
import { describe, expect, it } from "vitest";
import { VirtualClock } from "../../src/evidence/virtual-clock.js";
import { READS_PER_TURN } from "../../src/wire/udp.js";
import { FakeClock } from "../support/fake-clock.js";

interface LoopClock {
  setTimeout(callback: () => void, delayMs: number): unknown;
  setImmediate(callback: () => void): void;
  advanceTo(targetMs: number): void;
  io(atMs: number, callback: () => void): void;
  stall(toMs: number): void;
}

/** A VirtualClock whose poll phase reads I/O scheduled as with FakeClock.io() (here in order of readiness). */
function virtual(): LoopClock {
  const clock = new VirtualClock(0);
  const ready: { at: number; callback: () => void }[] = [];
  clock.setPollSource({
    nextMs: () => ready[0]?.at ?? Number.POSITIVE_INFINITY,
    read: (nowMs) => {
      while (ready[0] !== undefined && ready[0].at <= nowMs) ready.shift()!.callback();
    },
  });
  return {
    setTimeout: (callback, delayMs) => clock.setTimeout(callback, delayMs),
    setImmediate: (callback) => clock.setImmediate(callback),
    advanceTo: (targetMs) => clock.advanceTo(targetMs),
    io: (at, callback) => void ready.push({ at, callback }),
    stall: (toMs) => clock.freezeTo(toMs),
  };
}

function fake(): LoopClock {
  const clock = new FakeClock(0, { pollPhase: true });
  return {
    setTimeout: (callback, delayMs) => clock.setTimeout(callback, delayMs),
    setImmediate: (callback) => clock.setImmediate(callback),
    advanceTo: (targetMs) => clock.advanceTo(targetMs),
    io: (at, callback) => clock.io(at, callback),
    stall: (toMs) => clock.freeze(toMs - clock.monoMs()),
  };
}

describe.each([
  ["VirtualClock", virtual],
  ["FakeClock with pollPhase", fake],
])("%s", (_, make) => {
  it("reads the I/O of a timer's instant after the timer and before the immediate it queued", () => {
    const clock = make();
    const log: string[] = [];
    clock.setTimeout(() => {
      log.push("timer");
      clock.setImmediate(() => {
        log.push("immediate");
        clock.setImmediate(() => log.push("immediate of the immediate"));
      });
    }, 100);
    clock.io(50, () => log.push("io at 50"));
    clock.io(100, () => log.push("io at 100"));
    clock.advanceTo(200);
    expect(log).toEqual(["io at 50", "timer", "io at 100", "immediate", "immediate of the immediate"]);
  });

  it("after a stall, fires the timers that fell due, then reads what queued up, then runs their immediates", () => {
    const clock = make();
    const log: string[] = [];
    for (const at of [100, 300])
      clock.setTimeout(() => {
        log.push(`timer ${at}`);
        clock.setImmediate(() => log.push(`immediate of ${at}`));
      }, at);
    clock.io(200, () => log.push("io at 200"));
    clock.io(400, () => log.push("io at 400"));
    clock.advanceTo(50);
    clock.stall(400);
    clock.advanceTo(400);
    expect(log).toEqual([
      "timer 100",
      "timer 300",
      "io at 200",
      "io at 400",
      "immediate of 100",
      "immediate of 300",
    ]);
  });
});

describe("the poll phase and node:dgram's reads per turn", () => {
  function drain(clock: LoopClock): string[] {
    const log: string[] = [];
    for (let i = 0; i < READS_PER_TURN + 8; i++) clock.io(100, () => log.push("read"));
    clock.setTimeout(() => clock.setImmediate(() => log.push("check")), 100);
    clock.advanceTo(100);
    return log;
  }

  it("in FakeClock reads at most READS_PER_TURN a turn, as node:dgram does: the rest after the check phase", () => {
    const log = drain(fake());
    expect(log.indexOf("check")).toBe(READS_PER_TURN);
    expect(log.length).toBe(READS_PER_TURN + 9);
  });

  it("in VirtualClock reads all that is ready at once (a judge that turns until a turn reads fewer takes in the same)", () => {
    const log = drain(virtual());
    expect(log.indexOf("check")).toBe(READS_PER_TURN + 8);
  });
});
