import { type Logger, type LoggerOptions, pino } from "pino";

export type { Logger } from "pino";

/** Paths whose values are never written to a log line. */
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

export interface LoggerSettings {
  name: string;
  /** MCP servers log to stderr because stdout is their protocol; services log to stdout. */
  destination: "stdout" | "stderr";
  level?: string;
}

/** A pino logger with credential redaction. `LOOMINAL_LOG_LEVEL` sets the level when none is given. */
export function createLogger(settings: LoggerSettings): Logger {
  const options: LoggerOptions = {
    name: settings.name,
    level: settings.level ?? process.env.LOOMINAL_LOG_LEVEL ?? "info",
    redact: { paths: REDACT_PATHS, censor: "[redacted]" },
    base: { pid: process.pid },
  };
  return pino(options, pino.destination({ fd: settings.destination === "stderr" ? 2 : 1, sync: false }));
}

/** A logger that writes nothing (tests, libraries used without a host logger). */
export function silentLogger(): Logger {
  return pino({ level: "silent" });
}
