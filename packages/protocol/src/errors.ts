/**
 * Every error code a Loominal surface can report. MCP tools return them in `structuredContent.error.code`;
 * HTTP APIs in `{ error: { code } }`. The union is closed: add a code here before using it anywhere.
 */
export const ERROR_CODES = [
  "invalid_input",
  "invalid_name",
  "invalid_config",
  "not_found",
  "already_exists",
  "conflict",
  "forbidden",
  "not_registered",
  "nats_unavailable",
  "config_mismatch",
  "unsupported_server",
  "timeout",
  "lease_held",
  "invalid_transition",
  "storage_full",
  "internal",
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

/** Base class of every Loominal error: a stable `code`, a message that says what to do next. */
export class LoominalError extends Error {
  override name = "LoominalError";
  readonly code: ErrorCode;
  readonly details: Record<string, unknown> | undefined;

  constructor(
    code: ErrorCode,
    message: string,
    options?: { cause?: unknown; details?: Record<string, unknown> },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.details = options?.details;
  }
}

/** A name, id or value that breaks one of the naming rules. The message names the rule. */
export class InvalidNameError extends LoominalError {
  override name = "InvalidNameError";
  constructor(message: string, details?: Record<string, unknown>) {
    super("invalid_name", message, details ? { details } : undefined);
  }
}

/** A configuration value that cannot be used. The message names the variable or key. */
export class ConfigError extends LoominalError {
  override name = "ConfigError";
  constructor(message: string, options?: { cause?: unknown; details?: Record<string, unknown> }) {
    super("invalid_config", message, options);
  }
}

export function isLoominalError(err: unknown): err is LoominalError {
  return err instanceof LoominalError;
}
