import { existsSync, readFileSync, realpathSync } from "node:fs";
import { hostname, userInfo } from "node:os";
import { dirname, join, resolve } from "node:path";
import {
  agentIdProblem,
  ConfigError,
  deriveAgentId,
  deriveProjectId,
  deriveUserId,
  inboxPrefixFor,
  nameTokenProblem,
  PROJECT_FILE_KEYS,
  type ProjectFile,
  projectFileSchema,
  projectIdProblem,
} from "@loominal/protocol";

export const PROJECT_FILE = ".loominal.json";
export const DEFAULT_NATS_URL = "nats://127.0.0.1:4222";

/** How to reach NATS. Credentials live here and nowhere else; never log this object whole. */
export interface NatsSettings {
  /** Server URLs (`nats://host:port`, `tls://host:port`), never with credentials in them. */
  servers: string[];
  credsFile?: string;
  user?: string;
  password?: string;
  token?: string;
  /** When present, the connection requires TLS (a `tls://` URL or any `NATS_TLS_*` variable). */
  tls?: { caFile?: string; certFile?: string; keyFile?: string };
  /** A name the server shows for this connection. */
  name?: string;
  /**
   * Where this connection's replies go (`<prefix>.…`): `NATS_INBOX_PREFIX`, else `_INBOX_<NATS_USER>`
   * when a user is set (what `loominal nats-config` lets each user subscribe to), else nats.js's `_INBOX`.
   */
  inboxPrefix?: string;
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
  /** Where the server URL came from: `NATS_URL`, the project file's `natsUrl`, or the default. */
  natsUrlSource: NatsUrlSource;
  file: ProjectFile;
}

export type NatsUrlSource = "env" | "file" | "default";

export type Env = Record<string, string | undefined>;

/**
 * The project directory of a process started in `dir`: the nearest directory at or above it that holds
 * `.loominal.json`, else the root of the git repository it is in, else `dir` itself. The search stops at
 * the repository root (a directory holding `.git`): a repository is a project boundary, so a
 * `.loominal.json` above it (say, in the home directory) does not swallow every repository below.
 */
export function findProjectDir(dir: string): string {
  for (let at = dir; ; at = dirname(at)) {
    if (existsSync(join(at, PROJECT_FILE)) || existsSync(join(at, ".git"))) return at;
    if (dirname(at) === at) return dir;
  }
}

/**
 * Loads configuration: environment variables over `.loominal.json` in the project directory over defaults.
 * The project directory is `LOOMINAL_PROJECT_DIR`, else the one `findProjectDir` finds from `cwd` (so
 * every directory of a repository is one project). A bad value throws ConfigError naming it.
 */
export function loadConfig(options: { cwd?: string; env?: Env } = {}): LoominalConfig {
  const env = options.env ?? process.env;
  const explicitDir = nonEmpty(env.LOOMINAL_PROJECT_DIR);
  const projectDirRaw = explicitDir ?? options.cwd ?? process.cwd();
  let projectDir: string;
  try {
    projectDir = realpathSync(resolve(projectDirRaw));
  } catch (cause) {
    throw new ConfigError(
      `${explicitDir ? "LOOMINAL_PROJECT_DIR" : "the working directory"} ${projectDirRaw} does not exist or cannot be read`,
      { cause },
    );
  }
  if (explicitDir === undefined) projectDir = findProjectDir(projectDir);
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
    nats: natsSettingsFromEnv(env, file.natsUrl, join(projectDir, PROJECT_FILE)),
    natsUrlSource:
      nonEmpty(env.NATS_URL) !== undefined ? "env" : file.natsUrl !== undefined ? "file" : "default",
    file,
  };
}

/**
 * Reads `NATS_URL` (else the project file's `natsUrl`, else the default), `NATS_CREDS`, `NATS_USER`,
 * `NATS_PASSWORD`, `NATS_TOKEN`, `NATS_TLS_*`.
 *
 * nats.js ignores credentials written into a server URL, so `nats://user:password@host` and
 * `nats://token@host` are taken apart here: the credentials (percent-decoded; the last `@` ends them, so a
 * password may contain `@` or `/`) go to the authenticator and the server list keeps only `scheme://host:port`.
 * `NATS_USER` / `NATS_PASSWORD` / `NATS_TOKEN` may repeat what the URL says; if they say something else,
 * that is a ConfigError rather than a guess. A `tls://` URL makes TLS required for the connection.
 * Errors name the source of the bad value and never contain a credential.
 */
export function natsSettingsFromEnv(env: Env, fileUrl?: string, fileName = PROJECT_FILE): NatsSettings {
  const envUrl = nonEmpty(env.NATS_URL);
  const source =
    envUrl !== undefined
      ? "NATS_URL"
      : fileUrl !== undefined
        ? `${fileName} natsUrl`
        : "the default NATS URL";
  const url = envUrl ?? fileUrl ?? DEFAULT_NATS_URL;
  const parsed = splitServerList(url).map((entry) => parseServerUrl(entry, url, source));
  if (parsed.length === 0) throw new ConfigError(`${source} names no server; use nats://host:port`);

  const fromUrl = parsed.find((p) => p.auth !== undefined)?.auth;
  if (fromUrl !== undefined && envUrl === undefined) {
    throw new ConfigError(
      `${source} contains credentials, but ${PROJECT_FILE} is usually committed: remove them and set NATS_USER/NATS_PASSWORD or NATS_TOKEN (or put the URL in NATS_URL)`,
    );
  }
  if (parsed.some((p) => p.auth !== undefined && !sameAuth(p.auth, fromUrl))) {
    throw new ConfigError(
      `${source} gives different credentials for different servers; one connection has one set: write them once, or use NATS_USER/NATS_PASSWORD`,
    );
  }
  const tlsCount = parsed.filter((p) => p.scheme === "tls").length;
  if (tlsCount > 0 && tlsCount < parsed.length) {
    throw new ConfigError(
      `${source} mixes tls:// with other servers; TLS is one setting of the connection, so use tls:// for every server`,
    );
  }

  const settings: NatsSettings = { servers: parsed.map((p) => p.url) };
  const creds = nonEmpty(env.NATS_CREDS);
  if (creds) {
    if (!existsSync(creds)) throw new ConfigError(`NATS_CREDS points to ${creds}, which does not exist`);
    settings.credsFile = creds;
  }
  const user = nonEmpty(env.NATS_USER);
  const password = secret(env.NATS_PASSWORD);
  const token = secret(env.NATS_TOKEN);
  if (password && !user) throw new ConfigError("NATS_PASSWORD is set without NATS_USER; set both or neither");
  if (fromUrl && "user" in fromUrl) {
    if (token !== undefined)
      throw new ConfigError(
        `${source} carries a user and password and NATS_TOKEN is set too; use one kind of credentials`,
      );
    if (
      (user !== undefined && user !== fromUrl.user) ||
      (password !== undefined && password !== fromUrl.password)
    )
      throw new ConfigError(
        `${source} carries a user and password that differ from NATS_USER/NATS_PASSWORD; remove one of the two`,
      );
    settings.user = fromUrl.user;
    settings.password = fromUrl.password;
  } else if (fromUrl && "token" in fromUrl) {
    if (user !== undefined)
      throw new ConfigError(
        `${source} carries a token and NATS_USER is set too; use one kind of credentials`,
      );
    if (token !== undefined && token !== fromUrl.token)
      throw new ConfigError(`${source} carries a token that differs from NATS_TOKEN; remove one of the two`);
    settings.token = fromUrl.token;
  } else {
    if (user) settings.user = user;
    if (password) settings.password = password;
    if (token) settings.token = token;
  }

  const inboxPrefix = nonEmpty(env.NATS_INBOX_PREFIX);
  if (inboxPrefix !== undefined) {
    if (!/^[A-Za-z0-9_$-]+(\.[A-Za-z0-9_$-]+)*$/.test(inboxPrefix))
      throw new ConfigError(
        `NATS_INBOX_PREFIX ${JSON.stringify(inboxPrefix)} must be subject tokens (letters, digits, _ - $) joined by dots, without wildcards`,
      );
    settings.inboxPrefix = inboxPrefix;
  } else if (settings.user !== undefined && nameTokenProblem(settings.user, "name") === undefined) {
    settings.inboxPrefix = inboxPrefixFor(settings.user);
  }

  const caFile = nonEmpty(env.NATS_TLS_CA);
  const certFile = nonEmpty(env.NATS_TLS_CERT);
  const keyFile = nonEmpty(env.NATS_TLS_KEY);
  for (const [name, path] of [
    ["NATS_TLS_CA", caFile],
    ["NATS_TLS_CERT", certFile],
    ["NATS_TLS_KEY", keyFile],
  ] as const) {
    if (path && !existsSync(path)) throw new ConfigError(`${name} points to ${path}, which does not exist`);
  }
  if (tlsCount > 0 || caFile || certFile || keyFile) {
    settings.tls = {
      ...(caFile ? { caFile } : {}),
      ...(certFile ? { certFile } : {}),
      ...(keyFile ? { keyFile } : {}),
    };
  }
  return settings;
}

type UrlAuth = { user: string; password: string } | { token: string };

interface ParsedServer {
  /** `scheme://host:port` (or `host:port`), without credentials. */
  url: string;
  scheme: string | undefined;
  auth: UrlAuth | undefined;
}

const SCHEME = /^([a-z][a-z0-9+.-]*):\/\//i;
const NATS_SCHEMES = new Set(["nats", "tls", "ws", "wss"]);
const HOST_PORT = /^(\[[0-9a-f:.]+\]|[^\s/:@[\]?#,]+)(:\d{1,5})?\/?$/i;

/**
 * Splits a comma-separated server list. When the list uses schemes, it splits only before the next
 * `scheme://`, so a comma inside a password does not cut the URL in two.
 */
function splitServerList(url: string): string[] {
  const parts = SCHEME.test(url.trim()) ? url.split(/,(?=\s*[a-z][a-z0-9+.-]*:\/\/)/i) : url.split(",");
  return parts.map((s) => s.trim()).filter(Boolean);
}

function parseServerUrl(entry: string, whole: string, source: string): ParsedServer {
  const m = SCHEME.exec(entry);
  const scheme = m?.[1]?.toLowerCase();
  const rest = m ? entry.slice(m[0].length) : entry;
  const at = rest.lastIndexOf("@");
  const hostPort = at >= 0 ? rest.slice(at + 1) : rest;
  if ((scheme !== undefined && !NATS_SCHEMES.has(scheme)) || !HOST_PORT.test(hostPort)) {
    // Never echo a fragment that might be part of a password.
    const shown = entry.includes("@")
      ? JSON.stringify(redactUrl(entry))
      : whole.includes("@")
        ? "a server entry (not shown: the value carries credentials)"
        : JSON.stringify(entry);
    throw new ConfigError(
      `${source} contains ${shown}, which is not a server URL; use nats://host:port or tls://host:port, comma-separated`,
    );
  }
  const url = `${scheme === undefined ? "" : `${scheme}://`}${hostPort.replace(/\/$/, "")}`;
  const userinfo = at >= 0 ? rest.slice(0, at) : "";
  if (userinfo === "") return { url, scheme, auth: undefined };
  const colon = userinfo.indexOf(":");
  if (colon < 0) return { url, scheme, auth: { token: decodeCredential(userinfo, "token", source) } };
  const user = decodeCredential(userinfo.slice(0, colon), "user", source);
  if (user === "")
    throw new ConfigError(`${source} has a password but no user before it; write user:password@host`);
  return {
    url,
    scheme,
    auth: { user, password: decodeCredential(userinfo.slice(colon + 1), "password", source) },
  };
}

function decodeCredential(text: string, what: string, source: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    throw new ConfigError(
      `${source}: the ${what} in the URL has a malformed %-escape; percent-encode '%' as %25 (and ',' as %2C)`,
    );
  }
}

function sameAuth(a: UrlAuth | undefined, b: UrlAuth | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  if ("token" in a) return "token" in b && a.token === b.token;
  return "user" in b && a.user === b.user && a.password === b.password;
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
      .map((i) => {
        const where = i.path.join(".") || "(root)";
        // A misspelt top-level key: say which keys exist, since sections of later services look alike.
        if (i.code === "unrecognized_keys" && i.path.length === 0)
          return `${where}: ${i.message} (the keys are ${PROJECT_FILE_KEYS.join(", ")})`;
        return `${where}: ${i.message}`;
      })
      .join("; ");
    throw new ConfigError(`${path} is invalid: ${problems}`, { cause: parsed.error });
  }
  return parsed.data;
}

/**
 * The URL (or comma-separated URL list) with any `user:password@` or `token@` replaced by `[redacted]@`,
 * for logs and error messages. The last `@` before the host ends the credentials, so a password holding
 * `@` or `/` is hidden whole.
 */
export function redactUrl(url: string): string {
  return splitForRedaction(url)
    .map((entry) => {
      const m = /^(\s*(?:[a-z][a-z0-9+.-]*:\/\/)?)([\s\S]*)$/i.exec(entry);
      const prefix = m?.[1] ?? "";
      const rest = m?.[2] ?? entry;
      const at = rest.lastIndexOf("@");
      return at < 0 ? entry : `${prefix}[redacted]@${rest.slice(at + 1)}`;
    })
    .join(",");
}

/** Like splitServerList, but keeps every character (spaces included) so the pieces join back. */
function splitForRedaction(url: string): string[] {
  return SCHEME.test(url.trim()) ? url.split(/,(?=\s*[a-z][a-z0-9+.-]*:\/\/)/i) : [url];
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

/** A secret as given: blank counts as unset, but surrounding spaces are part of the value. */
function secret(v: string | undefined): string | undefined {
  return v === undefined || v.trim() === "" ? undefined : v;
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
