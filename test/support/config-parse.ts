// A config text parsed as the monitor parses it: the Config, or the problems as printed.
import { parseConfig } from "../../src/config/parse.js";
import { formatProblem, type Config } from "../../src/config/types.js";

export function ok(yaml: string): Config {
  const r = parseConfig(yaml, "hb.yaml");
  if (!r.ok) throw new Error(r.problems.map((p) => formatProblem("hb.yaml", p)).join("\n"));
  return r.config;
}

export function problems(yaml: string): string[] {
  const r = parseConfig(yaml, "hb.yaml");
  if (r.ok) throw new Error("expected problems");
  return r.problems.map((p) => formatProblem("hb.yaml", p));
}
