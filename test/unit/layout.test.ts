// The import rules of eslint.config.js catch what they are there to catch: a file that imports
// against the direction of the data flow, and an import cycle. Each case lints one file's text
// (as if it stood at that path) with the project's own layout rules.
import { ESLint } from "eslint";
import { readFileSync } from "node:fs";
import tseslint from "typescript-eslint";
import { describe, expect, it } from "vitest";
import { layout } from "../../eslint.config.js";

const eslint = new ESLint({
  cwd: new URL("../..", import.meta.url).pathname,
  overrideConfigFile: true,
  overrideConfig: [
    { files: ["**/*.ts"], languageOptions: { parser: tseslint.parser } },
    { files: ["**/*.ts"], ...layout },
  ],
});

async function ruleIds(path: string, text: string): Promise<string[]> {
  const [result] = await eslint.lintText(text, { filePath: path });
  return result!.messages.map((m) => m.ruleId ?? m.message);
}

describe("the layout rules", () => {
  it.each([
    ["src/node/probe.ts", "../monitor/monitor.js"],
    ["src/node/probe.ts", "../config/parse.js"],
    ["src/wire/probe.ts", "../config/types.js"],
    ["src/wire/probe.ts", "../cli/main.js"],
    ["src/config/probe.ts", "../monitor/detector.js"],
    ["src/monitor/probe.ts", "../cli/status.js"],
    ["src/monitor/probe.ts", "../node/sender.js"],
    ["src/probe.ts", "./monitor/monitor.js"],
    ["src/cli/probe.ts", "../bin/hb.js"],
    ["src/monitor/probe.ts", "../daemon/assemble.js"],
    ["src/notify/probe.ts", "../daemon/assemble.js"],
    ["src/daemon/probe.ts", "../cli/main.js"],
  ])("refuse %s importing %s", async (path, target) => {
    expect(await ruleIds(path, `import * as m from "${target}";\nexport { m };\n`)).toContain(
      "import-x/no-restricted-paths",
    );
  });

  it.each([
    ["src/cli/probe.ts", "../monitor/monitor.js"],
    ["src/monitor/probe.ts", "../config/parse.js"],
    ["src/node/probe.ts", "../wire/protocol.js"],
    ["src/config/probe.ts", "../wire/address.js"],
    ["src/bin/probe.ts", "../cli/main.js"],
    ["src/cli/probe.ts", "../daemon/assemble.js"],
    ["src/daemon/probe.ts", "../notify/notify.js"],
  ])("allow %s importing %s", async (path, target) => {
    expect(await ruleIds(path, `import * as m from "${target}";\nexport { m };\n`)).toEqual([]);
  });

  it("refuse an import cycle", async () => {
    // config/parse.ts imports config/types.ts: types.ts importing parse.ts back closes a cycle.
    const path = "src/config/types.ts";
    const own = readFileSync(new URL(`../../${path}`, import.meta.url), "utf8");
    expect(await ruleIds(path, own)).toEqual([]);
    expect(
      await ruleIds(path, `import { parseConfig } from "./parse.js";\nexport { parseConfig };\n${own}`),
    ).toContain("import-x/no-cycle");
  });
});
