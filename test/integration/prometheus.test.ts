// The shipped Prometheus rules (docs/prometheus): promtool's checks and unit tests, and a real
// Prometheus loading them while it scrapes a real monitor with real nodes. Without prometheus or
// promtool these tests are skipped, except in CI (CI=true), where they fail.
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { TempDir, sleep, startMonitor, startNode, type HbProcess } from "../support/hb-process.js";
import { Prometheus, prometheusBinary, promtoolBinary, type PrometheusAlert } from "../support/prometheus.js";

const REPO = fileURLToPath(new URL("../..", import.meta.url));
const RULES = `${REPO}docs/prometheus/hb.rules.yml`;
const RULE_TESTS = `${REPO}docs/prometheus/hb.rules.test.yml`;
const CONFIG = `
defaults: { interval: 200ms, timeout: 1s }
nodes: { "a": {}, "b": {} }
`;

const missing = [
  prometheusBinary() === null ? "prometheus" : null,
  promtoolBinary() === null ? "promtool" : null,
].filter((name) => name !== null);
const required = process.env.CI === "true";
if (missing.length > 0 && !required)
  console.warn(`\n*** Prometheus rule tests SKIPPED: ${missing.join(" and ")} not installed\n`);

function promtool(...args: string[]): { code: number | null; output: string } {
  const r = spawnSync(promtoolBinary() ?? "promtool", args, { encoding: "utf8", cwd: REPO, timeout: 20_000 });
  return { code: r.status, output: `${r.stdout}${r.stderr}${r.error ? String(r.error) : ""}` };
}

/** Asks `probe` every 200 ms until it returns something other than null, or fails after `timeoutMs`. */
async function poll<T>(what: string, probe: () => Promise<T | null>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = await probe();
    if (found !== null) return found;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(200);
  }
}

describe.skipIf(missing.length > 0 && !required)("the Prometheus rules in docs/prometheus", () => {
  const dir = new TempDir();
  const procs: HbProcess[] = [];
  let prometheus: Prometheus | undefined;

  afterAll(async () => {
    await Promise.all([...procs.map((p) => p.stop()), prometheus?.stop()]);
    dir.remove();
  });

  it("have prometheus and promtool to run with (CI installs them; elsewhere, without them, these tests are skipped)", () => {
    expect(missing).toEqual([]);
  });

  it("pass promtool check rules", () => {
    const r = promtool("check", "rules", RULES);
    expect(r.output).toMatch(/SUCCESS: \d+ rules found/);
    expect(r.code, r.output).toBe(0);
  });

  it("pass their unit tests, every alert firing and not firing, under promtool test rules", () => {
    const r = promtool("test", "rules", RULE_TESTS);
    expect(r.output).toContain("SUCCESS");
    expect(r.code, r.output).toBe(0);
  });

  it("raise HbNodeDown in a real Prometheus for exactly the node killed with SIGKILL, and for no other", async () => {
    const { monitor, listen, statusUrl } = await startMonitor(dir.file("hb.yaml", CONFIG));
    procs.push(monitor);
    const nodes = { a: startNode("a", listen), b: startNode("b", listen) };
    procs.push(nodes.a, nodes.b);
    await Promise.all(["a", "b"].map((id) => monitor.waitFor("node.up", id)));
    const target = new URL(statusUrl).host;
    const p = await Prometheus.start({ targets: [target], ruleFiles: [RULES] });
    prometheus = p;
    const downAlerts = async (): Promise<PrometheusAlert[]> =>
      (await p.alerts()).filter((alert) => alert.labels.alertname === "HbNodeDown");

    // "No alert" means something only once the rules have run on a scrape that saw both nodes.
    const bothScrapedAt = await poll("both nodes scraped, neither down", async () =>
      (await p.query("hb_node_down == 0")).length === 2 ? Date.now() : null,
    );
    const group = await poll("the hb rules evaluated after that scrape", async () => {
      const hb = (await p.ruleGroups()).find((g) => g.name === "hb");
      return hb !== undefined && Date.parse(hb.lastEvaluation) > bothScrapedAt ? hb : null;
    });
    const unhealthy = group.rules.filter((rule) => rule.health !== "ok");
    expect(unhealthy.map((rule) => [rule.name, rule.health, rule.lastError])).toEqual([]);
    expect(await downAlerts()).toEqual([]);

    nodes.a.signal("SIGKILL");
    await monitor.waitFor("node.down", "a", 5000);
    const firing = await poll("HbNodeDown firing", async () => {
      const alerts = await downAlerts();
      return alerts.some((alert) => alert.state === "firing") ? alerts : null;
    });
    expect(firing).toEqual([
      expect.objectContaining({
        state: "firing",
        labels: { alertname: "HbNodeDown", severity: "critical", job: "hb", instance: target, node: "a" },
        annotations: {
          summary: "hb node a is down",
          description: `Monitor ${target} has not heard from node a for longer than its timeout.`,
        },
      }),
    ]);
    expect(monitor.of("node.down").map((e) => e.node)).toEqual(["a"]);
  });
});
