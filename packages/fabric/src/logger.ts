import { ConfigError } from "@loominal/protocol";
import { type DestinationStream, type Logger, type LoggerOptions, pino } from "pino";
import { redactUrl } from "./config.js";

export type { Logger } from "pino";

/**
 * Paths pino itself censors (kept for callers that build their own pino logger). createLogger goes
 * further: it censors SECRET_KEYS at any depth and credentials inside URLs (redactLogObject).
 */
export const REDACT_PATHS = [
  "password",
  "pass",
  "token",
  "creds",
  "authorization",
  "secret",
  "*.password",
  "*.pass",
  "*.token",
  "*.creds",
  "*.authorization",
  "*.secret",
  "req.headers.authorization",
  "headers.authorization",
];

/**
 * Keys whose values never reach a log line, at any depth. Compared case-insensitively with `_` and `-`
 * removed, so `NATS_PASSWORD`, `apiKey` and `api-key` all match; keys ending in `password`, `secret`,
 * `token`, `apikey`, `creds` or `credentials` match too.
 */
export const SECRET_KEYS: readonly string[] = [
  "password",
  "pass",
  "passwd",
  "token",
  "creds",
  "credentials",
  "authorization",
  "cookie",
  "secret",
  "apikey",
  "privatekey",
  "seed",
  "nkey",
  "jwt",
];
const SECRET_SUFFIXES = ["password", "secret", "token", "apikey", "creds", "credentials"];
/** Keys whose string values are server URLs: their credentials are removed, the rest kept. */
const URL_KEYS = new Set(["natsurl", "url", "urls", "servers", "server"]);
const CENSOR = "[redacted]";
const MAX_DEPTH = 12;

function normalise(key: string): string {
  return key.toLowerCase().replace(/[-_]/g, "");
}

function isSecretKey(key: string): boolean {
  const k = normalise(key);
  return SECRET_KEYS.includes(k) || SECRET_SUFFIXES.some((s) => k.endsWith(s));
}

/** A URL with credentials in it (`scheme://…@host`), wherever it appears. */
const CREDENTIALED_URL = /^\s*[a-z][a-z0-9+.-]*:\/\/[^\s]*@/i;

function redactString(value: string, urlKey: boolean): string {
  return urlKey || CREDENTIALED_URL.test(value) ? redactUrl(value) : value;
}

/**
 * A copy of `value` with every SECRET_KEYS value censored at any depth and credentials removed from URL
 * strings. Plain objects and arrays are copied; Errors, Dates and buffers are left to pino's serializers.
 */
export function redactLogObject<T>(value: T): T {
  return walk(value, false, 0, new WeakSet()) as T;
}

function walk(value: unknown, urlKey: boolean, depth: number, seen: WeakSet<object>): unknown {
  if (typeof value === "string") return redactString(value, urlKey);
  if (value === null || typeof value !== "object") return value;
  if (depth >= MAX_DEPTH) return "[too deep]";
  if (seen.has(value)) return "[circular]";
  if (Array.isArray(value)) {
    seen.add(value);
    const out = value.map((v) => walk(v, urlKey, depth + 1, seen));
    seen.delete(value);
    return out;
  }
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return value;
  seen.add(value);
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    out[k] =
      isSecretKey(k) && v !== undefined ? CENSOR : walk(v, URL_KEYS.has(normalise(k)), depth + 1, seen);
  }
  seen.delete(value);
  return out;
}

export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface LoggerSettings {
  name: string;
  /**
   * MCP servers log to stderr because stdout is their protocol; services log to stdout. A stream (any
   * object with `write(line)`) takes the lines instead, e.g. in tests.
   */
  destination: "stdout" | "stderr" | DestinationStream;
  /** One of LOG_LEVELS; `LOOMINAL_LOG_LEVEL`, else `info`, when absent. */
  level?: string;
  /** The environment to read `LOOMINAL_LOG_LEVEL` from (default process.env). */
  env?: Record<string, string | undefined>;
}

/** The level to log at; a bad value is a ConfigError naming where it came from and the valid levels. */
export function logLevelFrom(level: string | undefined, env: Record<string, string | undefined>): LogLevel {
  const fromEnv = env.LOOMINAL_LOG_LEVEL?.trim();
  const [value, source] =
    level !== undefined ? [level, "the log level"] : [fromEnv || "info", "LOOMINAL_LOG_LEVEL"];
  const lower = value.toLowerCase();
  if (!(LOG_LEVELS as readonly string[]).includes(lower)) {
    throw new ConfigError(
      `${source} is ${JSON.stringify(value.slice(0, 40))}; use one of ${LOG_LEVELS.join(", ")}`,
    );
  }
  return lower as LogLevel;
}

/**
 * A pino logger whose lines never carry credentials: SECRET_KEYS are censored at any depth (in the
 * logged object and in child bindings) and URLs lose their `user:password@`. `LOOMINAL_LOG_LEVEL` sets
 * the level when none is given; an unknown level throws ConfigError.
 */
export function createLogger(settings: LoggerSettings): Logger {
  const { destination } = settings;
  return pino(
    loggerOptions(settings),
    typeof destination === "object"
      ? destination
      : pino.destination({ fd: destination === "stderr" ? 2 : 1, sync: false }),
  );
}

/** The pino options createLogger uses (for a logger on another destination, such as a test stream). */
export function loggerOptions(settings: Omit<LoggerSettings, "destination">): LoggerOptions {
  return {
    name: settings.name,
    level: logLevelFrom(settings.level, settings.env ?? process.env),
    redact: { paths: REDACT_PATHS, censor: CENSOR },
    formatters: {
      log: (object) => redactLogObject(object),
      bindings: (bindings) => redactLogObject(bindings),
    },
    base: { pid: process.pid },
  };
}

/** A logger that writes nothing (tests, libraries used without a host logger). */
export function silentLogger(): Logger {
  return pino({ level: "silent" });
}
