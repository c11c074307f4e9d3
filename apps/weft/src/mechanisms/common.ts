// Helpers shared by the remote mechanisms: config validation errors, secrets referenced by env name, redaction.
import { LoominalError } from "@loominal/protocol";
import type { z } from "zod";
import { z as zod } from "zod";

/** The name of an environment variable of Weft's process that holds a secret (never the secret itself). */
export const envNameSchema = zod
  .string()
  .regex(
    /^[A-Za-z_][A-Za-z0-9_]*$/,
    "an env variable name: letters, digits and _ (the secret stays in Weft's env)",
  );

/** Where secrets come from: Weft's environment (replaceable in tests). */
export type SecretSource = Readonly<Record<string, string | undefined>>;

/** Parses `config` with `schema` or throws invalid_input naming the field (`config.<path>`). */
export function parseConfig<S extends z.ZodType>(mechanism: string, schema: S, config: unknown): z.infer<S> {
  const r = schema.safeParse(config);
  if (r.success) return r.data;
  throw new LoominalError(
    "invalid_input",
    `invalid ${mechanism} target config: ${r.error.issues.map((i) => `config.${i.path.join(".")}: ${i.message}`).join("; ")}`,
    { details: { field: `config.${r.error.issues[0]?.path.join(".") ?? ""}` } },
  );
}

/** The secret held by env variable `name`, or an error naming the variable (never a value). */
export function secretFrom(source: SecretSource, name: string, what: string): string {
  const value = source[name];
  if (value === undefined || value === "")
    throw new LoominalError(
      "invalid_input",
      `${what}: env variable ${name} is not set in Weft's environment; set it where Weft runs (the target record only names it)`,
      { details: { field: "config" } },
    );
  return value;
}

/** `text` with every secret value replaced by [redacted] (for errors and logs that quote a remote answer). */
export function redact(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const s of secrets) if (s.length >= 4) out = out.split(s).join("[redacted]");
  return out;
}

/** The message of an unknown error, secrets redacted. */
export function errorText(err: unknown, secrets: readonly string[] = []): string {
  return redact(err instanceof Error ? err.message : String(err), secrets);
}

/** Rejects after `ms` with a message saying what timed out and which setting to raise. */
export async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, fail) => {
        timer = setTimeout(
          () => fail(new LoominalError("timeout", `${what} timed out after ${ms} ms (config.timeoutMs)`)),
          ms,
        );
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
