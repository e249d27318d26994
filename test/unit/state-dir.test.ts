import * as fs from "node:fs/promises";
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { HbError } from "../../src/errors.js";
import { ReplayMarks, type ReplayMark } from "../../src/monitor/replay-marks.js";
import { StateDir, type StateFs } from "../../src/monitor/state-dir.js";
import type { EventFields } from "../../src/events.js";
import { FakeClock } from "../support/fake-clock.js";
import { config } from "../support/monitor-harness.js";

const root = mkdtempSync(join(tmpdir(), "hb-state-dir-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

let dirs = 0;
const freshDir = (): string => join(root, `d${dirs++}`);
const SPEC = { name: "things", what: "the things", ifRemoved: "they are forgotten" };

/** The real file system, with calls counted and, if asked, one of them failing. */
function countingFs(failRename = false): StateFs & { renames: number; opens: string[] } {
  const counted = {
    renames: 0,
    opens: [] as string[],
    mkdir: fs.mkdir,
    readFile: fs.readFile,
    open: ((path: string, ...rest: []) => {
      counted.opens.push(path);
      return fs.open(path, ...rest);
    }) as typeof fs.open,
    rename: (async (from: string, to: string) => {
      counted.renames++;
      if (failRename) throw Object.assign(new Error("no space left on device"), { code: "ENOSPC" });
      return fs.rename(from, to);
    }) as typeof fs.rename,
  };
  return counted;
}

describe("the state directory", () => {
  it("loads a file that is not there as none, and creates the directory on the first save", async () => {
    const dir = freshDir();
    const file = new StateDir(dir).file(SPEC);
    expect(await file.load()).toBeNull();
    await file.save(() => "one\n");
    expect(readFileSync(join(dir, "things"), "utf8")).toBe("one\n");
    expect(await file.load()).toBe("one\n");
  });

  it("writes through a temporary file in the same directory, synced and renamed, with mode 0600", async () => {
    const dir = freshDir();
    const counted = countingFs();
    const file = new StateDir(dir, counted).file(SPEC);
    await file.save(() => "text\n");
    expect(counted.opens).toEqual([join(dir, "things.tmp"), dir]);
    expect(counted.renames).toBe(1);
    expect(readdirSync(dir)).toEqual(["things"]);
    expect((await fs.stat(join(dir, "things"))).mode & 0o777).toBe(0o600);
  });

  it("leaves the old file whole when a save fails before its rename", async () => {
    const dir = freshDir();
    await new StateDir(dir).file(SPEC).save(() => "old\n");
    const failing = new StateDir(dir, countingFs(true)).file(SPEC);
    await expect(failing.save(() => "new\n")).rejects.toThrow("no space left on device");
    expect(await new StateDir(dir).file(SPEC).load()).toBe("old\n");
  });

  it("never reads a temporary file that a crash left behind", async () => {
    const dir = freshDir();
    mkdirSync(dir);
    writeFileSync(join(dir, "things"), "whole\n");
    writeFileSync(join(dir, "things.tmp"), "half wri");
    const file = new StateDir(dir).file(SPEC);
    expect(await file.load()).toBe("whole\n");
    await file.save(() => "next\n");
    expect(await file.load()).toBe("next\n");
    expect(readdirSync(dir)).toEqual(["things"]);
  });

  it("reports a file it cannot read as HB_ERR_STATE_FILE (exit 66), naming it and what removing it costs", async () => {
    const dir = freshDir();
    mkdirSync(join(dir, "things"), { recursive: true }); // a directory where the file should be
    const err = await new StateDir(dir)
      .file(SPEC)
      .load()
      .then(
        () => null,
        (e: unknown) => e,
      );
    expect(err).toBeInstanceOf(HbError);
    expect((err as HbError).code).toBe("HB_ERR_STATE_FILE");
    expect((err as HbError).exitCode).toBe(66);
    expect((err as HbError).message).toContain("the things");
    expect((err as HbError).message).toContain(join(dir, "things"));
    expect((err as HbError).message).toContain("they are forgotten");
  });

  it("coalesces saves asked for while one is under way into one more, which writes the latest text", async () => {
    const dir = freshDir();
    const counted = countingFs();
    const file = new StateDir(dir, counted).file(SPEC);
    let state = "a";
    const render = (): string => `${state}\n`;
    const first = file.save(render);
    // The first write has not begun yet: these share it.
    state = "b";
    const same = file.save(render);
    expect(same).toBe(first);
    await Promise.resolve();
    await Promise.resolve();
    // Under way now: the next asks share one more write.
    state = "c";
    const second = file.save(render);
    state = "d";
    const third = file.save(render);
    state = "e";
    expect(third).toBe(second);
    await Promise.all([first, second, third]);
    expect(counted.renames).toBe(2);
    expect(await file.load()).toBe("e\n");
  });

  it("goes on saving after a failed save", async () => {
    const dir = freshDir();
    let fail = true;
    const real = countingFs();
    const flaky: StateFs = {
      ...real,
      rename: ((from: string, to: string) =>
        fail ? Promise.reject(new Error("EIO")) : fs.rename(from, to)) as typeof fs.rename,
    };
    const file = new StateDir(dir, flaky).file(SPEC);
    await expect(file.save(() => "lost\n")).rejects.toThrow("EIO");
    fail = false;
    await file.save(() => "kept\n");
    expect(await file.load()).toBe("kept\n");
  });

  it("hands out one file per name, so that saves from different owners are coalesced too", () => {
    const state = new StateDir(freshDir());
    expect(state.file(SPEC)).toBe(state.file({ ...SPEC }));
  });
});

describe("the replay marks in the state directory", () => {
  const holder = (marks: [string, ReplayMark][] = []) => ({
    restored: [] as [string, ReplayMark][],
    marks: () => marks,
    restoreMarks(these: Iterable<[string, ReplayMark]>) {
      this.restored.push(...these);
    },
  });
  const mark = (incarnation: number, sequence: number): ReplayMark => ({
    incarnation,
    sequence,
    signed: true,
    left: false,
  });
  const signed = config(`auth: optional\nkeys: { k1: /dev/null }`);

  it("are kept only when datagrams are signed, though the state directory is there either way", () => {
    const deps = { clock: new FakeClock(), emit: () => {}, nodes: holder(), peers: null };
    const state = new StateDir(freshDir());
    expect(ReplayMarks.keep(state, config(""), { ...deps, config: () => config("") })).toBeNull();
    expect(ReplayMarks.keep(state, signed, { ...deps, config: () => signed })).not.toBeNull();
    expect(ReplayMarks.keep(null, signed, { ...deps, config: () => signed })).toBeNull();
  });

  it("are saved and taken up again by the next run", async () => {
    const dir = freshDir();
    const before = holder([["a", mark(7, 3)]]);
    const deps = { clock: new FakeClock(), emit: () => {}, config: () => signed, peers: null };
    await ReplayMarks.keep(new StateDir(dir), signed, { ...deps, nodes: before })!.close();
    const after = holder();
    await ReplayMarks.keep(new StateDir(dir), signed, { ...deps, nodes: after })!.load();
    expect(after.restored).toEqual([["a", mark(7, 3)]]);
  });

  it("warn once per failed write, however many saves shared it", async () => {
    const warnings: EventFields["monitor.warning"][] = [];
    const broken = new StateDir(freshDir(), countingFs(true));
    const marks = ReplayMarks.keep(broken, signed, {
      clock: new FakeClock(),
      emit: (event, fields) => {
        if (event === "monitor.warning") warnings.push(fields as EventFields["monitor.warning"]);
      },
      config: () => signed,
      nodes: holder([["a", mark(1, 1)]]),
      peers: null,
    })!;
    await Promise.all([marks.save(), marks.save(), marks.save()]);
    expect(warnings).toMatchObject([{ problem: "replay_marks" }]);
    expect(warnings[0]!.detail).toContain("no space left on device");
  });
});
