// Audit records of target mutations: who (the caller's identity, never its token), when, what changed,
// with every value that may be a secret redacted.
import { createHash } from "node:crypto";
import type { TargetRecord } from "@loominal/protocol";

export const REDACTED = "[redacted]";

/** The audit identity of an API token: its kind and the first 12 hex of its SHA-256 (never the token). */
export function tokenIdentity(kind: "admin" | "project", token: string): string {
  return `${kind}-token:sha256:${createHash("sha256").update(token, "utf8").digest("hex").slice(0, 12)}`;
}

/** Config keys whose values name where a secret is (an env variable, a file), not the secret itself. */
const REFERENCE_KEY = /(Env|Path|Name)$/;
/** Keys whose value may be a credential. */
const SECRET_KEY = /token|secret|passw|credential|auth|cookie|private|signature|api[-_]?key|^key$/i;
/** Maps whose values are whatever the agent gets in its environment: any may be a credential. */
const VALUE_MAPS = new Set(["env", "headers", "inputs"]);

/** Maps whose values name where secrets are (env variable names, Kubernetes Secret references). */
const REFERENCE_MAPS = new Set(["secretHeaders", "secretEnv", "envInputs"]);

/** A target config with every value that may be a secret replaced by [redacted] (names and paths stay). */
export function redactConfig(value: unknown, key = "", parentKey = ""): unknown {
  if (REFERENCE_MAPS.has(key)) return value;
  if (Array.isArray(value)) return value.map((v) => redactConfig(v, key, parentKey));
  if (value && typeof value === "object")
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, redactConfig(v, k, key)]));
  if (typeof value !== "string") return value;
  if (VALUE_MAPS.has(parentKey)) return REDACTED;
  if (REFERENCE_KEY.test(key)) return value;
  if (SECRET_KEY.test(key)) return REDACTED;
  // Credentials in a URL's user info or query string.
  if (/^[a-z]+:\/\//i.test(value)) return redactUrl(value);
  return value;
}

function redactUrl(value: string): string {
  try {
    const url = new URL(value);
    if (url.username || url.password) {
      url.username = url.username ? REDACTED : "";
      url.password = url.password ? REDACTED : "";
    }
    for (const k of [...url.searchParams.keys()]) if (SECRET_KEY.test(k)) url.searchParams.set(k, REDACTED);
    return url.toString();
  } catch {
    return value;
  }
}

/** Fields of a target its users change (not the bookkeeping Weft itself updates). */
const AUDITED_FIELDS = [
  "name",
  "description",
  "mechanism",
  "agentType",
  "capabilities",
  "boundaries",
  "config",
  "enabled",
  "maxConcurrent",
  "cooldownMs",
  "idleTimeoutMs",
  "timeoutMs",
  "tags",
] as const;

function flatten(value: unknown, prefix: string, out: Map<string, unknown>): void {
  if (value && typeof value === "object" && !Array.isArray(value)) {
    const entries = Object.entries(value);
    if (entries.length === 0) out.set(prefix, {});
    for (const [k, v] of entries) flatten(v, `${prefix}.${k}`, out);
    return;
  }
  out.set(prefix, value);
}

export interface FieldChange {
  field: string;
  from?: unknown;
  to?: unknown;
}

/**
 * What changed between two versions of a target (either may be absent: created, deleted), field by
 * field (`config.env.NAME` for nested config), values redacted. A secret that changed shows as a change
 * of a redacted value, so the change is visible and the value is not.
 */
export function targetChanges(
  before: TargetRecord | undefined,
  after: TargetRecord | undefined,
): FieldChange[] {
  const flat = (t: TargetRecord | undefined) => {
    const raw = new Map<string, unknown>();
    const shown = new Map<string, unknown>();
    if (!t) return { raw, shown };
    for (const f of AUDITED_FIELDS) {
      if (t[f] === undefined) continue;
      flatten(t[f], f, raw);
      flatten(f === "config" ? redactConfig(t.config) : t[f], f, shown);
    }
    return { raw, shown };
  };
  const a = flat(before);
  const b = flat(after);
  const fields = [...new Set([...a.raw.keys(), ...b.raw.keys()])].sort();
  const changes: FieldChange[] = [];
  for (const field of fields) {
    const x = a.raw.get(field);
    const y = b.raw.get(field);
    if (JSON.stringify(x) === JSON.stringify(y)) continue;
    changes.push({
      field,
      ...(a.shown.has(field) ? { from: a.shown.get(field) } : {}),
      ...(b.shown.has(field) ? { to: b.shown.get(field) } : {}),
    });
  }
  return changes;
}

/** Who changed a target: a token's identity, a NATS caller's project, Weft's config file. */
export type Actor = string;

export interface TargetAudit {
  action: "created" | "updated" | "deleted" | "enabled" | "disabled";
  actor: Actor;
  at: string;
  targetId: string;
  name: string;
  changes: FieldChange[];
}
