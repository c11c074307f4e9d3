import { ConfigError } from "@loominal/protocol";
import type { z } from "zod";
import type { Env } from "./config.js";

/** One environment variable of an app: how to parse it and what it means (for the docs table). */
export interface EnvVarSpec<S extends z.ZodType = z.ZodType> {
  /** Parses the raw string (use `z.coerce.number()`, `z.stringbool()`, …); `.default()` covers "unset". */
  schema: S;
  description: string;
  /** Never echo the value in an error message or the docs. */
  secret?: boolean;
}

/** An app's variables, keyed by variable name. */
export type EnvTable = Record<string, EnvVarSpec>;

/** The parsed values, keyed by variable name. */
export type EnvValues<T extends EnvTable> = { [K in keyof T]: z.output<T[K]["schema"]> };

/**
 * Parses an app's environment variables with zod, each by its own schema. A blank value counts as unset.
 * Every bad variable is reported at once, in one ConfigError whose message names each variable (and, unless
 * it is secret, the value given).
 *
 * ```ts
 * const WEFT_ENV = {
 *   WEFT_PORT: { schema: z.coerce.number().int().min(1).max(65535).default(8080), description: "HTTP port" },
 * } satisfies EnvTable;
 * const env = parseEnv(WEFT_ENV);   // env.WEFT_PORT: number
 * ```
 */
export function parseEnv<T extends EnvTable>(table: T, env: Env = process.env): EnvValues<T> {
  const out: Record<string, unknown> = {};
  const problems: string[] = [];
  for (const [name, spec] of Object.entries(table)) {
    const raw = env[name];
    const given = raw === undefined || raw.trim() === "" ? undefined : raw;
    const parsed = spec.schema.safeParse(given);
    if (parsed.success) {
      out[name] = parsed.data;
      continue;
    }
    const why = parsed.error.issues.map((i) => i.message).join("; ");
    const shown =
      given === undefined
        ? "is not set"
        : spec.secret
          ? "is invalid"
          : `is ${JSON.stringify(given.slice(0, 80))}`;
    problems.push(`${name} ${shown}: ${why} (${spec.description})`);
  }
  if (problems.length > 0) throw new ConfigError(problems.join("; "), { details: { variables: problems } });
  return out as EnvValues<T>;
}

/** The variables as a Markdown table (variable, default, meaning) for an app's README. */
export function envTableMarkdown(table: EnvTable): string {
  const rows = Object.entries(table).map(([name, spec]) => {
    const parsed = spec.schema.safeParse(undefined);
    const fallback = spec.secret
      ? ""
      : parsed.success && parsed.data !== undefined
        ? `\`${String(parsed.data)}\``
        : parsed.success
          ? ""
          : "required";
    return `| \`${name}\` | ${fallback} | ${spec.description} |`;
  });
  return ["| variable | default | meaning |", "|---|---|---|", ...rows].join("\n");
}
