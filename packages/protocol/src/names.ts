import { createHash } from "node:crypto";
import { z } from "zod";
import { InvalidNameError } from "./errors.js";

/** Rules for the three kinds of identifiers. Each is safe as a NATS subject token and in stream/bucket names. */
export const PROJECT_ID_RE = /^[a-z0-9][a-z0-9-]{0,47}$/;
export const NAME_TOKEN_RE = /^[a-z0-9][a-z0-9_-]{0,63}$/;
export const AGENT_ID_RE = /^[0-9a-f]{32}$/;

export const PROJECT_ID_MAX = 48;
export const NAME_TOKEN_MAX = 64;

/**
 * Project ids that would make a per-project name equal to a shared one: `buckets.memory("personal")`
 * would be the shared `loom-mem-personal`. Checked against every name family in subjects.ts by the
 * property tests in names.test.ts.
 */
export const RESERVED_PROJECT_IDS: readonly string[] = ["personal", "public"];
/** `loom-mem-<p>-ephemeral` is project p's ephemeral memory; a project named `<p>-ephemeral` would own it. */
export const RESERVED_PROJECT_ID_SUFFIXES: readonly string[] = ["-ephemeral"];

/** What a name token names; used only to make error messages precise. */
export type NameKind =
  | "channel"
  | "capability"
  | "boundary"
  | "handle"
  | "category"
  | "target"
  | "agent name"
  | "agent type"
  | "name";

function describe(value: unknown): string {
  return typeof value === "string"
    ? JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}…` : value)
    : typeof value;
}

/**
 * Explains which rule a candidate identifier breaks, or returns undefined when it is valid.
 * The checks run in a fixed order so the message names the first rule that fails.
 */
function explain(value: unknown, kind: string, max: number, allowUnderscore: boolean): string | undefined {
  if (typeof value !== "string") return `${kind} must be a string, got ${describe(value)}`;
  if (value.length === 0) return `${kind} must not be empty`;
  if (value.length > max)
    return `${kind} ${describe(value)} is ${value.length} characters; the limit is ${max}`;
  if (/\s/.test(value)) return `${kind} ${describe(value)} contains whitespace; use '-' instead`;
  if (value.includes("."))
    return `${kind} ${describe(value)} contains '.', which separates NATS subject tokens`;
  if (value.includes("*") || value.includes(">"))
    return `${kind} ${describe(value)} contains a NATS wildcard ('*' or '>')`;
  if (/[A-Z]/.test(value)) return `${kind} ${describe(value)} contains upper case; use lower case only`;
  if (!/^[a-z0-9]/.test(value))
    return `${kind} ${describe(value)} must start with a lower-case letter or digit`;
  if (!allowUnderscore && value.includes("_"))
    return `${kind} ${describe(value)} contains '_'; project ids allow only a-z, 0-9 and '-'`;
  const allowed = allowUnderscore ? /^[a-z0-9_-]+$/ : /^[a-z0-9-]+$/;
  if (!allowed.test(value))
    return `${kind} ${describe(value)} may contain only a-z, 0-9, '-'${allowUnderscore ? " and '_'" : ""}`;
  return undefined;
}

/** Why `value` is not a valid name token, or undefined if it is. */
export function nameTokenProblem(value: unknown, kind: NameKind = "name"): string | undefined {
  // A valid token matches the one pattern that sums up every rule below: answered without building the
  // rule-by-rule checks (names are checked several times per request on hot paths).
  if (typeof value === "string" && NAME_TOKEN_RE.test(value)) return undefined;
  return explain(value, kind, NAME_TOKEN_MAX, true);
}

/** Why `value` is not a valid projectId, or undefined if it is. */
export function projectIdProblem(value: unknown): string | undefined {
  const problem =
    typeof value === "string" && PROJECT_ID_RE.test(value)
      ? undefined
      : explain(value, "projectId", PROJECT_ID_MAX, false);
  if (problem !== undefined || typeof value !== "string") return problem;
  if (RESERVED_PROJECT_IDS.includes(value))
    return `projectId ${describe(value)} is reserved: it would name the shared memory bucket loom-mem-${value}; choose another id`;
  const suffix = RESERVED_PROJECT_ID_SUFFIXES.find((s) => value.endsWith(s));
  if (suffix !== undefined)
    return `projectId ${describe(value)} ends with the reserved suffix '${suffix}': loom-mem-${value} is the ephemeral memory bucket of project ${describe(value.slice(0, -suffix.length))}; choose another id`;
  return undefined;
}

/** Why `value` is not a valid agentId, or undefined if it is. */
export function agentIdProblem(value: unknown): string | undefined {
  if (typeof value !== "string") return `agentId must be a string, got ${describe(value)}`;
  if (!AGENT_ID_RE.test(value))
    return `agentId ${describe(value)} must be exactly 32 lower-case hex characters (as registration returns it)`;
  return undefined;
}

export function assertNameToken(value: unknown, kind: NameKind = "name"): string {
  const problem = nameTokenProblem(value, kind);
  if (problem) throw new InvalidNameError(problem, { kind });
  return value as string;
}

export function assertProjectId(value: unknown): string {
  const problem = projectIdProblem(value);
  if (problem) throw new InvalidNameError(problem, { kind: "projectId" });
  return value as string;
}

export function assertAgentId(value: unknown): string {
  const problem = agentIdProblem(value);
  if (problem) throw new InvalidNameError(problem, { kind: "agentId" });
  return value as string;
}

/**
 * zod schema of a name token whose error message names the broken rule. Its JSON Schema carries the rule
 * as `pattern`, so an agent reading a tool's input schema sees it before it errs.
 */
export function nameToken(kind: NameKind = "name") {
  return z
    .string()
    .superRefine((value, ctx) => {
      const problem = nameTokenProblem(value, kind);
      if (problem) ctx.addIssue({ code: "custom", message: problem });
    })
    .meta({ pattern: NAME_TOKEN_RE.source });
}

export const projectIdSchema = z
  .string()
  .superRefine((value, ctx) => {
    const problem = projectIdProblem(value);
    if (problem) ctx.addIssue({ code: "custom", message: problem });
  })
  .meta({ pattern: PROJECT_ID_RE.source });

export const agentIdSchema = z
  .string()
  .superRefine((value, ctx) => {
    const problem = agentIdProblem(value);
    if (problem) ctx.addIssue({ code: "custom", message: problem });
  })
  .meta({ pattern: AGENT_ID_RE.source });

function sha256Hex(input: string): string {
  return createHash("sha256").update(input).digest("hex");
}

/**
 * The projectId of a project directory: the first 16 hex characters of sha256 of its real path.
 * Pass the already-resolved real path; this module does no I/O.
 */
export function deriveProjectId(realProjectPath: string): string {
  return sha256Hex(realProjectPath).slice(0, 16);
}

/**
 * The agentId of an agent: 32 hex characters of sha256 over hostname, project path and agent name.
 * The same inputs always give the same id, so a restarted agent keeps its identity and inbox.
 */
export function deriveAgentId(input: { hostname: string; projectPath: string; agentName: string }): string {
  assertNameToken(input.agentName, "agent name");
  return sha256Hex(`${input.hostname}\n${input.projectPath}\n${input.agentName}`).slice(0, 32);
}

/**
 * A fresh random id in the agentId format (used for work items, memories, orchestrations): a version-4
 * UUID without its dashes, so 122 random bits. `randomUUID` draws from a pooled entropy buffer, which
 * makes it far cheaper than a `getRandomValues` call per id on hot paths (one id per work claim).
 */
export function randomId(): string {
  const u = crypto.randomUUID();
  return u.slice(0, 8) + u.slice(9, 13) + u.slice(14, 18) + u.slice(19, 23) + u.slice(24);
}

/**
 * The userId behind `personal` scope: the same person on the same host in every project.
 * 32 hex characters of sha256 over hostname and OS user name.
 */
export function deriveUserId(input: { hostname: string; username: string }): string {
  return sha256Hex(`user\n${input.hostname}\n${input.username}`).slice(0, 32);
}
