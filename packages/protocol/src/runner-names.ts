import { createHash } from "node:crypto";
import { InvalidNameError } from "./errors.js";
import { NAME_TOKEN_RE } from "./names.js";

/**
 * Names of the runner's NATS things. Run ids, replica ids and free-form ids from HTTP callers (user ids,
 * session ids, channel topics, memory keys) are turned into subject/key tokens here so that no dot or
 * wildcard from input reaches a subject or a key, and two different inputs never share a token.
 */

/** A run id: 32 lower-case hex; the first 16 are the run's user token (see runnerUserToken). */
export const RUN_ID_RE = /^[0-9a-f]{32}$/;

export function assertRunId(value: unknown): string {
  if (typeof value === "string" && RUN_ID_RE.test(value)) return value;
  throw new InvalidNameError(
    `run id ${JSON.stringify(String(value).slice(0, 80))} must be 32 lower-case hex characters`,
    { kind: "runId" },
  );
}

/** A replica id is a name token (`^[a-z0-9][a-z0-9_-]{0,63}$`). */
export function assertReplicaId(value: unknown): string {
  if (typeof value === "string" && NAME_TOKEN_RE.test(value)) return value;
  throw new InvalidNameError(
    `replica id ${JSON.stringify(String(value).slice(0, 80))} must match ${NAME_TOKEN_RE} (lower-case letters, digits, - and _)`,
    { kind: "replicaId" },
  );
}

/** Longest free-form id (user, tenant, session, topic, memory key) the runner accepts, in characters. */
export const RUNNER_TEXT_MAX = 256;

/**
 * A free-form id as a subject/key token: unpadded base64url of its UTF-8 bytes, which is injective and
 * uses only `[A-Za-z0-9_-]`. Empty strings and ids longer than RUNNER_TEXT_MAX are refused.
 */
export function runnerTextToken(value: unknown, what = "id"): string {
  if (typeof value !== "string" || value.length === 0 || value.length > RUNNER_TEXT_MAX) {
    throw new InvalidNameError(`${what} must be a string of 1 to ${RUNNER_TEXT_MAX} characters`, {
      kind: what,
    });
  }
  return Buffer.from(value, "utf8").toString("base64url");
}

/** 16 hex of sha256 over the user id: the prefix of every run id of that user, so runs list by user. */
export function runnerUserToken(userId: string): string {
  runnerTextToken(userId, "user_id");
  return createHash("sha256").update(`runner-user\n${userId}`).digest("hex").slice(0, 16);
}

/** An agent_id as the runner accepts it (the runtime it replaces used the same rule). */
export const RUNNER_AGENT_ID_RE = /^[A-Za-z0-9_-]{1,128}$/;

export function assertRunnerAgentId(value: unknown): string {
  if (typeof value === "string" && RUNNER_AGENT_ID_RE.test(value)) return value;
  throw new InvalidNameError(`agent_id must match ${RUNNER_AGENT_ID_RE}`, { kind: "agent_id" });
}
