// The package version, for `hb --version`, `monitor.started` and the status document. Imported
// from package.json, so that the bundle carries it and reads no file at run time.

import pkg from "../package.json" with { type: "json" };

export const VERSION: string = pkg.version;
