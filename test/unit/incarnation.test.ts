// A node's incarnation file: each start moves it forward, and a damaged file is repaired from the
// wall clock (and reported) instead of stopping the node from starting.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { nextIncarnation } from "../../src/node/incarnation.js";

const dir = mkdtempSync(join(tmpdir(), "hb-incarnation-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const WALL_MS = 1_795_499_200_000;
const file = (node: string) => join(dir, `incarnation-${node}`);

describe("nextIncarnation", () => {
  it("moves forward from the last value even when the wall clock is behind it", async () => {
    writeFileSync(file("ahead"), `${WALL_MS + 500}\n`);
    expect(await nextIncarnation("ahead", dir, WALL_MS)).toEqual({
      incarnation: WALL_MS + 501,
      repaired: null,
    });
    expect(readFileSync(file("ahead"), "utf8")).toBe(`${WALL_MS + 501}\n`);
  });

  it("starts from the wall clock when there is no file yet", async () => {
    expect(await nextIncarnation("fresh", dir, WALL_MS)).toEqual({ incarnation: WALL_MS, repaired: null });
  });

  it.each([
    ["garbage", "not a number\n"],
    ["a negative number", "-17\n"],
    ["a value above 2^53 - 1", "99999999999999999999\n"],
    ["2^53 - 1, which has no safe successor", `${Number.MAX_SAFE_INTEGER}\n`],
    ["an empty file", ""],
    ["a fraction", "1795499200000.5\n"],
  ])("repairs a file holding %s from the wall clock and says so", async (name, text) => {
    const node = `n-${name.replace(/[^a-z0-9]+/gi, "-")}`;
    writeFileSync(file(node), text);
    const result = await nextIncarnation(node, dir, WALL_MS);
    expect(result.incarnation).toBe(WALL_MS);
    expect(result.repaired).toContain(file(node));
    expect(readFileSync(file(node), "utf8")).toBe(`${WALL_MS}\n`);
    expect(await nextIncarnation(node, dir, WALL_MS)).toEqual({ incarnation: WALL_MS + 1, repaired: null });
  });
});
