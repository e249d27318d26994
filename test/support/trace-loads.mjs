// Loaded with `node --import`: records every module file the program loads (ES modules through a
// loader hook, CommonJS through require's cache) and writes the list to $HB_TRACE_LOADS at exit.
import { writeFileSync } from "node:fs";
import { createRequire, register } from "node:module";
import { MessageChannel } from "node:worker_threads";

const { port1, port2 } = new MessageChannel();
const loaded = new Set();
port1.on("message", (url) => loaded.add(url));
port1.unref();
register(
  `data:text/javascript,${encodeURIComponent(
    "let port; export function initialize(d) { port = d.port; } export async function load(url, context, next) { port.postMessage(url); return next(url, context); }",
  )}`,
  { data: { port: port2 }, transferList: [port2] },
);
const require = createRequire(import.meta.url);
process.on("exit", () => {
  for (const file of Object.keys(require.cache)) loaded.add(`file://${file}`);
  writeFileSync(process.env.HB_TRACE_LOADS, [...loaded].join("\n") + "\n");
});
