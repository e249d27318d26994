// `npm run build`: hb bundled into one ES module, dist/hb.mjs, with esbuild: no node_modules at run
// time, one file to parse, and each command's modules still evaluated only when it runs (esbuild
// wraps what `import()` reaches in lazy initialisers). Beside it: the example config that `hb demo`
// uses, and esbuild's metafile, from which the package lists the bundled libraries' licences.

import { copyFileSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const top = (path: string): string => fileURLToPath(new URL(`../${path}`, import.meta.url));
export const BUNDLE = top("dist/hb.mjs");
export const METAFILE = top("dist/hb.meta.json");

export async function buildBundle(): Promise<void> {
  rmSync(top("dist"), { recursive: true, force: true });
  mkdirSync(top("dist"));
  const result = await build({
    entryPoints: [top("src/bin/hb.ts")],
    outfile: BUNDLE,
    bundle: true,
    platform: "node",
    format: "esm",
    // The oldest Node.js hb supports (package.json engines).
    target: "node20.19",
    // The CommonJS libraries (pino, prom-client) call require() for Node's own modules.
    banner: {
      js: 'import { createRequire as hbRequire } from "node:module";\nconst require = hbRequire(import.meta.url);',
    },
    legalComments: "eof",
    metafile: true,
    logLevel: "warning",
  });
  writeFileSync(METAFILE, JSON.stringify(result.metafile));
  copyFileSync(top("heartbeat.yaml"), top("dist/heartbeat.yaml"));
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await buildBundle();
