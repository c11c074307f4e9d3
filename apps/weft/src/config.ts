import { readFileSync } from "node:fs";
import { hostname } from "node:os";
import { isAbsolute, resolve } from "node:path";
import { type Env, type EnvTable, type NatsSettings, natsSettingsFromEnv, parseEnv } from "@loominal/fabric";
import {
  boundaryPolicySchema,
  ConfigError,
  DEFAULT_BOUNDARY,
  nameToken,
  projectIdSchema,
  spinUpMechanismSchema,
} from "@loominal/protocol";
import { parse as parseYaml } from "yaml";
import { z } from "zod";

/** Weft's environment variables (they win over the config file). */
export const WEFT_ENV = {
  WEFT_PORT: {
    schema: z.coerce.number().int().min(0).max(65_535).optional(),
    description: "HTTP port of the REST API (default 3000; 0 picks a free one)",
  },
  WEFT_HOST: {
    schema: z.string().min(1).optional(),
    description: "address the REST API listens on (default 127.0.0.1)",
  },
  WEFT_API_TOKENS: {
    schema: z.string().optional(),
    description:
      "comma-separated API tokens: `token` is an admin token, `token:projA+projB` is limited to those projects. Unset: Weft generates one into .loominal/weft-token",
    secret: true,
  },
  WEFT_CONFIG: {
    schema: z.string().min(1).optional(),
    description: "path of a YAML or JSON config file (boundaries, defaults, targets)",
  },
  WEFT_DATA_DIR: {
    schema: z.string().min(1).optional(),
    description:
      "where Weft writes its token file and spin-up logs (default `.loominal` under the working directory)",
  },
  WEFT_INSTANCE_ID: {
    schema: z
      .string()
      .regex(/^[a-z0-9][a-z0-9_-]{0,63}$/)
      .optional(),
    description: "name of this Weft instance in leases and logs (default: hostname and pid)",
  },
} satisfies EnvTable;

const ms = (min: number) => z.int().min(min);

/** The spin-up defaults a target gets when it does not say otherwise. */
export const spinUpDefaultsSchema = z.strictObject({
  /** How long an agent may take to register after its spin-up started (ms). */
  timeoutMs: ms(100).default(60_000),
  maxConcurrent: z.int().min(1).max(1_000).default(3),
  /** Least time between two spin-ups of one target (ms). */
  cooldownMs: ms(0).default(30_000),
});

const fileBoundarySchema = z.strictObject({
  name: nameToken("boundary"),
  allowedAgentTypes: z.array(nameToken("agent type")).default([]),
  preferredAgentType: nameToken("agent type").optional(),
  spinUp: z.boolean().default(true),
  description: z.string().max(2_000).optional(),
});

export const fileTargetSchema = z.strictObject({
  /** The project the target belongs to. */
  projectId: projectIdSchema,
  name: nameToken("target"),
  description: z.string().max(2_000).optional(),
  mechanism: spinUpMechanismSchema,
  agentType: nameToken("agent type"),
  capabilities: z.array(nameToken("capability")).min(1),
  boundaries: z.array(nameToken("boundary")).default([]),
  config: z.record(z.string(), z.unknown()),
  enabled: z.boolean().default(true),
  maxConcurrent: z.int().min(1).max(1_000).optional(),
  cooldownMs: ms(0).optional(),
  idleTimeoutMs: ms(1_000).optional(),
  timeoutMs: ms(100).optional(),
});
export type FileTarget = z.infer<typeof fileTargetSchema>;

/** The config file (YAML or JSON). Every field is optional. */
export const weftFileSchema = z.strictObject({
  port: z.int().min(0).max(65_535).optional(),
  host: z.string().min(1).optional(),
  /** Routing policy per boundary. `default` accepts every agent type unless declared here. */
  boundaries: z.array(fileBoundarySchema).default([]),
  defaults: z
    .strictObject({
      /** How long an agent Weft started may have no work before it is asked to shut down (ms). */
      idleTimeoutMs: ms(1_000).default(300_000),
      /** How long an agent asked to shut down may take before its mechanism stops it (ms). */
      shutdownGraceMs: ms(0).default(30_000),
      /** How often the spin-up, idle and health loops run (ms). */
      loopIntervalMs: ms(100).default(2_000),
      /** How often each enabled target's health check runs (ms); 0: only when asked. */
      healthCheckIntervalMs: ms(0).default(60_000),
      /**
       * How often the leader asks a mechanism how a spin-up that has not registered yet is doing (ms), so
       * one whose Job failed, run was cancelled or process died fails at once with the mechanism's reason;
       * 0: only the registration deadline fails it.
       */
      statusPollIntervalMs: ms(0).default(5_000),
      spinUp: spinUpDefaultsSchema.default(spinUpDefaultsSchema.parse({})),
    })
    .default({
      idleTimeoutMs: 300_000,
      shutdownGraceMs: 30_000,
      loopIntervalMs: 2_000,
      healthCheckIntervalMs: 60_000,
      statusPollIntervalMs: 5_000,
      spinUp: spinUpDefaultsSchema.parse({}),
    }),
  /** Targets created (if missing) at start. */
  targets: z.array(fileTargetSchema).default([]),
});
export type WeftFile = z.infer<typeof weftFileSchema>;

export type ApiToken =
  | { kind: "admin"; token: string }
  | { kind: "project"; token: string; projects: readonly string[] };

export interface WeftConfig {
  port: number;
  host: string;
  /** Tokens from WEFT_API_TOKENS; empty when Weft must generate one. */
  tokens: ApiToken[];
  dataDir: string;
  instanceId: string;
  nats: NatsSettings;
  /** The file it was read from, if any. */
  configFile: string | undefined;
  file: WeftFile;
  boundaries: z.infer<typeof boundaryPolicySchema>[];
}

/** Reads and validates a YAML or JSON config file; errors name the path and the field. */
export function readConfigFile(path: string): WeftFile {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (cause) {
    throw new ConfigError(`WEFT_CONFIG ${path} cannot be read: ${(cause as Error).message}`, { cause });
  }
  let raw: unknown;
  try {
    raw = /\.json$/i.test(path) ? JSON.parse(text) : parseYaml(text);
  } catch (cause) {
    throw new ConfigError(
      `${path} is not valid ${/\.json$/i.test(path) ? "JSON" : "YAML"}: ${(cause as Error).message}`,
      {
        cause,
      },
    );
  }
  const r = weftFileSchema.safeParse(raw ?? {});
  if (!r.success) {
    const problems = r.error.issues.map((i) => `${path}: ${i.path.join(".") || "(file)"}: ${i.message}`);
    throw new ConfigError(problems.join("; "), { details: { file: path, problems } });
  }
  const seen = new Set<string>();
  for (const b of r.data.boundaries) {
    if (seen.has(b.name)) throw new ConfigError(`${path}: boundaries: ${b.name} is declared twice`);
    seen.add(b.name);
  }
  return r.data;
}

/** Parses WEFT_API_TOKENS: `admin-token,limited-token:projA+projB`. */
export function parseTokens(value: string | undefined): ApiToken[] {
  if (value === undefined || value.trim() === "") return [];
  const tokens: ApiToken[] = [];
  value.split(",").forEach((part, index) => {
    const entry = part.trim();
    if (entry === "") return;
    const colon = entry.indexOf(":");
    const token = colon === -1 ? entry : entry.slice(0, colon);
    if (token.length < 16)
      throw new ConfigError(
        `WEFT_API_TOKENS entry ${index + 1} has a token shorter than 16 characters; use long random tokens (openssl rand -hex 24)`,
      );
    if (colon === -1) {
      tokens.push({ kind: "admin", token });
      return;
    }
    const projects = entry
      .slice(colon + 1)
      .split("+")
      .map((p) => p.trim());
    for (const p of projects) {
      const r = projectIdSchema.safeParse(p);
      if (!r.success)
        throw new ConfigError(
          `WEFT_API_TOKENS entry ${index + 1} names project ${JSON.stringify(p)}: ${r.error.issues[0]?.message ?? "invalid"}`,
        );
    }
    tokens.push({ kind: "project", token, projects });
  });
  return tokens;
}

/** Weft's configuration: environment over the config file over defaults. */
export function loadWeftConfig(options: { env?: Env; cwd?: string } = {}): WeftConfig {
  const env = options.env ?? process.env;
  const cwd = options.cwd ?? process.cwd();
  const vars = parseEnv(WEFT_ENV, env);
  const configFile = vars.WEFT_CONFIG === undefined ? undefined : resolve(cwd, vars.WEFT_CONFIG);
  const file = configFile ? readConfigFile(configFile) : weftFileSchema.parse({});
  const dataDir = vars.WEFT_DATA_DIR ?? ".loominal";
  const policies = file.boundaries.map((b) =>
    boundaryPolicySchema.parse({
      boundary: b.name,
      allowedAgentTypes: b.allowedAgentTypes,
      spinUp: b.spinUp,
      ...(b.preferredAgentType !== undefined ? { preferredAgentType: b.preferredAgentType } : {}),
      ...(b.description !== undefined ? { description: b.description } : {}),
    }),
  );
  if (!policies.some((p) => p.boundary === DEFAULT_BOUNDARY))
    policies.push(boundaryPolicySchema.parse({ boundary: DEFAULT_BOUNDARY }));
  return {
    port: vars.WEFT_PORT ?? file.port ?? 3000,
    host: vars.WEFT_HOST ?? file.host ?? "127.0.0.1",
    tokens: parseTokens(vars.WEFT_API_TOKENS),
    dataDir: isAbsolute(dataDir) ? dataDir : resolve(cwd, dataDir),
    instanceId: vars.WEFT_INSTANCE_ID ?? `${hostnameToken()}-${process.pid}`,
    nats: natsSettingsFromEnv(env),
    configFile,
    file,
    boundaries: policies,
  };
}

function hostnameToken(): string {
  const h = (hostname() || "weft").toLowerCase().replace(/[^a-z0-9_-]/g, "-");
  return /^[a-z0-9]/.test(h) ? h.slice(0, 40) : `w${h.slice(0, 39)}`;
}
