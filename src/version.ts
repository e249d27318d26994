// The package version, read once from package.json (one directory above src/ and dist/), for
// `hb --version`, `monitor.started` and the status document.

import { readFileSync } from "node:fs";

export const VERSION: string = (
  JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string }
).version;
