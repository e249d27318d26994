// Every error hb raises on purpose: one base class with a stable `code` that callers and
// tests match on, and the one table that maps codes to process exit codes (sysexits(3)).
// Commands never call process.exit; they throw HbError or return an ExitCode.

export const ExitCode = {
  OK: 0,
  /** `hb status`: the monitor answered, and some node is late or down. */
  NOT_ALL_UP: 1,
  USAGE: 64,
  /** A trace file that is not one (`hb replay`, `hb tune`). */
  DATA_ERR: 65,
  NO_INPUT: 66,
  UNAVAILABLE: 69,
  SOFTWARE: 70,
  OS_ERROR: 71,
  /** An output file cannot be created or written (`hb capture --out`, `hb replay --plot`). */
  CANT_CREATE: 73,
  CONFIG: 78,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

export const ErrorCode = {
  HB_ERR_USAGE: ExitCode.USAGE,
  HB_ERR_CONFIG: ExitCode.CONFIG,
  HB_ERR_CONFIG_NOT_FOUND: ExitCode.NO_INPUT,
  HB_ERR_KEY_FILE: ExitCode.NO_INPUT,
  HB_ERR_TRACE: ExitCode.DATA_ERR,
  HB_ERR_TRACE_NOT_FOUND: ExitCode.NO_INPUT,
  HB_ERR_STATE_FILE: ExitCode.NO_INPUT,
  HB_ERR_WRITE: ExitCode.CANT_CREATE,
  HB_ERR_BIND: ExitCode.OS_ERROR,
  HB_ERR_STATUS_UNAVAILABLE: ExitCode.UNAVAILABLE,
  HB_ERR_NOT_MONITOR: ExitCode.UNAVAILABLE,
  HB_ERR_INTERNAL: ExitCode.SOFTWARE,
} as const;
export type ErrorCode = keyof typeof ErrorCode;

export class HbError extends Error {
  override readonly name = "HbError";
  readonly code: ErrorCode;
  /** Extra lines (e.g. one per config problem) printed after the message. */
  readonly details: readonly string[];

  constructor(
    code: ErrorCode,
    message: string,
    options: { cause?: unknown; details?: readonly string[] } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.details = options.details ?? [];
  }

  get exitCode(): ExitCode {
    return ErrorCode[this.code];
  }
}

export function exitCodeOf(err: unknown): ExitCode {
  return err instanceof HbError ? err.exitCode : ExitCode.SOFTWARE;
}
