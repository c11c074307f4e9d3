import type { ErrorCode } from "@loominal/protocol";

/** Error codes of Weft's REST API beyond Loominal's shared ones. */
export type WeftErrorCode = ErrorCode | "unauthorized" | "payload_too_large" | "unsupported_mechanism";

/** An error with its HTTP status, turned into `{ error: { code, message, details } }` by one middleware. */
export class WeftHttpError extends Error {
  override name = "WeftHttpError";
  constructor(
    readonly status: number,
    readonly code: WeftErrorCode,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
  }
}

/** The HTTP status of each shared error code. */
export const STATUS_OF: Partial<Record<ErrorCode, number>> = {
  invalid_input: 400,
  invalid_name: 400,
  invalid_config: 400,
  not_found: 404,
  already_exists: 409,
  conflict: 409,
  forbidden: 403,
  not_registered: 409,
  nats_unavailable: 503,
  config_mismatch: 500,
  unsupported_server: 500,
  timeout: 504,
  lease_held: 409,
  invalid_transition: 409,
  internal: 500,
};
