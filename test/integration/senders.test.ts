// The two senders as operators run them: `hb send` from cron, `hb node` after its state was
// damaged, and both refusing a key file that others could have swapped.
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { TempDir, runHb, sleep, startMonitor, startNode } from "../support/hb-process.js";

const dir = new TempDir();
afterAll(() => dir.remove());

interface NodeStatus {
  node: string;
  state: string;
  received: number;
  lost: number;
  lossPct: number;
}

async function nodeStatus(statusUrl: string, node: string): Promise<NodeStatus | undefined> {
  const doc = (await (await fetch(statusUrl)).json()) as { nodes: NodeStatus[] };
  return doc.nodes.find((n) => n.node === node);
}

describe("hb send from cron", () => {
  it("shows 0 % loss for a node that sends one heartbeat per run, several runs apart", async () => {
    const { monitor, listen, statusUrl } = await startMonitor(
      dir.file("cron.yaml", `nodes: { "cron-1": {} }\n`),
    );
    try {
      for (let run = 0; run < 4; run++) {
        expect(runHb(["send", "--id", "cron-1", "--monitor", listen]).code).toBe(0);
        await sleep(50);
      }
      await monitor.waitFor("node.up", "cron-1");
      let status: NodeStatus | undefined;
      for (let i = 0; i < 100 && (status?.received ?? 0) < 4; i++) {
        await sleep(50);
        status = await nodeStatus(statusUrl, "cron-1");
      }
      expect(status).toMatchObject({ node: "cron-1", received: 4, lost: 0, lossPct: 0 });
    } finally {
      await monitor.stop();
    }
  });
});

describe("hb node with a damaged state directory", () => {
  it("repairs an incarnation file holding a value above 2^53 - 1, warns, and beats", async () => {
    const stateDir = join(dir.path, "state");
    mkdirSync(stateDir);
    writeFileSync(join(stateDir, "incarnation-n1"), "99999999999999999999\n");
    const { monitor, listen } = await startMonitor(dir.file("node.yaml", `nodes: { "n1": {} }\n`));
    const node = startNode("n1", listen, "100ms", ["--state-dir", stateDir]);
    try {
      const warning = await node.waitFor("sender.warning");
      expect(warning).toMatchObject({ node: "n1", problem: "incarnation_file_repaired" });
      const started = await node.waitFor("sender.started");
      await monitor.waitFor("node.up", "n1");
      const onDisk = Number(readFileSync(join(stateDir, "incarnation-n1"), "utf8"));
      expect(onDisk).toBe(started.incarnation);
      expect(Number.isSafeInteger(onDisk)).toBe(true);
    } finally {
      await node.stop();
      await monitor.stop();
    }
  });
});

describe("key files", () => {
  it("refuses a key in a directory that others can write to, with one line and exit 66", () => {
    const open = join(dir.path, "open");
    mkdirSync(open);
    chmodSync(open, 0o777);
    const key = join(open, "k1");
    writeFileSync(key, "a-key-of-at-least-sixteen-bytes\n", { mode: 0o600 });
    const r = runHb(["send", "--id", "a", "--monitor", "127.0.0.1:9", "--key-file", key]);
    expect(r.code).toBe(66);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stderr).toContain(`${open}, which others can write to`);
  });
});
