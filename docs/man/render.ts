// Writes hb's manual pages into a directory, as the package installs them:
//   npx tsx docs/man/render.ts OUTDIR   ->   OUTDIR/hb.1 OUTDIR/heartbeat.yaml.5 OUTDIR/hb-monitor.8
// The pages are written in roff, in this directory, and checked against the code by
// test/unit/man.test.ts; rendering copies them with the package's version in each title line.

import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export const MAN_PAGES = ["hb.1", "heartbeat.yaml.5", "hb-monitor.8"] as const;

const here = fileURLToPath(new URL(".", import.meta.url));

function packageVersion(): string {
  const text = readFileSync(join(here, "..", "..", "package.json"), "utf8");
  return (JSON.parse(text) as { version: string }).version;
}

/** A page's roff text, its `.TH` line naming `version` (the source's own is replaced). */
export function renderPage(page: (typeof MAN_PAGES)[number], version = packageVersion()): string {
  const source = readFileSync(join(here, page), "utf8");
  const th = /^\.TH (\S+) (\S+) (\S+) "hb [^"]*"/m;
  if (!th.test(source)) throw new Error(`${page}: no .TH line with "hb VERSION"`);
  return source.replace(th, `.TH $1 $2 $3 "hb ${version}"`);
}

export function renderAll(outDir: string): string[] {
  mkdirSync(outDir, { recursive: true });
  return MAN_PAGES.map((page) => {
    const path = join(outDir, page);
    writeFileSync(path, renderPage(page));
    return path;
  });
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const outDir = process.argv[2];
  if (outDir === undefined || process.argv.length > 3) {
    process.stderr.write("usage: npx tsx docs/man/render.ts OUTDIR\n");
    process.exitCode = 64;
  } else {
    for (const path of renderAll(outDir)) process.stdout.write(`${path}\n`);
  }
}
