// What a key file must be: judged on the opened file (owner, mode, size) and on the directories
// above it (nobody else may write there). Keys are made in private directories under the
// system's temporary directory, which is sticky and so acceptable above them.
// Files owned by another user are made with chown, so these tests run as root (as the
// systemd tests do).
import { execFileSync } from "node:child_process";
import {
  chmodSync,
  chownSync,
  mkdirSync,
  mkdtempSync,
  rmSync,
  symlinkSync,
  truncateSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { MAX_KEY_FILE_BYTES, readKeyFile } from "../../src/wire/key-file.js";

const SECRET = "key-file-test-secret-0123456789";
const OTHER_UID = 4242;
const root = mkdtempSync(join(tmpdir(), "hb-key-file-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

let dirs = 0;
/** A fresh directory under the private test root, with `mode`. */
function directory(mode = 0o700): string {
  const dir = join(root, `d${dirs++}`);
  mkdirSync(dir);
  chmodSync(dir, mode);
  return dir;
}

function key(dir: string, text = `${SECRET}\n`, mode = 0o600): string {
  const path = join(dir, "k1");
  writeFileSync(path, text, { mode });
  chmodSync(path, mode);
  return path;
}

async function refusal(path: string, options?: { uid: number }): Promise<string> {
  const err = (await readKeyFile(path, options).then(
    () => new Error("accepted"),
    (e: unknown) => e,
  )) as Error;
  expect(err.message).not.toBe("accepted");
  expect(err.message).not.toContain("\n");
  return err.message;
}

describe("readKeyFile", () => {
  it("reads a 0600 key owned by this user in a private directory under the temporary directory", async () => {
    expect((await readKeyFile(key(directory()))).toString()).toBe(SECRET);
  });

  it("reads a key owned by root, mode 0640, for a service running as another user", async () => {
    const dir = directory(0o755);
    const path = key(dir, `${SECRET}\n`, 0o640);
    chownSync(path, 0, OTHER_UID);
    expect((await readKeyFile(path, { uid: OTHER_UID })).toString()).toBe(SECRET);
  });

  it("refuses a 0600 key owned by another user", async () => {
    const path = key(directory());
    chownSync(path, OTHER_UID, OTHER_UID);
    expect(await refusal(path)).toBe(
      `${path} is owned by uid ${OTHER_UID}: key files must belong to root or uid 0`,
    );
  });

  it("refuses a key that its group may write or others may read", async () => {
    expect(await refusal(key(directory(), `${SECRET}\n`, 0o660))).toContain("(mode 660)");
    expect(await refusal(key(directory(), `${SECRET}\n`, 0o604))).toContain("(mode 604)");
  });

  it("refuses a key in a directory that others can write to", async () => {
    const dir = directory(0o777);
    expect(await refusal(key(dir))).toBe(
      `${join(dir, "k1")} is in ${dir}, which others can write to (mode 777): chmod go-w ${dir}`,
    );
  });

  it("refuses a key in a directory that its group can write to", async () => {
    const dir = directory(0o770);
    expect(await refusal(key(dir))).toContain(`${dir}, which others can write to (mode 770)`);
  });

  it("refuses a key below a writable directory, however deep", async () => {
    const outer = directory(0o777);
    const inner = join(outer, "inner");
    mkdirSync(inner, { mode: 0o700 });
    expect(await refusal(key(inner))).toContain(`is in ${outer}, which others can write to`);
  });

  it("accepts a sticky world-writable directory owned by root, as /tmp is", async () => {
    const dir = directory(0o1777);
    expect((await readKeyFile(key(dir))).toString()).toBe(SECRET);
  });

  it("refuses a key in a directory owned by another user", async () => {
    const dir = directory(0o755);
    const path = key(dir);
    chownSync(dir, OTHER_UID, OTHER_UID);
    expect(await refusal(path)).toBe(
      `${path} is in ${dir}, owned by uid ${OTHER_UID}: key directories must belong to root or uid 0`,
    );
  });

  it("judges the directories of the file a symlink leads to", async () => {
    const target = key(directory(0o777));
    const link = join(directory(), "k1");
    symlinkSync(target, link);
    expect(await refusal(link)).toContain("which others can write to");
  });

  it("refuses a 133 MB key without reading it", async () => {
    const path = key(directory());
    truncateSync(path, 133_000_000);
    expect(await refusal(path)).toBe(
      `${path} is 133000000 bytes; a key file holds at most ${MAX_KEY_FILE_BYTES}`,
    );
  });

  it("refuses a key one byte over the limit, and reads one at it", async () => {
    expect(await refusal(key(directory(), "k".repeat(MAX_KEY_FILE_BYTES + 1)))).toContain("holds at most");
    expect((await readKeyFile(key(directory(), "k".repeat(MAX_KEY_FILE_BYTES)))).length).toBe(
      MAX_KEY_FILE_BYTES,
    );
  });

  it("refuses a directory, and a FIFO without waiting for a writer", async () => {
    const dir = directory();
    const sub = join(dir, "sub");
    mkdirSync(sub, { mode: 0o700 });
    expect(await refusal(sub)).toBe(`${sub} is not a regular file`);
    const fifo = join(dir, "fifo");
    execFileSync("mkfifo", ["-m", "600", fifo]);
    expect(await refusal(fifo)).toBe(`${fifo} is not a regular file`);
  });

  it("refuses an empty key and a short one", async () => {
    expect(await refusal(key(directory(), "  \n"))).toContain("is empty");
    expect(await refusal(key(directory(), "short\n"))).toContain("holds 5 bytes; keys need at least 16");
  });
});
