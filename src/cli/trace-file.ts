// A trace file read for `hb replay` and `hb tune`: 66 when it cannot be read, 65 (naming its
// first bad line as FILE:LINE) when it is not a trace.

import { readFile } from "node:fs/promises";
import { HbError } from "../errors.js";
import { TraceError, parseTrace, type Trace } from "../wire/trace.js";

export async function readTrace(path: string): Promise<Trace> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new HbError("HB_ERR_TRACE_NOT_FOUND", `cannot read trace ${path}: ${code}`, { cause: err });
  }
  try {
    return parseTrace(text);
  } catch (err) {
    if (err instanceof TraceError)
      throw new HbError("HB_ERR_TRACE", `${path}:${err.line}: ${err.reason}`, { cause: err });
    throw err;
  }
}
