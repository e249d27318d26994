import js from "@eslint/js";
import { createTypeScriptImportResolver } from "eslint-import-resolver-typescript";
import importX from "eslint-plugin-import-x";
import tseslint from "typescript-eslint";

const folders = ["bin", "cli", "daemon", "evidence", "monitor", "notify", "policy", "node", "config", "wire"];
const src = (folder) => `./src/${folder}`;
/** `target` may import none of `forbidden`: dependencies point bin -> cli -> daemon | evidence -> monitor | notify | policy | node -> config -> wire -> shared. */
const zone = (target, forbidden, why) => ({ target, from: forbidden.map(src), message: why });

/**
 * The architecture as lint rules: no import cycles, and imports only in the direction of the data
 * flow. Exported so that a test can show that these rules catch what they are meant to catch.
 * @type {import("eslint").Linter.Config}
 */
export const layout = {
  plugins: { "import-x": importX },
  settings: {
    "import-x/extensions": [".ts", ".js", ".mjs"],
    "import-x/parsers": { "@typescript-eslint/parser": [".ts"] },
    "import-x/resolver-next": [createTypeScriptImportResolver({ project: "tsconfig.json" })],
  },
  rules: {
    "import-x/no-cycle": "error",
    "import-x/no-restricted-paths": [
      "error",
      {
        zones: [
          zone("./src/*.ts", folders, "the shared modules at src/ import no folder of src/"),
          zone(
            src("wire"),
            ["bin", "cli", "daemon", "evidence", "monitor", "notify", "policy", "node", "config"],
            "wire/ (the bytes) imports only the shared modules",
          ),
          zone(
            src("config"),
            ["bin", "cli", "daemon", "evidence", "monitor", "notify", "policy", "node"],
            "config/ imports only wire/ and the shared modules",
          ),
          zone(
            src("node"),
            ["bin", "cli", "daemon", "evidence", "monitor", "notify", "policy", "config"],
            "node/ (the sender) imports only wire/ and the shared modules",
          ),
          zone(
            src("monitor"),
            ["bin", "cli", "daemon", "evidence", "node", "notify", "policy"],
            "monitor/ imports config/, wire/ and the shared modules, never a command or an output",
          ),
          zone(
            src("notify"),
            ["bin", "cli", "daemon", "evidence", "node", "monitor", "policy"],
            "notify/ (the outputs) imports config/, wire/ and the shared modules: it is told of events, it never reads the detector",
          ),
          zone(
            src("policy"),
            ["bin", "cli", "daemon", "evidence", "node", "monitor", "notify"],
            "policy/ (what pages) imports config/, wire/ and the shared modules: it is told of events and asks through its deps",
          ),
          zone(
            src("evidence"),
            ["bin", "cli", "daemon", "node", "notify", "policy"],
            "evidence/ (traces, replay, tuning) runs the monitor's own detector: it imports monitor/, config/, wire/ and the shared modules",
          ),
          zone(
            src("daemon"),
            ["bin", "cli", "evidence", "node"],
            "daemon/ puts the monitor and its outputs together; the commands and the process are cli/'s and bin/'s",
          ),
          zone(src("cli"), ["bin"], "nothing imports bin/"),
        ],
      },
    ],
  },
};

/** Modules that are pure computation: no I/O, so that they are fast and exact to test. */
const pure = [
  "src/wire/{protocol,sync-payload}.ts",
  "src/selectors.ts",
  "src/config/{types,parse,reader,diff,parents,schedule,maintenance}.ts",
  "src/monitor/{admit,detector,detector-state,reconfigure,views,node-table,deadline-heap,replica,sync,arrivals,phi}.ts",
  "src/wire/trace.ts",
  "src/policy/{policy,windows,shared}.ts",
];

export default tseslint.config(
  { ignores: ["dist/", "node_modules/", "coverage/"] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: {
        projectService: { allowDefaultProject: ["*.js"] },
        tsconfigRootDir: import.meta.dirname,
      },
    },
    rules: {
      "@typescript-eslint/no-floating-promises": "error",
      "@typescript-eslint/no-misused-promises": "error",
      "@typescript-eslint/consistent-type-imports": "error",
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_" }],
      eqeqeq: ["error", "always", { null: "ignore" }],
    },
  },
  { files: ["src/**/*.ts"], ...layout },
  {
    files: pure,
    rules: {
      "no-restricted-imports": [
        "error",
        {
          patterns: [
            {
              group: ["node:*", "!node:crypto", "!node:buffer"],
              message: "a pure module: no I/O (only Buffer and crypto from node:)",
            },
          ],
        },
      ],
    },
  },
  { files: ["**/*.js", "**/*.mjs"], ...tseslint.configs.disableTypeChecked },
  {
    files: ["**/*.js", "**/*.mjs"],
    languageOptions: {
      globals: { process: "readonly", Buffer: "readonly", console: "readonly", setInterval: "readonly" },
    },
  },
);
