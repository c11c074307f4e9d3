import { existsSync, readFileSync, realpathSync } from "node:fs";
import { hostname, userInfo } from "node:os";
import { join, resolve } from "node:path";
import {
  agentIdProblem,
  ConfigError,
  deriveAgentId,
  deriveProjectId,
  deriveUserId,
  nameTokenProblem,
  type ProjectFile,
  projectFileSchema,
  projectIdProblem,
} from "@loominal/protocol";

export const PROJECT_FILE = ".loominal.json";
export const DEFAULT_NATS_URL = "nats://127.0.0.1:4222";

/** How to reach NATS. Credentials live here and nowhere else; never log this object whole. */
export interface NatsSettings {
  /** One or more comma-separated server URLs (`nats://`, `tls://`). */
  servers: string[];
  credsFile?: string;
  user?: string;
  password?: string;
  token?: string;
  tls?: { caFile?: string; certFile?: string; keyFile?: string };
  /** A name the server shows for this connection. */
  name?: string;
}

/** Everything a Loominal process needs to know about where it is and who it is. */
export interface LoominalConfig {
  projectDir: string;
  projectId: string;
  agentName: string;
  agentId: string;
  userId: string;
  hostname: string;
  nats: NatsSettings;
  file: ProjectFile;
}

export type Env = Record<string, string | undefined>;

/**
 * Loads configuration: environment variables over `.loominal.json` in the project directory over defaults.
 * The project directory is `LOOMINAL_PROJECT_DIR`, else `cwd`. A bad value throws ConfigError naming it.
 */
export function loadConfig(options: { cwd?: string; env?: Env } = {}): LoominalConfig {
  const env = options.env ?? process.env;
  const projectDirRaw = nonEmpty(env.LOOMINAL_PROJECT_DIR) ?? options.cwd ?? process.cwd();
  let projectDir: string;
  try {
    projectDir = realpathSync(resolve(projectDirRaw));
  } catch (cause) {
    throw new ConfigError(`LOOMINAL_PROJECT_DIR ${projectDirRaw} does not exist or cannot be read`, {
      cause,
    });
  }
  const file = readProjectFile(projectDir);

  const projectId = pick(
    env,
    "LOOMINAL_PROJECT_ID",
    file.projectId,
    deriveProjectId(projectDir),
    projectIdProblem,
  );
  const agentName = pick(env, "LOOMINAL_AGENT_NAME", file.agentName, "default", (v) =>
    nameTokenProblem(v, "agent name"),
  );
  const host = nonEmpty(env.LOOMINAL_HOSTNAME) ?? hostname();
  const agentId = pick(
    env,
    "LOOMINAL_AGENT_ID",
    undefined,
    deriveAgentId({ hostname: host, projectPath: projectDir, agentName }),
    agentIdProblem,
  );
  const userId = pick(
    env,
    "LOOMINAL_USER_ID",
    undefined,
    deriveUserId({ hostname: host, username: safeUsername() }),
    agentIdProblem,
  );
  return {
    projectDir,
    projectId,
    agentName,
    agentId,
    userId,
    hostname: host,
    nats: natsSettingsFromEnv(env, file.natsUrl),
    file,
  };
}

/** Reads `NATS_URL`, `NATS_CREDS`, `NATS_USER`, `NATS_PASSWORD`, `NATS_TOKEN`, `NATS_TLS_*`. */
export function natsSettingsFromEnv(env: Env, fileUrl?: string): NatsSettings {
  const url = nonEmpty(env.NATS_URL) ?? fileUrl ?? DEFAULT_NATS_URL;
  const servers = url
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  for (const s of servers) {
    if (!/^(nats|tls|ws|wss):\/\/[^\s]+$/.test(s) && !/^[^\s/:]+(:\d+)?$/.test(s)) {
      throw new ConfigError(
        `NATS_URL contains ${JSON.stringify(redactUrl(s))}, which is not a server URL; use nats://host:port or tls://host:port`,
      );
    }
  }
  const settings: NatsSettings = { servers };
  const creds = nonEmpty(env.NATS_CREDS);
  if (creds) {
    if (!existsSync(creds)) throw new ConfigError(`NATS_CREDS points to ${creds}, which does not exist`);
    settings.credsFile = creds;
  }
  const user = nonEmpty(env.NATS_USER);
  const password = nonEmpty(env.NATS_PASSWORD);
  if (password && !user) throw new ConfigError("NATS_PASSWORD is set without NATS_USER; set both or neither");
  if (user) settings.user = user;
  if (password) settings.password = password;
  const token = nonEmpty(env.NATS_TOKEN);
  if (token) settings.token = token;
  const caFile = nonEmpty(env.NATS_TLS_CA);
  const certFile = nonEmpty(env.NATS_TLS_CERT);
  const keyFile = nonEmpty(env.NATS_TLS_KEY);
  if (caFile || certFile || keyFile) {
    for (const [name, path] of [
      ["NATS_TLS_CA", caFile],
      ["NATS_TLS_CERT", certFile],
      ["NATS_TLS_KEY", keyFile],
    ] as const) {
      if (path && !existsSync(path)) throw new ConfigError(`${name} points to ${path}, which does not exist`);
    }
    settings.tls = {
      ...(caFile ? { caFile } : {}),
      ...(certFile ? { certFile } : {}),
      ...(keyFile ? { keyFile } : {}),
    };
  }
  return settings;
}

/** Reads and validates `.loominal.json`; a missing file gives the defaults. */
export function readProjectFile(projectDir: string): ProjectFile {
  const path = join(projectDir, PROJECT_FILE);
  if (!existsSync(path)) return projectFileSchema.parse({});
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, "utf8"));
  } catch (cause) {
    throw new ConfigError(`${path} is not valid JSON; fix or remove it`, { cause });
  }
  const parsed = projectFileSchema.safeParse(raw);
  if (!parsed.success) {
    const problems = parsed.error.issues
      .map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`)
      .join("; ");
    throw new ConfigError(`${path} is invalid: ${problems}`, { cause: parsed.error });
  }
  return parsed.data;
}

/** The URL with any user:password or token removed, for logs and error messages. */
export function redactUrl(url: string): string {
  return url.replace(/\/\/[^@/]*@/, "//[redacted]@");
}

function pick(
  env: Env,
  variable: string,
  fromFile: string | undefined,
  fallback: string,
  problemOf: (v: string) => string | undefined,
): string {
  const fromEnv = nonEmpty(env[variable]);
  const value = fromEnv ?? fromFile ?? fallback;
  const problem = problemOf(value);
  if (problem) {
    const source = fromEnv !== undefined ? variable : `${PROJECT_FILE} (${variable} not set)`;
    throw new ConfigError(`${source}: ${problem}`);
  }
  return value;
}

function nonEmpty(v: string | undefined): string | undefined {
  return v === undefined || v.trim() === "" ? undefined : v.trim();
}

function safeUsername(): string {
  try {
    return userInfo().username;
  } catch {
    return process.env.USER ?? "unknown";
  }
}
