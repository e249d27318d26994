import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parseConfig } from "../../src/config/parse.js";
import { formatProblem, type Config } from "../../src/config/types.js";

function ok(yaml: string): Config {
  const r = parseConfig(yaml, "hb.yaml");
  if (!r.ok) throw new Error(r.problems.map((p) => formatProblem("hb.yaml", p)).join("\n"));
  return r.config;
}

function problems(yaml: string): string[] {
  const r = parseConfig(yaml, "hb.yaml");
  if (r.ok) throw new Error("expected problems");
  return r.problems.map((p) => formatProblem("hb.yaml", p));
}

describe("the repository's heartbeat.yaml", () => {
  const text = readFileSync(new URL("../../heartbeat.yaml", import.meta.url), "utf8");
  const config = ok(text);

  it("loads, with the documented per-node values", () => {
    expect(config.listen).toEqual({ host: "0.0.0.0", port: 26722 });
    expect(config.status).toEqual({ host: "127.0.0.1", port: 26723 });
    expect(config.defaults).toEqual({ intervalMs: 1000, timeoutMs: 10_000, lateMs: 5000 });
    expect(
      Object.fromEntries(
        [...config.nodes].map(([id, n]) => [id, [n.intervalMs, n.lateMs, n.timeoutMs, n.paused]]),
      ),
    ).toEqual({
      "3": [1000, 5000, 10_000, false],
      "payments-1": [1000, 10_000, 30_000, false],
      "logs-1": [500, 2500, 5000, false],
      "db-2": [1000, 5000, 10_000, true],
    });
    expect(config.startupGraceMs).toBe(60_000);
    expect(config.unknownNodes).toBe("accept");
    expect(config.auth).toBe("off");
  });

  it("is frozen", () => {
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.nodes.get("3"))).toBe(true);
  });
});

describe("defaults", () => {
  it("fills every value from the built-in defaults for an empty file", () => {
    const c = ok("");
    expect(c.defaults).toEqual({ intervalMs: 1000, timeoutMs: 10_000, lateMs: 5000 });
    expect(c.startupGraceMs).toBe(20_000);
    expect(c.nodes.size).toBe(0);
  });

  it("derives timeout = 10 x interval and late = timeout / 2 from what a level sets", () => {
    const c = ok(`defaults: { interval: 2s }\nnodes: { a: { timeout: 9s }, b: {}, c: { interval: 100ms } }`);
    expect(c.defaults).toEqual({ intervalMs: 2000, timeoutMs: 20_000, lateMs: 10_000 });
    expect(c.nodes.get("a")).toMatchObject({ intervalMs: 2000, timeoutMs: 9000, lateMs: 4500 });
    expect(c.nodes.get("b")).toMatchObject({ intervalMs: 2000, timeoutMs: 20_000, lateMs: 10_000 });
    expect(c.nodes.get("c")).toMatchObject({ intervalMs: 100, timeoutMs: 1000, lateMs: 500 });
  });

  it("uses an explicit value as given (?? semantics), not replaced by a derived one", () => {
    const c = ok(`defaults: { interval: 1s, timeout: 4s, late: 1s }\nnodes: { a: {} }`);
    expect(c.nodes.get("a")).toMatchObject({ intervalMs: 1000, timeoutMs: 4000, lateMs: 1000 });
  });

  it("requires authentication by default once keys are configured", () => {
    expect(ok(`keys: { k1: /etc/hb/keys/k1 }`).auth).toBe("required");
    expect(ok(`keys: { k1: /etc/hb/keys/k1 }\nauth: optional`).auth).toBe("optional");
  });

  it("accepts IPv6 listen addresses, port 0, status off, and unquoted numeric node ids as written", () => {
    const c = ok(`listen: "[::]:0"\nstatus: off\nnodes: { 007: {}, 3: {} }`);
    expect(c.listen).toEqual({ host: "::", port: 0 });
    expect(c.status).toBeNull();
    expect([...c.nodes.keys()]).toEqual(["007", "3"]);
  });
});

describe("problems", () => {
  it("reports unknown keys, bad types and broken rules with file:line:col, all at once and in order", () => {
    expect(
      problems(
        [
          "listen: 127.0.0.1", //             1
          "defaults:", //                     2
          "  interval: 1s", //                3
          "  timout: 10s", //                 4
          "unknown_nodes: maybe", //          5
          "nodes:", //                        6
          "  a: { timeout: 2s }", //          7
          "  b: { late: 10s }", //            8
          "  c: { interval: 5 }", //          9
          "  d: { paused: yes please }", //  10
          "extra: 1", //                     11
        ].join("\n"),
      ),
    ).toEqual([
      'hb.yaml:1:9: listen: "127.0.0.1" is not host:port (IPv6 goes in brackets: [::1]:26722)',
      'hb.yaml:4:3: unknown key "timout" in defaults (expected one of: interval, timeout, late)',
      "hb.yaml:5:16: unknown_nodes must be one of: accept, ignore",
      "hb.yaml:7:3: nodes.a: timeout (2s) must be more than 2 x interval (1s)",
      "hb.yaml:8:3: nodes.b: late (10s) must be less than timeout (10s)",
      'hb.yaml:9:18: nodes.c.interval must be a duration with a unit, e.g. "1s" or "250ms"',
      "hb.yaml:10:16: nodes.d.paused must be true or false",
      'hb.yaml:11:1: unknown key "extra" in the config (expected one of: listen, status, defaults, startup_grace, unknown_nodes, max_nodes, forget_after, receive_buffer, auth, keys, nodes)',
    ]);
  });

  it("reports YAML syntax errors with their position", () => {
    expect(problems("nodes:\n  a: {\n")[0]).toMatch(/^hb\.yaml:\d+:\d+: /);
    expect(problems("listen: a\nlisten: b\n")[0]).toMatch(/^hb\.yaml:2:1: .*[Uu]nique/);
  });

  it("refuses durations without a unit, fractional milliseconds and zero", () => {
    expect(problems(`defaults: { interval: 1000 }`)).toHaveLength(1);
    expect(problems(`defaults: { interval: 1.5ms }`)).toHaveLength(1);
    expect(problems(`defaults: { interval: 0s }`)).toHaveLength(1);
  });

  it("refuses node ids that could not be sent or used as a systemd instance name", () => {
    expect(problems(`nodes: { "bad id": {} }`)[0]).toContain('node id "bad id"');
    expect(problems(`nodes: { "${"x".repeat(65)}": {} }`)).toHaveLength(1);
  });

  it("refuses authentication without keys", () => {
    expect(problems(`auth: required`)).toEqual([
      "hb.yaml:1:1: auth: required needs at least one key under keys",
    ]);
  });

  it("reports a bad defaults block once, not again for every node that inherits it", () => {
    expect(problems(`defaults: { interval: 1s, timeout: 2s }\nnodes: { a: {}, b: {} }`)).toEqual([
      "hb.yaml:1:1: defaults: timeout (2s) must be more than 2 x interval (1s)",
    ]);
  });
});
