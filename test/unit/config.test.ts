import { readFileSync } from "node:fs";
import { MessageChannel } from "node:worker_threads";
import { describe, expect, it } from "vitest";
import { diffConfigs } from "../../src/config/diff.js";
import { DEFAULTS_KEYS, NODE_KEYS, THRESHOLD_KEYS, TOP_KEYS } from "../../src/config/parse.js";
import { decodeConfig, encodeConfig, transferList, type ConfigData } from "../../src/config/transfer.js";
import { ok, problems } from "../support/config-parse.js";

describe("the repository's heartbeat.yaml", () => {
  const text = readFileSync(new URL("../../heartbeat.yaml", import.meta.url), "utf8");
  const config = ok(text);

  it("loads, with the documented per-node values", () => {
    expect(config.listen).toEqual({ host: "127.0.0.1", port: 26722 }); // safe as installed: loopback only
    expect(config.status).toEqual({ host: "127.0.0.1", port: 26723 });
    expect(config.defaults).toEqual({ intervalMs: 1000, timeoutMs: 10_000, lateMs: 5000, phi: null });
    expect(
      Object.fromEntries(
        [...config.nodes].map(([id, n]) => [id, [n.intervalMs, n.lateMs, n.timeoutMs, n.paused]]),
      ),
    ).toEqual({
      "3": [1000, 5000, 10_000, false],
      "payments-1": [1000, 10_000, 30_000, false],
      "logs-1": [500, 2500, 5000, false],
      "db-2": [1000, 5000, 10_000, true],
      "sw-1": [1000, 5000, 10_000, false],
      "web-7": [1000, 5000, 10_000, false],
    });
    expect(config.startupGraceMs).toBe(60_000);
    expect(config.unknownNodes).toBe("accept");
    expect(config.auth).toBe("off");
  });

  it("gives an example of each: a node's parents and a recurring maintenance window", () => {
    expect(config.nodes.get("web-7")!.parents).toEqual(["sw-1"]);
    expect(config.children).toEqual(new Map([["sw-1", ["web-7"]]]));
    expect(config.maintenance).toMatchObject({
      maxDurationMs: 7 * 86_400_000,
      windows: [
        { name: "patch-tuesday", match: ["web-*"], schedule: "Tue 02:00-04:00", timezone: "Europe/Paris" },
      ],
    });
  });

  it("is frozen", () => {
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.nodes.get("3"))).toBe(true);
  });
});

describe("defaults", () => {
  it("fills every value from the built-in defaults for an empty file", () => {
    const c = ok("");
    expect(c.defaults).toEqual({ intervalMs: 1000, timeoutMs: 10_000, lateMs: 5000, phi: null });
    expect(c.startupGraceMs).toBe(20_000);
    expect(c.nodes.size).toBe(0);
  });

  it("derives timeout = 10 x interval and late = timeout / 2 from what a level sets", () => {
    const c = ok(`defaults: { interval: 2s }\nnodes: { a: { timeout: 9s }, b: {}, c: { interval: 100ms } }`);
    expect(c.defaults).toEqual({ intervalMs: 2000, timeoutMs: 20_000, lateMs: 10_000, phi: null });
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
      'hb.yaml:4:3: unknown key "timout" in defaults (expected one of: interval, timeout, late, detector, parents)',
      "hb.yaml:5:16: unknown_nodes must be one of: accept, ignore",
      "hb.yaml:7:3: nodes.a: timeout (2s) must be more than 2 x interval (1s)",
      "hb.yaml:8:3: nodes.b: late (10s) must be less than timeout (10s)",
      'hb.yaml:9:18: nodes.c.interval must be a duration with a unit, e.g. "1s" or "250ms"',
      "hb.yaml:10:16: nodes.d.paused must be true or false",
      'hb.yaml:11:1: unknown key "extra" in the config (expected one of: listen, status, defaults, startup_grace, unknown_nodes, max_nodes, forget_after, receive_buffer, auth, keys, nodes, notify, cluster, maintenance)',
    ]);
  });

  it("reports YAML syntax errors with their position", () => {
    expect(problems("nodes:\n  a: {\n")[0]).toMatch(/^hb\.yaml:\d+:\d+: /);
  });

  it("reports a key given twice at the second one, in every mapping, once each", () => {
    expect(
      problems(
        [
          "listen: 127.0.0.1:1", //                      1
          "defaults: { interval: 1s, interval: 2s }", // 2
          "keys: { k1: /a, k1: /b }", //                 3
          "nodes:", //                                   4
          "  a: { late: 1s, paused: true, late: 2s }", // 5
          "  b: {}", //                                  6
          "  a: {}", //                                  7
          "listen: 127.0.0.1:2", //                      8
        ].join("\n"),
      ),
    ).toEqual([
      'hb.yaml:2:27: duplicate key "interval" in defaults: map keys must be unique',
      'hb.yaml:3:17: duplicate key "k1" in keys: map keys must be unique',
      'hb.yaml:5:32: duplicate key "late" in nodes.a: map keys must be unique',
      'hb.yaml:7:3: duplicate key "a" in nodes: map keys must be unique',
      'hb.yaml:8:1: duplicate key "listen" in the config: map keys must be unique',
    ]);
  });

  it("tells node ids apart as written: 007 and 7 are two nodes, 007 twice is a duplicate", () => {
    expect([...ok("nodes: { 007: {}, 7: {} }").nodes.keys()]).toEqual(["007", "7"]);
    expect(problems("nodes: { 007: {}, 007: {} }")).toEqual([
      'hb.yaml:1:19: duplicate key "007" in nodes: map keys must be unique',
    ]);
  });

  it("shows control characters in a bad key escaped, not raw", () => {
    expect(problems('"a\\u0007b": 1')[0]).toContain('unknown key "a\\u0007b"');
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

describe("the reload diff", () => {
  // A config that sets every key explicitly, so that changing one changes nothing derived from it.
  const BASE: Record<string, string> = {
    listen: "127.0.0.1:26722",
    status: "127.0.0.1:26723",
    defaults: "{ interval: 1s, timeout: 10s, late: 5s }",
    startup_grace: "20s",
    unknown_nodes: "accept",
    max_nodes: "1000",
    forget_after: "1h",
    receive_buffer: "8MiB",
    auth: "optional",
    keys: "{ k1: /etc/hb/keys/k1, k2: /etc/hb/keys/k2, kc: /etc/hb/keys/kc }",
    nodes:
      "{ a: { interval: 1s, timeout: 10s, late: 5s, detector: { kind: phi, threshold: 8 }, paused: false, keys: [k1], labels: { team: a }, parents: [] }, z: { interval: 1s, timeout: 10s, late: 5s } }",
    notify: "[{ name: pager, exec: [/bin/true], timeout: 5s }]",
    cluster: "{ monitors: { m1: '127.0.0.1:1', m2: '127.0.0.1:2' }, key: kc }",
    maintenance:
      "{ max_duration: 7d, windows: [{ name: w, match: [a], schedule: 'Tue 02:00-04:00', timezone: UTC }] }",
  };
  const TOP_CHANGES: Record<string, string> = {
    listen: "127.0.0.1:26724",
    status: "off",
    defaults: "{ interval: 2s, timeout: 10s, late: 5s }",
    startup_grace: "30s",
    unknown_nodes: "ignore",
    max_nodes: "2000",
    forget_after: "2h",
    receive_buffer: "4MiB",
    auth: "required",
    keys: "{ k1: /etc/hb/keys/k1, k2: /etc/hb/keys/k2, kc: /etc/hb/keys/kc, k3: /etc/hb/keys/k3 }",
    nodes: `${BASE.nodes!.slice(0, -2)}, b: {} }`,
    notify: "[{ name: pager, exec: [/bin/true], timeout: 6s }]",
    cluster: "{ monitors: { m1: '127.0.0.1:1', m2: '127.0.0.1:2' }, key: kc, speak: all }",
    maintenance:
      "{ max_duration: 1d, windows: [{ name: w, match: [a], schedule: 'Tue 02:00-04:00', timezone: UTC }] }",
  };
  const DEFAULTS_CHANGES: Record<string, string> = { interval: "2s", timeout: "12s", late: "4s" };
  const NODE_CHANGES: Record<string, string> = {
    interval: "2s",
    timeout: "12s",
    late: "4s",
    detector: "{ kind: phi, threshold: 9 }",
    paused: "true",
    keys: "[k1, k2]",
    labels: "{ team: b }",
    parents: "[z]",
  };

  const yaml = (values: Record<string, string>): string =>
    Object.entries(values)
      .map(([key, value]) => `${key}: ${value}`)
      .join("\n");
  const diff = (after: Record<string, string>): string[] => diffConfigs(ok(yaml(BASE)), ok(yaml(after)));

  it("has a change to try for every key the parser accepts", () => {
    expect(Object.keys(TOP_CHANGES)).toEqual([...TOP_KEYS]);
    expect(Object.keys(DEFAULTS_CHANGES)).toEqual([...THRESHOLD_KEYS]);
    // defaults.detector: config-detector.test.ts; defaults.parents: below
    expect(DEFAULTS_KEYS).toEqual([...THRESHOLD_KEYS, "detector", "parents"]);
    expect(Object.keys(NODE_CHANGES)).toEqual([...NODE_KEYS]);
  });

  it("finds no change between two readings of one file", () => {
    expect(diff(BASE)).toEqual([]);
  });

  it.each(TOP_KEYS.map((key) => [key]))("reports a change to %s alone in one line that names it", (key) => {
    const changes = diff({ ...BASE, [key]: TOP_CHANGES[key] ?? BASE[key]! });
    expect(changes).toHaveLength(1);
    expect(changes[0]).toMatch(new RegExp(`^${key}[:.]`));
  });

  it.each(THRESHOLD_KEYS.map((key) => [key]))(
    "reports a change to defaults.%s alone in one line that names it",
    (key) => {
      const defaults = `{ interval: 1s, timeout: 10s, late: 5s, ${key}: ${DEFAULTS_CHANGES[key]} }`;
      const changes = diff({ ...BASE, defaults: defaults.replace(new RegExp(`${key}: \\S+, `), "") });
      expect(changes).toHaveLength(1);
      expect(changes[0]).toMatch(new RegExp(`^defaults: ${key} `));
    },
  );

  it.each(NODE_KEYS.map((key) => [key]))(
    "reports a change to nodes.a.%s alone in one line that names it",
    (key) => {
      const node = BASE.nodes!.replace(
        new RegExp(`${key}: (\\[[^\\]]*\\]|\\{[^}]*\\}|[^,} ]+)`),
        `${key}: ${NODE_CHANGES[key]}`,
      );
      expect(node).not.toBe(BASE.nodes);
      const changes = diff({ ...BASE, nodes: node });
      expect(changes).toHaveLength(1);
      expect(changes[0]).toMatch(new RegExp(`^nodes\\.a: ${key} `));
    },
  );

  it("shows values as they are written", () => {
    expect(
      diff({
        ...BASE,
        receive_buffer: "512KiB",
        status: "off",
        nodes:
          "{ a: { interval: 1s, timeout: 10s, late: 5s, paused: true }, b: { interval: 500ms, keys: [k2] } }",
      }),
    ).toEqual([
      "status: 127.0.0.1:26723 -> off (takes effect on restart)",
      "nodes.a: detector phi (threshold 8, late_threshold 3, min_std 100ms, acceptable_pause 0ms, window 1000) -> fixed, paused false -> true, keys k1 -> any, labels team=a -> none",
      "nodes.b: added (interval 500ms, timeout 5s, late 2.5s, keys k2)",
      "nodes.z: removed",
      "receive_buffer: 8MiB -> 512KiB (takes effect on restart)",
    ]);
    expect(
      diff({
        ...BASE,
        keys: "{ k2: /etc/hb/keys/k2, k1: /etc/hb/k1, kc: /etc/hb/keys/kc }",
        nodes: "{ z: { interval: 1s, timeout: 10s, late: 5s } }",
      }),
    ).toEqual(["keys.k1: path /etc/hb/keys/k1 -> /etc/hb/k1", "nodes.a: removed"]);
  });

  it("shows a change of parents on each node it changes, the defaults' on the nodes that take them", () => {
    const before = ok("defaults: { parents: [sw] }\nnodes: { sw: {}, a: {}, b: { parents: [] }, c: {} }");
    expect(
      diffConfigs(
        before,
        ok("defaults: { parents: [sw] }\nnodes: { sw: {}, a: {}, b: { parents: [a, sw] }, c: {} }"),
      ),
    ).toEqual(["nodes.b: parents none -> a,sw"]);
    expect(
      diffConfigs(
        before,
        ok("defaults: { parents: [sw, a] }\nnodes: { sw: {}, a: {}, b: { parents: [] }, c: {} }"),
      ),
    ).toEqual(["nodes.a: parents sw -> none", "nodes.c: parents sw -> sw,a"]);
  });

  it("shows maintenance changes: max_duration, and each window added, removed or changed, by name", () => {
    const window = (name: string, schedule: string, match = "[web-*]") =>
      `{ name: ${name}, match: ${match}, schedule: '${schedule}', timezone: Europe/Paris }`;
    const text = `maintenance:\n  windows:\n    - ${window("a", "Tue 02:00-04:00")}\n    - ${window("b", "Wed 02:00-04:00")}`;
    const before = ok(text);
    const after = ok(
      [
        "maintenance:",
        "  max_duration: 12h",
        "  windows:",
        `    - ${window("c", "daily 23:00-01:00", "['label:team=payments', db-1]")}`,
        `    - ${window("a", "Tue 03:00-04:00", "[web-*, api-*]")}`,
      ].join("\n"),
    );
    expect(diffConfigs(before, after)).toEqual([
      "maintenance: max_duration 7d -> 12h",
      "maintenance.windows.c: added (match label:team=payments,db-1, schedule daily 23:00-01:00, timezone Europe/Paris)",
      "maintenance.windows.a: match web-* -> web-*,api-*, schedule Tue 02:00-04:00 -> Tue 03:00-04:00",
      "maintenance.windows.b: removed",
    ]);
    // A window moved to another line of the file is the same window.
    expect(diffConfigs(before, ok(`# moved\n\n${text}`))).toEqual([]);
  });

  it("finds the same nodes listed in another order unchanged, and what moved and changed", () => {
    const before = ok("nodes: { a: {}, b: {}, c: {}, d: {} }");
    expect(diffConfigs(before, ok("nodes: { d: {}, c: {}, b: {}, a: {} }"))).toEqual([]);
    expect(diffConfigs(before, ok("nodes: { a: {}, c: { paused: true }, b: {}, e: {} }"))).toEqual([
      "nodes.c: paused false -> true",
      "nodes.e: added (interval 1s, timeout 10s, late 5s)",
      "nodes.d: removed",
    ]);
    expect(diffConfigs(before, ok("nodes: { a: {}, b: {} }"))).toEqual([
      "nodes.c: removed",
      "nodes.d: removed",
    ]);
  });

  it("lists at most 100 node changes, then counts the rest", () => {
    const many = `{ ${Array.from({ length: 250 }, (_, i) => `n${i}: {}`).join(", ")} }`;
    const changes = diff({ ...BASE, nodes: many });
    expect(changes).toHaveLength(101);
    expect(changes[100]).toBe("nodes: 152 more changes not listed (250 added, 2 removed, 0 changed in all)");
  });
});

describe("a config handed to another thread", () => {
  it("comes back equal and frozen, in slices", async () => {
    const config = ok(
      [
        "listen: 127.0.0.1:1",
        "status: off",
        "defaults: { interval: 2s }",
        "keys: { k1: /etc/hb/keys/k1, k2: /etc/hb/keys/k2 }",
        "auth: optional",
        "max_nodes: 7",
        "nodes:",
        "  a: {}",
        "  007: { paused: true, keys: [k1, k2] }",
        "  c: { interval: 100ms, late: 300ms, keys: [] }",
        "  d: { timeout: 1h }",
      ].join("\n"),
    );
    const data = encodeConfig(config);
    // What a worker's postMessage does: a structured clone, the buffers moved.
    const { port1, port2 } = new MessageChannel();
    const received = new Promise<ConfigData>((resolve) => port2.once("message", resolve));
    port1.postMessage(data, transferList(data));
    let pauses = 0;
    const back = await decodeConfig(await received, 3, () => {
      pauses++;
      return Promise.resolve();
    });
    port1.close();
    expect(back).toEqual(config);
    expect([...back.nodes.keys()]).toEqual([...config.nodes.keys()]);
    expect(pauses).toBe(1);
    expect(Object.isFrozen(back)).toBe(true);
    expect(Object.isFrozen(back.nodes.get("007"))).toBe(true);
    expect(Object.isFrozen(back.keys)).toBe(true);
    expect(diffConfigs(config, back)).toEqual([]);
  });

  it("keeps the node objects of the previous config that did not change", async () => {
    const previous = ok("keys: { k1: /k1 }\nnodes: { a: {}, b: { keys: [k1] }, c: {}, d: { paused: true } }");
    const next = ok("keys: { k1: /k1 }\nnodes: { a: {}, b: { keys: [k1] }, c: { late: 1s }, e: {} }");
    const back = await decodeConfig(encodeConfig(next), 2, () => Promise.resolve(), previous.nodes);
    expect(back).toEqual(next);
    expect(back.nodes.get("a")).toBe(previous.nodes.get("a"));
    expect(back.nodes.get("b")).toBe(previous.nodes.get("b"));
    expect(back.nodes.get("c")).not.toBe(previous.nodes.get("c"));
    expect(diffConfigs(previous, back)).toEqual([
      "nodes.c: late 5s -> 1s",
      "nodes.e: added (interval 1s, timeout 10s, late 5s)",
      "nodes.d: removed",
    ]);
  });

  it("keeps an empty node list empty", async () => {
    const config = ok("");
    expect(await decodeConfig(encodeConfig(config), 10, () => Promise.resolve())).toEqual(config);
  });
});

describe("notify outputs and labels", () => {
  it("reads each kind of output with its defaults", () => {
    const config = ok(
      [
        "keys: { k1: /etc/hb/keys/k1 }",
        "notify:",
        "  - { name: pager, exec: [/usr/local/lib/hb/hooks/page, --team, ops], on: [node.down, node.up] }",
        "  - { name: chat, webhook: 'https://chat.example.net/hooks/T0', sign_with: k1, format: alertmanager }",
        "  - { name: am, alertmanager: ['http://127.0.0.1:9093/', 'http://127.0.0.1:9094'], resend: 30s }",
      ].join("\n"),
    );
    expect(config.notify).toEqual([
      {
        name: "pager",
        on: new Set(["node.down", "node.up"]),
        timeoutMs: 30_000,
        queue: 10_000,
        attempts: 8,
        line: 3,
        col: 5,
        kind: "exec",
        argv: ["/usr/local/lib/hb/hooks/page", "--team", "ops"],
      },
      {
        name: "chat",
        on: null,
        timeoutMs: 10_000,
        queue: 10_000,
        attempts: 8,
        line: 4,
        col: 5,
        kind: "webhook",
        url: "https://chat.example.net/hooks/T0",
        format: "alertmanager",
        signWith: "k1",
      },
      {
        name: "am",
        on: null,
        timeoutMs: 10_000,
        queue: 10_000,
        attempts: 8,
        line: 5,
        col: 5,
        kind: "alertmanager",
        urls: ["http://127.0.0.1:9093", "http://127.0.0.1:9094"],
        resendMs: 30_000,
        generatorUrl: null,
      },
    ]);
    expect(Object.isFrozen(config.notify[0])).toBe(true);
  });

  it("reports every mistake in notify with file:line:col", () => {
    expect(
      problems(
        [
          "notify:",
          "  - { name: a, exec: [hooks/page] }",
          "  - { name: b, webhook: 'ftp://x', sign_with: k9 }",
          "  - { name: c, alertmanager: [http://x:9093], on: [node.down] }",
          "  - { name: d, exec: [/bin/true], on: [node.dwon], resend: 1m }",
          "  - { name: a, exec: [/bin/true], webhook: 'http://x' }",
          "  - { exec: [/bin/true], timeout: 0s, queue: 0 }",
          "  - just a string",
        ].join("\n"),
      ),
    ).toEqual([
      'hb.yaml:2:23: notify.a.exec: "hooks/page" must be an absolute path (hooks run without a shell)',
      'hb.yaml:3:25: notify.b.webhook: "ftp://x" must be an http:// or https:// URL',
      'hb.yaml:3:47: notify.b.sign_with: "k9" is not a key under keys',
      "hb.yaml:4:47: notify.c.on: an alertmanager output raises and resolves alerts from states, not chosen events",
      'hb.yaml:5:40: notify.d.on: "node.dwon" is not an event hb writes',
      "hb.yaml:5:52: notify.d.resend is for alertmanager outputs",
      "hb.yaml:6:5: notify.a needs exactly one of: exec, webhook, alertmanager",
      "hb.yaml:7:5: notify[5] needs a name",
      'hb.yaml:7:35: notify[5].timeout: "0s" is not a positive duration (e.g. 250ms, 1s, 1.5s, 2m)',
      "hb.yaml:7:46: notify[5].queue must be a whole number of at least 1",
      "hb.yaml:8:5: notify[6] must be a mapping with a name and one of: exec, webhook, alertmanager",
    ]);
  });

  it("refuses two outputs of one name", () => {
    expect(
      problems("notify:\n  - { name: a, exec: [/bin/true] }\n  - { name: a, exec: [/bin/false] }"),
    ).toEqual(['hb.yaml:3:5: notify: two outputs are named "a"']);
  });

  it("reads node labels, shares equal label sets, and refuses what Alertmanager would not take", () => {
    const config = ok(
      "nodes:\n  a: { labels: { team: payments, tier: '1' } }\n  b: { labels: { tier: '1', team: payments } }\n  c: {}",
    );
    expect(config.nodes.get("a")!.labels).toEqual({ team: "payments", tier: "1" });
    expect(config.nodes.get("c")!.labels).toBeNull();
    expect(problems("nodes:\n  a: { labels: { 1x: a, node: b, tier: 1, ok: fine, bad-name: c } }")).toEqual([
      'hb.yaml:2:18: nodes.a.labels: label "1x" must be a name of [a-zA-Z0-9_], not starting with a digit',
      'hb.yaml:2:25: nodes.a.labels: "node" is a label hb sets itself',
      'hb.yaml:2:40: nodes.a.labels.tier must be a string (quote numbers: "1")',
      'hb.yaml:2:53: nodes.a.labels: label "bad-name" must be a name of [a-zA-Z0-9_], not starting with a digit',
    ]);
  });

  it("carries labels to another thread and back", async () => {
    const config = ok("nodes:\n  a: { labels: { team: x } }\n  b: { labels: { team: x } }\n  c: {}");
    const back = await decodeConfig(encodeConfig(config), 2, () => Promise.resolve(), config.nodes);
    expect(back.nodes.get("a")).toBe(config.nodes.get("a"));
    const fresh = await decodeConfig(encodeConfig(config), 2, () => Promise.resolve());
    expect(fresh.nodes.get("a")!.labels).toEqual({ team: "x" });
    expect(fresh.nodes.get("a")!.labels).toBe(fresh.nodes.get("b")!.labels);
    expect(fresh.nodes.get("c")!.labels).toBeNull();
    expect(fresh.notify).toEqual(config.notify);
  });

  it("shows a webhook's URL without its path in the reload diff", () => {
    const before = ok("notify:\n  - { name: chat, webhook: 'https://chat.example.net/hooks/SECRET1' }");
    const after = ok("notify:\n  - { name: chat, webhook: 'https://chat.example.net/hooks/SECRET2' }");
    const changes = diffConfigs(before, after);
    expect(changes).toEqual(["notify.chat: url https://chat.example.net/… -> https://chat.example.net/…"]);
    expect(changes.join()).not.toContain("SECRET");
  });
});

describe("a key that signs webhooks", () => {
  it("does not turn authentication on, and no node may be bound to it", () => {
    const config = ok(
      "keys: { wh: /etc/hb/keys/wh }\nnotify:\n  - { name: chat, webhook: 'https://x.example/h', sign_with: wh }",
    );
    expect(config.auth).toBe("off");
    expect(
      problems(
        "keys: { wh: /etc/hb/keys/wh }\nnodes: { a: { keys: [wh] } }\nnotify:\n  - { name: chat, webhook: 'https://x.example/h', sign_with: wh }",
      ),
    ).toEqual([
      `hb.yaml:2:22: nodes.a.keys: "wh" is the monitors' or a webhook's; a node needs a key of its own`,
    ]);
  });
});

describe("secrets in the reload diff", () => {
  it("shows a change to a hook's arguments or an Alertmanager's path without the values", () => {
    const before = ok(
      "notify:\n  - { name: p, exec: [/bin/page, --token, s3cr3t] }\n  - { name: am, alertmanager: ['http://am:9093/a'] }",
    );
    const after = ok(
      "notify:\n  - { name: p, exec: [/bin/page, --token, n3w] }\n  - { name: am, alertmanager: ['http://am:9093/b'] }",
    );
    const changes = diffConfigs(before, after);
    expect(changes).toEqual([
      "notify.p: argv /bin/page … -> /bin/page …",
      "notify.am: urls http://am:9093/… -> http://am:9093/…",
    ]);
    expect(changes.join()).not.toMatch(/s3cr3t|n3w/);
  });

  it("refuses a URL with a password, and durations a timer cannot wait", () => {
    expect(
      problems(
        "notify:\n  - { name: am, alertmanager: ['https://hb:S3CRET@am:9093'], timeout: 25h, resend: 48h }",
      ),
    ).toEqual([
      "hb.yaml:2:32: notify.am.alertmanager: a URL with a user name or password is not supported (put a token in the path)",
      "hb.yaml:2:71: notify.am.timeout must be at most 24h",
      "hb.yaml:2:84: notify.am.resend must be at most 24h",
    ]);
  });
});
