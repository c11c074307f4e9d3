import { createLogger, isUnavailableError, type Logger } from "@loominal/fabric";
import { type ErrorCode, isLoominalError } from "@loominal/protocol";
import type { z } from "zod";

/** The structured body of every tool error. */
export interface ToolErrorBody {
  error: { code: ErrorCode; message: string; details?: Record<string, unknown> };
}

/** The `_meta` key under which an error result carries its `{ code, message, details? }`. */
export const TOOL_ERROR_META_KEY = "loominal/error";

/**
 * What an error result looks like on the wire. It carries no `structuredContent`: that is checked against
 * the tool's output schema (v1 SDK clients throw `-32602` when it does not match, so the agent would never
 * see the reason). The code and message are in the text (`<code>: <message>`, then the details as JSON),
 * which every client shows, and the same body is in `_meta["loominal/error"]` for programs.
 */
export interface ToolErrorResult {
  [key: string]: unknown;
  isError: true;
  content: Array<{ type: "text"; text: string }>;
  _meta: { [TOOL_ERROR_META_KEY]: ToolErrorBody["error"] };
}

/** Formats zod issues as "field: problem; field: problem" so an agent sees which argument to fix. */
export function describeIssues(error: z.ZodError): string {
  return error.issues
    .map((i) => {
      const path = i.path.length > 0 ? i.path.join(".") : "(arguments)";
      return `${path}: ${i.message}`;
    })
    .join("; ");
}

export interface ToolErrorContext {
  /** Where unexpected errors are logged (with their stack); a stderr logger when absent. */
  logger?: Logger;
  /** The tool that failed, for the log line. */
  tool?: string;
}

let fallbackLogger: Logger | undefined;

/** stderr, never stdout: stdout carries the MCP protocol. */
function defaultLogger(): Logger {
  if (!fallbackLogger) {
    try {
      fallbackLogger = createLogger({ name: "loominal-mcp", destination: "stderr" });
    } catch {
      // A bad LOOMINAL_LOG_LEVEL must not hide the error being reported.
      fallbackLogger = createLogger({ name: "loominal-mcp", destination: "stderr", level: "info" });
    }
  }
  return fallbackLogger;
}

/**
 * The one place an error thrown by a tool becomes an MCP result. Loominal errors keep their code and
 * message (which say what to do next); errors meaning NATS did not answer become `nats_unavailable`;
 * anything else is `internal`, logged with its stack (to stderr) and reported without it.
 */
export function toolErrorResult(err: unknown, context: ToolErrorContext = {}): ToolErrorResult {
  let body: ToolErrorBody["error"];
  const message = err instanceof Error ? err.message : String(err);
  if (isLoominalError(err)) {
    body = { code: err.code, message: err.message, ...(err.details ? { details: err.details } : {}) };
  } else if (isUnavailableError(err)) {
    (context.logger ?? defaultLogger()).warn({ tool: context.tool, err: message }, "NATS did not answer");
    body = {
      code: "nats_unavailable",
      message: `NATS did not answer (${message}); it may be down or restarting. This server keeps reconnecting: retry in a few seconds, or start NATS with './loominal up'.`,
    };
  } else if (err instanceof Error && err.name === "PermissionViolationError") {
    body = {
      code: "forbidden",
      message: `NATS refused this operation (${message}); the NATS user lacks the permission. See docs/security.md.`,
    };
  } else {
    (context.logger ?? defaultLogger()).error(
      { tool: context.tool, err: err instanceof Error ? err : new Error(message) },
      "tool failed with an unexpected error",
    );
    body = { code: "internal", message: `unexpected error: ${message}; this is a bug, please report it` };
  }
  const details = body.details ? `\ndetails: ${JSON.stringify(body.details)}` : "";
  return {
    isError: true,
    content: [{ type: "text", text: `${body.code}: ${body.message}${details}` }],
    _meta: { [TOOL_ERROR_META_KEY]: body },
  };
}
