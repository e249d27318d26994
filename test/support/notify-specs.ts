// Notify output specs for tests, as the config reader would make them, with the defaults a test
// rarely cares about.
import type { AlertmanagerOutputSpec } from "../../src/config/types.js";

export function alertmanagerSpec(
  urls: string[],
  overrides: Partial<AlertmanagerOutputSpec> = {},
): AlertmanagerOutputSpec {
  return {
    kind: "alertmanager",
    name: "am",
    on: null,
    timeoutMs: 5000,
    queue: 100,
    attempts: 3,
    line: 1,
    col: 1,
    urls,
    resendMs: 60_000,
    generatorUrl: null,
    ...overrides,
  };
}
