import { LoominalError } from "@loominal/protocol";
import {
  AuthorizationError,
  ClosedConnectionError,
  DrainingConnectionError,
  NoRespondersError,
  RequestError,
  TimeoutError,
  UserAuthenticationExpiredError,
} from "@nats-io/transport-node";

/** NATS cannot be reached (not yet connected, reconnecting, or a request timed out). */
export class NatsUnavailableError extends LoominalError {
  override name = "NatsUnavailableError";
  constructor(url: string, reason: string, options?: { cause?: unknown }) {
    super(
      "nats_unavailable",
      `NATS unreachable at ${url}: ${reason}. Start it with './loominal up' or set NATS_URL; this process keeps reconnecting in the background.`,
      { ...options, details: { url } },
    );
  }
}

/** NATS answered but refused the connection: wrong or missing credentials, or an expired account. */
export class NatsAuthError extends LoominalError {
  override name = "NatsAuthError";
  constructor(url: string, reason: string, options?: { cause?: unknown }) {
    super(
      "forbidden",
      `NATS at ${url} refused the connection (${reason}). Check the credentials: NATS_USER and NATS_PASSWORD, NATS_TOKEN, NATS_CREDS, or user:password@ in NATS_URL (percent-encode reserved characters).`,
      { ...options, details: { url } },
    );
  }
}

/** A stream or bucket exists with a configuration different from the one asked for. */
export class ConfigMismatchError extends LoominalError {
  override name = "ConfigMismatchError";
  readonly differences: ConfigDifference[];
  constructor(kind: "stream" | "bucket", name: string, differences: ConfigDifference[]) {
    const list = differences
      .map((d) => `${d.field}: existing ${fmt(d.existing)}, wanted ${fmt(d.wanted)}`)
      .join("; ");
    super(
      "config_mismatch",
      `${kind} ${name} already exists with a different configuration (${list}). Align the configuration of every process that uses it, or re-provision it with the new configuration ('loominal nats-provision' with the admin credentials).`,
      { details: { kind, name, differences } },
    );
    this.differences = differences;
  }
}

export interface ConfigDifference {
  field: string;
  existing: unknown;
  wanted: unknown;
}

function fmt(v: unknown): string {
  return JSON.stringify(v) ?? "undefined";
}

/** A compare-and-set update kept losing to concurrent writers. */
export class CasConflictError extends LoominalError {
  override name = "CasConflictError";
  constructor(bucket: string, key: string, attempts: number, options?: { cause?: unknown }) {
    super(
      "conflict",
      `key ${key} in ${bucket} changed under ${attempts} consecutive update attempts; retry the operation`,
      { ...options, details: { bucket, key, attempts } },
    );
  }
}

/** A message or KV value read from NATS failed schema validation. */
export class InvalidMessageError extends LoominalError {
  override name = "InvalidMessageError";
  constructor(where: string, problem: string, options?: { cause?: unknown }) {
    super("invalid_input", `invalid data at ${where}: ${problem}`, { ...options, details: { where } });
  }
}

/** JetStream refused a write because its store is full (nats-server's `max_file_store`, or an account limit). */
export class StorageFullError extends LoominalError {
  override name = "StorageFullError";
  constructor(options?: { cause?: unknown; usedBytes?: number }) {
    const used = options?.usedBytes !== undefined ? ` (${options.usedBytes} bytes in use)` : "";
    super(
      "storage_full",
      `the NATS JetStream store is full${used}: the server's jetstream max_file_store (or the account's storage limit) is reached, so new writes are refused. Free space (finish or fail claimed work, discard dead letters, delete unused streams) or raise max_file_store, then retry`,
      {
        ...(options?.cause !== undefined ? { cause: options.cause } : {}),
        details: { usedBytes: options?.usedBytes },
      },
    );
  }
}

/** JetStream's "insufficient resources" (10023): the store (or an account limit) is full. */
export const JS_INSUFFICIENT_RESOURCES = 10023;

/** Whether `err` is JetStream refusing a write for lack of storage. */
export function isStorageFullError(err: unknown): boolean {
  if (err instanceof StorageFullError) return true;
  if (!(err instanceof Error)) return false;
  const code = (err as { code?: unknown }).code;
  return code === JS_INSUFFICIENT_RESOURCES || /insufficient resources/i.test(err.message);
}

/** A lease is held by another holder. */
export class LeaseHeldError extends LoominalError {
  override name = "LeaseHeldError";
  constructor(name: string, holder: string | undefined) {
    super(
      "lease_held",
      `lease ${name} is held by ${holder ?? "another holder"}; wait for it to be released or expire`,
      {
        details: { name, holder },
      },
    );
  }
}

/** The server is too old for a requested feature. */
export class UnsupportedServerError extends LoominalError {
  override name = "UnsupportedServerError";
  constructor(feature: string, need: string, have: string) {
    super(
      "unsupported_server",
      `${feature} needs nats-server ${need} or newer; this server is ${have}. Upgrade nats-server or do without it.`,
      { details: { feature, need, have } },
    );
  }
}

/**
 * A stream or bucket is missing and this connection may not create it: under the generated NATS
 * permissions (docs/security.md) agents never create streams; an operator provisions them.
 */
export class NotProvisionedError extends LoominalError {
  override name = "NotProvisionedError";
  constructor(kind: "stream" | "bucket", name: string, options?: { cause?: unknown }) {
    super(
      "not_found",
      `${kind} ${name} is not provisioned and this NATS user may not create it: run 'loominal nats-provision' (with the admin credentials from 'loominal nats-config --admin') for this project`,
      { ...options, details: { kind, name } },
    );
  }
}

/** The server refused a publish or subscription because the NATS user lacks the permission. */
export class NatsPermissionError extends LoominalError {
  override name = "NatsPermissionError";
  constructor(what: string, options?: { cause?: unknown }) {
    super(
      "forbidden",
      `the NATS server refused ${what}: this user's permissions do not allow it (see docs/security.md); use credentials of the project it belongs to`,
      { ...options, details: { what } },
    );
  }
}

/** Whether an error (or its cause) is a server permissions violation. */
export function isPermissionViolation(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    if (e instanceof NatsPermissionError || /permissions violation/i.test(e.message)) return true;
  }
  return false;
}

/** Whether an error means the server answered but refused the credentials (or their absence). */
export function isAuthError(err: unknown): boolean {
  if (err instanceof NatsAuthError) return true;
  if (err instanceof AuthorizationError || err instanceof UserAuthenticationExpiredError) return true;
  return (
    err instanceof Error && /authorization violation|authentication (timeout|expired)/i.test(err.message)
  );
}

/**
 * Whether an error means NATS (or JetStream) is not there right now, as opposed to refusing the
 * request. The one classifier every Loominal surface uses, so an outage is always `nats_unavailable`:
 *
 * - no connection: never connected, closed, draining, refused or reset;
 * - a request that got no answer: timeout, no responders;
 * - a request cut by a disconnect ("connection disconnected", what nats.js gives a request or flush in
 *   flight when the server goes away);
 * - JetStream not answering (`JetStreamNotEnabled`, matched by name: nats.js does not export the
 *   class): nats.js reports a JetStream API request nobody
 *   answered this way, which is what a restarting server does until its store is loaded.
 *
 * Credentials refused is never "unavailable" (see isAuthError): retrying will not help.
 */
export function isUnavailableError(err: unknown): boolean {
  if (err instanceof NatsUnavailableError) return true;
  if (err instanceof LoominalError) return err.code === "nats_unavailable";
  if (isAuthError(err)) return false;
  if (
    err instanceof TimeoutError ||
    err instanceof ClosedConnectionError ||
    err instanceof DrainingConnectionError ||
    err instanceof NoRespondersError
  )
    return true;
  if (err instanceof RequestError)
    return (
      isUnavailableError(err.cause) ||
      /timeout|no responders|connection (disconnected|closed)/i.test(err.message)
    );
  if (err instanceof Error) {
    if (err.name === "JetStreamNotEnabled" || err.name === "TimeoutError") return true;
    if (
      "code" in err &&
      typeof err.code === "string" &&
      /ECONNREFUSED|CONNECTION_REFUSED|ECONNRESET|EPIPE/.test(err.code)
    )
      return true;
    if (/connection (closed|refused|disconnected)|CONNECTION_REFUSED|timeout|TIMEOUT/i.test(err.message))
      return true;
  }
  return false;
}

/** The reason an unavailable error gives, worded so that the reader knows what is going on. */
export function describeUnavailable(err: unknown): string {
  if (err instanceof Error && err.name === "JetStreamNotEnabled")
    return `JetStream did not answer (${err.message}): the server is starting, or runs without JetStream (start it with -js)`;
  if (err instanceof Error) return err.message || err.name;
  return String(err);
}
