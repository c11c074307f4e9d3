import { createHmac } from "node:crypto";
import type { Logger } from "@loominal/fabric";
import { LoominalError, type TargetRecord } from "@loominal/protocol";
import { z } from "zod";
import { envNameSchema, errorText, parseConfig, redact, type SecretSource, secretFrom } from "./common.js";
import type { HealthResult, Mechanism, MechanismHandle, RemoteStatus, StartRequest } from "./types.js";

const SECRET_LOOKING_HEADER = /authorization|cookie|token|secret|key|password|signature/i;
const headerName = z.string().regex(/^[A-Za-z0-9-]+$/, "a header name: letters, digits and -");

/**
 * `webhook` target config: an HTTP request that asks some other system to start an agent.
 * Secrets are named by env variable (`secretHeaders`, `signingSecretEnv`), never written in the record.
 */
export const webhookConfigSchema = z.strictObject({
  url: z.url({ protocol: /^https?$/, error: "url must be an http(s) URL" }),
  method: z.enum(["POST", "PUT", "PATCH", "GET"]).default("POST"),
  /** Non-secret headers. Names that look like credentials must go in secretHeaders. */
  headers: z
    .record(headerName, z.string().max(4_000))
    .default({})
    .refine((h) => !Object.keys(h).some((k) => SECRET_LOOKING_HEADER.test(k)), {
      error: "a header that looks like a credential goes in secretHeaders as { name: ENV_VARIABLE }",
    }),
  /** Headers whose value is read from an env variable of Weft's process when the request is sent. */
  secretHeaders: z.record(headerName, envNameSchema).default({}),
  /**
   * The body, with `{{spinUpId}}`, `{{targetId}}`, `{{projectId}}`, `{{targetName}}` and `{{env.NAME}}`
   * (any variable of the agent env) replaced; values are JSON-escaped when contentType is JSON.
   * Default: a JSON object `{ spinUpId, targetId, projectId, targetName, env }`.
   */
  bodyTemplate: z.string().max(64_000).optional(),
  contentType: z.string().default("application/json"),
  successCodes: z.array(z.int().min(100).max(599)).min(1).default([200, 201, 202, 204]),
  timeoutMs: z.int().min(100).max(300_000).default(10_000),
  /** Env variable holding the HMAC-SHA256 key; the request then carries `signatureHeader: sha256=<hex>`. */
  signingSecretEnv: envNameSchema.optional(),
  signatureHeader: headerName.default("X-Loominal-Signature-256"),
  /** Called with `{ spinUpId, remoteId? }` to stop an agent; without it stop only forgets the spin-up. */
  stopUrl: z.url({ protocol: /^https?$/ }).optional(),
  stopMethod: z.enum(["POST", "DELETE", "PUT"]).default("POST"),
  /** GET `statusUrl?spinUpId=…` answers `{ state, message? }`. */
  statusUrl: z.url({ protocol: /^https?$/ }).optional(),
  /** GET; a success code means healthy. Without it the health check only verifies config and secrets. */
  healthUrl: z.url({ protocol: /^https?$/ }).optional(),
});
export type WebhookConfig = z.infer<typeof webhookConfigSchema>;

/** What a webhook spin-up keeps (no secret: the config only names env variables). */
const handleSchema = z.object({
  spinUpId: z.string(),
  remoteId: z.string().optional(),
  config: webhookConfigSchema,
});

function fill(template: string, values: Record<string, string>, json: boolean): string {
  return template.replace(/\{\{\s*([A-Za-z0-9_.]+)\s*\}\}/g, (whole, key: string) => {
    const v = values[key];
    if (v === undefined) return whole;
    return json ? JSON.stringify(v).slice(1, -1) : v;
  });
}

/** The error code for an unexpected HTTP status of a remote API. */
export function httpErrorCode(status: number): "forbidden" | "not_found" | "conflict" | "internal" {
  if (status === 401 || status === 403) return "forbidden";
  if (status === 404) return "not_found";
  if (status === 409) return "conflict";
  return "internal";
}

/** HMAC-SHA256 of `body` under `secret`, as `sha256=<hex>` (the form receivers compare against). */
export function webhookSignature(secret: string, body: string): string {
  return `sha256=${createHmac("sha256", secret).update(body).digest("hex")}`;
}

/** Starts agents by calling an HTTP endpoint (a CI system, a serverless function, an internal service). */
export class WebhookMechanism implements Mechanism {
  readonly name = "webhook" as const;
  #logger: Logger;
  #secrets: SecretSource;

  constructor(options: { logger: Logger; secrets?: SecretSource }) {
    this.#logger = options.logger;
    this.#secrets = options.secrets ?? process.env;
  }

  validateConfig(config: unknown): Record<string, unknown> {
    return parseConfig("webhook", webhookConfigSchema, config);
  }

  /** Headers with secrets resolved, and the secret values (to redact from anything quoted back). */
  #headers(
    config: WebhookConfig,
    body: string | undefined,
  ): { headers: Record<string, string>; secrets: string[] } {
    const headers: Record<string, string> = { ...config.headers };
    const secrets: string[] = [];
    for (const [name, env] of Object.entries(config.secretHeaders)) {
      const v = secretFrom(this.#secrets, env, `webhook header ${name}`);
      headers[name] = v;
      secrets.push(v);
    }
    if (body !== undefined) headers["content-type"] = config.contentType;
    if (config.signingSecretEnv) {
      const key = secretFrom(this.#secrets, config.signingSecretEnv, "webhook signing secret");
      secrets.push(key);
      headers[config.signatureHeader] = webhookSignature(key, body ?? "");
    }
    return { headers, secrets };
  }

  async #call(
    what: string,
    config: WebhookConfig,
    url: string,
    method: string,
    body: string | undefined,
    successCodes: readonly number[],
  ): Promise<{ status: number; text: string }> {
    const { headers, secrets } = this.#headers(config, body);
    let res: Response;
    try {
      res = await fetch(url, {
        method,
        headers,
        ...(body !== undefined && method !== "GET" ? { body } : {}),
        signal: AbortSignal.timeout(config.timeoutMs),
        redirect: "manual",
      });
    } catch (err) {
      const cause = (err as { cause?: unknown }).cause;
      const reason =
        err instanceof Error && (err.name === "TimeoutError" || err.name === "AbortError")
          ? `no answer within ${config.timeoutMs} ms (config.timeoutMs)`
          : errorText(cause ?? err, secrets);
      throw new LoominalError(
        err instanceof Error && err.name === "TimeoutError" ? "timeout" : "internal",
        `${what}: ${method} ${url} failed: ${reason}`,
      );
    }
    const text = redact((await res.text().catch(() => "")).slice(0, 2_000), secrets);
    if (!successCodes.includes(res.status))
      throw new LoominalError(
        httpErrorCode(res.status),
        `${what}: ${method} ${url} answered ${res.status}${text ? ` (${text.slice(0, 300)})` : ""}; ` +
          `expected one of ${successCodes.join(", ")} (config.successCodes)` +
          (res.status === 401 || res.status === 403
            ? "; check the secret env variables the target names (secretHeaders, signingSecretEnv)"
            : ""),
      );
    return { status: res.status, text };
  }

  async start(request: StartRequest): Promise<MechanismHandle> {
    const config = webhookConfigSchema.parse(request.target.config);
    const json = /json/i.test(config.contentType);
    const values: Record<string, string> = {
      spinUpId: request.spinUpId,
      targetId: request.target.targetId,
      projectId: request.target.projectId,
      targetName: request.target.name,
    };
    for (const [k, v] of Object.entries(request.env)) values[`env.${k}`] = v;
    const body =
      config.bodyTemplate !== undefined
        ? fill(config.bodyTemplate, values, json)
        : JSON.stringify({
            spinUpId: request.spinUpId,
            targetId: request.target.targetId,
            projectId: request.target.projectId,
            targetName: request.target.name,
            env: request.env,
          });
    const { text } = await this.#call(
      "webhook start",
      config,
      config.url,
      config.method,
      body,
      config.successCodes,
    );
    let remoteId: string | undefined;
    try {
      const parsed = JSON.parse(text) as unknown;
      if (
        parsed &&
        typeof parsed === "object" &&
        "id" in parsed &&
        ["string", "number"].includes(typeof parsed.id)
      )
        remoteId = String(parsed.id);
    } catch {
      // a body that is not JSON carries no id
    }
    this.#logger.info(
      { spinUpId: request.spinUpId, url: config.url, remoteId },
      "webhook called to start an agent",
    );
    return { spinUpId: request.spinUpId, ...(remoteId ? { remoteId } : {}), config };
  }

  async stop(handle: MechanismHandle, _options: { graceMs: number }): Promise<void> {
    const h = handleSchema.safeParse(handle);
    if (!h.success || !h.data.config.stopUrl) return;
    const body = JSON.stringify({
      spinUpId: h.data.spinUpId,
      ...(h.data.remoteId ? { remoteId: h.data.remoteId } : {}),
    });
    // 404/410: the remote side no longer knows it, which is what stop wants.
    await this.#call("webhook stop", h.data.config, h.data.config.stopUrl, h.data.config.stopMethod, body, [
      ...h.data.config.successCodes,
      404,
      410,
    ]);
  }

  async status(handle: MechanismHandle): Promise<RemoteStatus> {
    const h = handleSchema.safeParse(handle);
    if (!h.success) return { state: "unknown", message: "not a webhook spin-up handle" };
    const { config, spinUpId } = h.data;
    if (!config.statusUrl) return { state: "unknown", message: "the target has no statusUrl" };
    const url = new URL(config.statusUrl);
    url.searchParams.set("spinUpId", spinUpId);
    const { text } = await this.#call("webhook status", config, url.toString(), "GET", undefined, [
      ...config.successCodes,
      404,
    ]);
    const r = z
      .object({
        state: z.enum(["pending", "running", "succeeded", "failed", "gone", "unknown"]),
        message: z.string().optional(),
      })
      .safeParse(
        (() => {
          try {
            return JSON.parse(text);
          } catch {
            return undefined;
          }
        })(),
      );
    return r.success
      ? { state: r.data.state, message: r.data.message ?? r.data.state }
      : { state: "unknown", message: "statusUrl did not answer { state, message? }" };
  }

  async test(target: TargetRecord): Promise<HealthResult> {
    try {
      const config = parseConfig("webhook", webhookConfigSchema, target.config);
      if (!config.healthUrl) {
        this.#headers(config, "");
        return { ok: true, message: "config valid and its secrets set (no healthUrl to call)" };
      }
      const { status } = await this.#call(
        "webhook health",
        config,
        config.healthUrl,
        "GET",
        undefined,
        config.successCodes,
      );
      return { ok: true, message: `${config.healthUrl} answered ${status}` };
    } catch (err) {
      return { ok: false, message: errorText(err) };
    }
  }
}
