// Notifications from a real monitor, as an operator runs them: hooks that hang, a fleet going
// down together, retries, hb notify test through each kind of output, and two monitors feeding
// one real Alertmanager.
import { execFile } from "node:child_process";
import { createHmac, timingSafeEqual } from "node:crypto";
import { createSocket, type Socket } from "node:dgram";
import { chmodSync, existsSync, mkdirSync, readFileSync, readdirSync } from "node:fs";
import { createServer, type IncomingHttpHeaders } from "node:http";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { Kind, encode } from "../../src/wire/protocol.js";
import {
  alertmanagerBinary,
  getAlerts,
  startAlertmanager,
  startReceiver,
  type RunningAlertmanager,
} from "../support/alertmanager.js";
import {
  HB_BIN,
  TempDir,
  runHb,
  sleep,
  startMonitor,
  startNode,
  type HbProcess,
  until,
} from "../support/hb-process.js";

/** hb as a child process, without blocking this process (whose receivers must answer meanwhile). */
function runHbAsync(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [HB_BIN, ...args], { timeout: 30_000 }, (err, stdout, stderr) =>
      resolve({ code: err === null ? 0 : typeof err.code === "number" ? err.code : null, stdout, stderr }),
    );
  });
}

const dir = new TempDir();
const procs: HbProcess[] = [];
const cleanups: (() => Promise<void> | void)[] = [];
afterAll(async () => {
  await Promise.all(procs.map((p) => p.stop()));
  for (const cleanup of cleanups) await cleanup();
  dir.remove();
});

function hook(name: string, body: string): string {
  return dir.file(name, `#!/bin/bash\n${body}\n`, 0o755);
}

/** A hook that keeps each run in its own file: the batch size, then what it read on stdin. */
function recorder(name: string): { path: string; runs: () => { count: number; notices: Notice[] }[] } {
  const out = join(dir.path, `${name}.d`);
  mkdirSync(out);
  const path = hook(
    `${name}.sh`,
    `f="${out}/$(date +%s%N)-$$"; { echo "$HB_COUNT $HB_TEST \${HB_EVENT:-}"; cat; } > "$f.tmp" && mv "$f.tmp" "$f"`,
  );
  return {
    path,
    runs: () =>
      readdirSync(out)
        .filter((f) => !f.endsWith(".tmp"))
        .sort()
        .map((f) => {
          const [head = "", body = ""] = readFileSync(join(out, f), "utf8").split("\n", 2);
          const parsed = JSON.parse(body) as Notice | Notice[];
          return { count: Number(head.split(" ")[0]), notices: Array.isArray(parsed) ? parsed : [parsed] };
        }),
  };
}

interface Notice {
  event: string;
  node: string | null;
  state: string | null;
  previous: string | null;
  test: boolean;
  dedupKey: string;
  labels: Record<string, string>;
  fields: Record<string, unknown>;
}

async function metric(statusUrl: string, series: string): Promise<number> {
  const text = await (await fetch(`${statusUrl.replace("/status", "/metrics")}?nodes=0`)).text();
  return Number(new RegExp(`^${series.replace(/[{}"]/g, "\\$&")} (\\S+)$`, "m").exec(text)?.[1]);
}

/** Many nodes from this process: every id beats each interval unless stopped. */
class Fleet {
  private readonly socket: Socket = createSocket("udp4");
  private readonly stopped = new Set<string>();
  private sequence = 0;
  private readonly timer: NodeJS.Timeout;
  constructor(
    readonly ids: readonly string[],
    port: number,
    intervalMs: number,
  ) {
    const incarnation = Date.now();
    const beat = (): void => {
      this.sequence++;
      for (const nodeId of ids)
        if (!this.stopped.has(nodeId))
          this.socket.send(
            encode({ kind: Kind.BEAT, nodeId, incarnation, sequence: this.sequence }),
            port,
            "127.0.0.1",
          );
    };
    this.timer = setInterval(beat, intervalMs);
    beat();
  }
  stop(ids: readonly string[]): void {
    ids.forEach((id) => this.stopped.add(id));
  }
  resume(ids: readonly string[]): void {
    ids.forEach((id) => this.stopped.delete(id));
  }
  close(): void {
    clearInterval(this.timer);
    this.socket.close();
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe("notify outputs of a real monitor", () => {
  it("declares 1 000 nodes down at their deadlines while a hook hangs, and delivers every notice to another output in a few batched runs, in order", async () => {
    const ids = Array.from({ length: 1000 }, (_, i) => `n${i}`);
    const record = recorder("fleet");
    const pids = join(dir.path, "hang.pids");
    const hang = hook(
      "hang.sh",
      `echo $$ >> "${pids}"; cat > /dev/null; sleep 60 & echo $! >> "${pids}"; wait`,
    );
    const config = dir.file(
      "fleet.yaml",
      [
        "defaults: { interval: 200ms, timeout: 1s }",
        `nodes: { ${ids.map((id) => `${id}: {}`).join(", ")} }`,
        "notify:",
        `  - { name: hang, exec: [${hang}], on: [node.down, node.up], timeout: 2m, queue: 100 }`,
        `  - { name: record, exec: [${record.path}], on: [node.down, node.up] }`,
      ].join("\n"),
    );
    const { monitor, port, statusUrl } = await startMonitor(config);
    procs.push(monitor);
    const fleet = new Fleet(ids, port, 200);
    cleanups.push(() => fleet.close());
    await until("1000 nodes up", async () => (await counts(statusUrl)).up === 1000);

    fleet.stop(ids);
    const downs = await until("1000 node.down", () => {
      const found = monitor.of("node.down");
      return found.length === 1000 ? found : undefined;
    });
    // Each at its deadline, while the first hook run hangs (for a minute: a detection that waited
    // for it would be that late). How close to the deadline is measured by `npm run bench` (notify).
    const lateness = downs.map((e) => (e.time as number) - (e.at as number));
    expect(Math.min(...lateness)).toBeGreaterThanOrEqual(-1);
    expect(Math.max(...lateness)).toBeLessThan(5000);
    await until("the hanging hook to run", () => existsSync(pids));

    fleet.resume(ids);
    await until(
      "1000 recoveries",
      () => monitor.of("node.up").filter((e) => e.previous === "down").length === 1000,
    );
    const runs = await until("2000 recorded notices", () => {
      const all = record.runs();
      return all.reduce((n, r) => n + r.notices.length, 0) === 2000 ? all : undefined;
    });
    // Batched: a handful of runs, not 2000 processes.
    expect(runs.length).toBeLessThanOrEqual(10);
    for (const run of runs) expect(run.count).toBe(run.notices.length);
    const seen = new Map<string, string[]>();
    for (const n of runs.flatMap((r) => r.notices))
      seen.set(n.node!, [...(seen.get(n.node!) ?? []), n.event]);
    expect(seen.size).toBe(1000);
    for (const events of seen.values()) expect(events).toEqual(["node.down", "node.up"]);

    // The hanging output's queue (100) overflowed with the recoveries: the oldest were dropped, said once.
    const dropped = monitor.of("notify.dropped");
    expect(dropped).toHaveLength(1);
    expect(dropped[0]).toMatchObject({ output: "hang" });
    // Nothing of it is delivered while its calls hang: every notice is either dropped or still held.
    const droppedTotal = await metric(statusUrl, 'hb_notify_dropped_total{output="hang"}');
    expect(droppedTotal).toBeGreaterThan(0);
    expect(droppedTotal + (await metric(statusUrl, 'hb_notify_queue_depth{output="hang"}'))).toBe(2000);
    expect(await metric(statusUrl, 'hb_notify_deliveries_total{output="record",result="delivered"}')).toBe(
      2000,
    );

    // At stop the hanging hook and its child are killed with their process group.
    const hung = readFileSync(pids, "utf8").trim().split("\n").map(Number);
    expect(hung.length).toBeGreaterThan(0);
    monitor.signal("SIGTERM");
    expect((await monitor.exited).code).toBe(0);
    await until("the hung hooks gone", () => hung.every((pid) => !alive(pid)), 5000);
  }, 60_000);

  it("retries a hook that exits 75 with growing delays, reports exit 1 at once, and kills a hook at its timeout", async () => {
    const count = join(dir.path, "flaky.count");
    const flaky = hook(
      "flaky.sh",
      `cat > /dev/null; n=$(($(cat "${count}" 2>/dev/null || echo 0) + 1)); date +%s%N >> "${count}.at"; echo $n > "${count}"; [ $n -ge 3 ] || exit 75`,
    );
    const broken = hook("broken.sh", `cat > /dev/null; echo "no route to the pager" >&2; exit 1`);
    const slow = hook("slow.sh", `cat > /dev/null; sleep 30`);
    const { monitor, listen, statusUrl } = await startMonitor(
      dir.file(
        "retry.yaml",
        [
          "defaults: { interval: 200ms, timeout: 1s }",
          "nodes: { a: {} }",
          "notify:",
          `  - { name: flaky, exec: [${flaky}], on: [node.down] }`,
          `  - { name: broken, exec: [${broken}], on: [node.down] }`,
          `  - { name: slow, exec: [${slow}], on: [node.down], timeout: 300ms }`,
        ].join("\n"),
      ),
    );
    procs.push(monitor);
    const node = startNode("a", listen);
    procs.push(node);
    await monitor.waitFor("node.up", "a");
    node.signal("SIGKILL");
    await monitor.waitFor("node.down", "a");

    const failed = await until("two notify.failed", () => {
      const found = monitor.of("notify.failed");
      return found.length === 2 ? found : undefined;
    });
    const byOutput = Object.fromEntries(failed.map((e) => [e.output as string, e]));
    expect(byOutput.broken).toMatchObject({ reason: "exit_1", attempts: 1, notices: 1, nodes: ["a"] });
    expect(byOutput.broken!.detail).toContain("no route to the pager");
    expect(byOutput.slow).toMatchObject({ reason: "timeout", attempts: 1, nodes: ["a"] });

    await until("the third attempt", () => existsSync(count) && readFileSync(count, "utf8").trim() === "3");
    const at = readFileSync(`${count}.at`, "utf8")
      .trim()
      .split("\n")
      .map((ns) => Number(ns) / 1e6);
    // 1 s, then 2 s, each at least half of that with the jitter.
    expect(at[1]! - at[0]!).toBeGreaterThanOrEqual(450);
    expect(at[2]! - at[1]!).toBeGreaterThanOrEqual(950);
    await until(
      "flaky delivered",
      async () =>
        (await metric(statusUrl, 'hb_notify_deliveries_total{output="flaky",result="delivered"}')) === 1,
    );
    expect(await metric(statusUrl, 'hb_notify_deliveries_total{output="flaky",result="retried"}')).toBe(2);
    expect(await metric(statusUrl, 'hb_notify_deliveries_total{output="flaky",result="delivered"}')).toBe(1);
    expect(await metric(statusUrl, 'hb_notify_deliveries_total{output="broken",result="retried"}')).toBe(0);
    expect(await metric(statusUrl, 'hb_notify_deliveries_total{output="broken",result="failed"}')).toBe(1);
    expect(monitor.of("notify.failed").filter((e) => e.output === "flaky")).toEqual([]);
  }, 30_000);

  it("refuses, in hb check-config, a hook that its group may rewrite, with the line and column", () => {
    const unsafe = hook("unsafe.sh", "exit 0");
    chmodSync(unsafe, 0o775);
    const path = dir.file(
      "unsafe.yaml",
      `nodes: { a: {} }\nnotify:\n  - { name: pager, exec: [${unsafe}] }\n`,
    );
    const r = runHb(["check-config", path]);
    expect(r.code).toBe(78);
    expect(r.stderr).toContain(
      `${path}:3:5: notify.pager: hook ${unsafe} is writable by its group or others`,
    );
  });
});

async function counts(statusUrl: string): Promise<Record<string, number>> {
  const doc = (await (await fetch(`${statusUrl}?limit=0`)).json()) as { counts: Record<string, number> };
  return doc.counts;
}

interface Received {
  headers: IncomingHttpHeaders;
  body: Buffer;
}

async function webhookReceiver(): Promise<{ url: string; received: Received[]; close(): Promise<void> }> {
  const received: Received[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      received.push({ headers: req.headers, body: Buffer.concat(chunks) });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}/hooks/T0`,
    received,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** The documented check, written here from docs/notifications.md: HMAC-SHA-256 over "<t>." and the raw body. */
function signatureValid(secret: string, headers: IncomingHttpHeaders, body: Buffer): boolean {
  const [, t, s] = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(String(headers["x-hb-signature"])) ?? [];
  if (t === undefined || s === undefined) return false;
  const expected = createHmac("sha256", secret).update(`${t}.`).update(body).digest();
  return Math.abs(Date.now() / 1000 - Number(t)) <= 300 && timingSafeEqual(expected, Buffer.from(s, "hex"));
}

const missingAlertmanager = alertmanagerBinary() === null;

describe.skipIf(missingAlertmanager && process.env.CI !== "true")(
  "notify outputs with a real Alertmanager",
  () => {
    it("has an Alertmanager to run (CI installs prometheus-alertmanager)", () => {
      expect(alertmanagerBinary()).not.toBeNull();
    });

    it("sends a marked test notice through each kind of output with hb notify test", async () => {
      const record = recorder("test");
      const receiver = await webhookReceiver();
      cleanups.push(() => receiver.close());
      const amReceiver = await startReceiver();
      cleanups.push(() => amReceiver.close());
      const am: RunningAlertmanager = await startAlertmanager({ receiverUrl: amReceiver.url });
      cleanups.push(() => am.stop());
      const secret = "notify-test-key-0123456789abcdef";
      const keyFile = dir.file("k1", `${secret}\n`, 0o600);
      const { monitor, statusUrl } = await startMonitor(
        dir.file(
          "test.yaml",
          [
            `keys: { k1: ${keyFile} }`,
            "notify:",
            `  - { name: pager, exec: [${record.path}] }`,
            `  - { name: chat, webhook: "${receiver.url}", sign_with: k1 }`,
            `  - { name: am, alertmanager: [${am.url}] }`,
            `  - { name: nowhere, webhook: "http://127.0.0.1:1/hook", timeout: 1s }`,
          ].join("\n"),
        ),
      );
      procs.push(monitor);
      for (const name of ["pager", "chat", "am"]) {
        const r = await runHbAsync(["notify", "test", name, "--url", statusUrl]);
        expect(r.stderr).toBe("");
        expect(r.stdout).toBe(`${name}: test notice delivered\n`);
        expect(r.code).toBe(0);
      }
      const [run] = record.runs();
      expect(run!.notices[0]).toMatchObject({
        event: "notify.test",
        test: true,
        fields: { output: "pager" },
      });
      expect(readdirSync(join(dir.path, "test.d")).length).toBe(1);
      expect(receiver.received).toHaveLength(1);
      const { headers, body } = receiver.received[0]!;
      expect(headers["x-hb-key-id"]).toBe("k1");
      expect(signatureValid(secret, headers, body)).toBe(true);
      expect(signatureValid("another-key-0123456789abcdef", headers, body)).toBe(false);
      expect(JSON.parse(body.toString())).toMatchObject({ event: "notify.test", test: true });
      const alerts = await getAlerts(am.url);
      expect(alerts.map((a) => a.labels.alertname)).toEqual(["HbNotifyTest"]);

      const failing = await runHbAsync(["notify", "test", "nowhere", "--url", statusUrl]);
      expect(failing.code).toBe(1);
      expect(failing.stderr).toMatch(/^hb notify: nowhere: network/);
      const unknown = await runHbAsync(["notify", "test", "pagr", "--url", statusUrl]);
      expect(unknown.code).toBe(64);
      expect(monitor.of("notify.test").map((e) => [e.output, e.outcome])).toEqual([
        ["pager", "delivered"],
        ["chat", "delivered"],
        ["am", "delivered"],
        ["nowhere", "network"],
      ]);
    }, 30_000);

    it("gives one alert and one notification in Alertmanager for a node two monitors see down, kept while down and resolved when it is back", async () => {
      const receiver = await startReceiver();
      cleanups.push(() => receiver.close());
      const am = await startAlertmanager({ receiverUrl: receiver.url });
      cleanups.push(() => am.stop());
      const config = (name: string) =>
        dir.file(
          `${name}.yaml`,
          [
            "defaults: { interval: 200ms, timeout: 1s }",
            "nodes: { pay-1: { labels: { team: payments } } }",
            "notify:",
            `  - { name: am, alertmanager: [${am.url}], resend: 500ms }`,
          ].join("\n"),
        );
      const a = await startMonitor(config("mon-a"));
      const b = await startMonitor(config("mon-b"));
      procs.push(a.monitor, b.monitor);
      const node = startNode("pay-1", a.listen, "200ms", ["--monitor", b.listen]);
      procs.push(node);
      await Promise.all([a.monitor.waitFor("node.up", "pay-1"), b.monitor.waitFor("node.up", "pay-1")]);
      node.signal("SIGKILL");
      await Promise.all([a.monitor.waitFor("node.down", "pay-1"), b.monitor.waitFor("node.down", "pay-1")]);

      const firing = await receiver.waitFor((n) => n.status === "firing");
      const alerts = await getAlerts(am.url);
      expect(alerts).toHaveLength(1);
      expect(alerts[0]!.labels).toEqual({
        alertname: "HbNodeDown",
        node: "pay-1",
        severity: "critical",
        team: "payments",
      });
      expect(firing[0]!.alerts.map((x) => x.fingerprint)).toEqual([alerts[0]!.fingerprint]);
      // Still active after several resends from both monitors, with its end moved on.
      const endsAt = Date.parse(alerts[0]!.endsAt);
      await sleep(1500);
      const later = await getAlerts(am.url);
      expect(later).toHaveLength(1);
      expect(Date.parse(later[0]!.endsAt)).toBeGreaterThan(endsAt);
      expect(receiver.notifications.filter((n) => n.status === "firing")).toHaveLength(1);

      const back = startNode("pay-1", a.listen, "200ms", ["--monitor", b.listen]);
      procs.push(back);
      await receiver.waitFor((n) => n.status === "resolved");
      expect(await getAlerts(am.url, "active=true")).toEqual([]);
      expect(receiver.notifications.filter((n) => n.status === "firing")).toHaveLength(1);
    }, 45_000);
  },
);
