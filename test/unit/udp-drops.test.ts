import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { udpDrops } from "../../src/monitor/udp-drops.js";

const dir = mkdtempSync(join(tmpdir(), "hb-proc-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const HEADER =
  "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops";
describe("udpDrops", () => {
  it("reads the drops column of the socket bound to a port, from udp and udp6", () => {
    writeFileSync(
      join(dir, "udp"),
      [
        HEADER,
        " 1: 0100007F:6862 00000000:0000 07 00000000:00000000 00:00000000 00000000   0        0 1234 2 0000000000000000 17",
        " 2: 00000000:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000   0        0 999 2 0000000000000000 5",
      ].join("\n"),
    );
    writeFileSync(
      join(dir, "udp6"),
      `${HEADER}\n 3: 00000000000000000000000000000000:6862 00000000000000000000000000000000:0000 07 00000000:00000000 00:00000000 00000000 0 0 77 2 0000000000000000 3\n`,
    );
    expect(udpDrops(0x6862, dir)).toBe(20);
    expect(udpDrops(53, dir)).toBe(5);
    expect(udpDrops(9, dir)).toBeNull();
  });
});
