import { type ErrorCode, isLoominalError } from "@loominal/protocol";
import type { z } from "zod";

/** The structured body of every tool error. */
export interface ToolErrorBody {
  error: { code: ErrorCode; message: string; details?: Record<string, unknown> };
}

/** What an error result looks like on the wire. */
export interface ToolErrorResult {
  [key: string]: unknown;
  isError: true;
  content: Array<{ type: "text"; text: string }>;
  structuredContent: Record<string, unknown> & ToolErrorBody;
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

/**
 * The one place an error thrown by a tool becomes an MCP result. Loominal errors keep their code and
 * message (which say what to do next); anything else is reported as `internal` without its stack.
 */
export function toolErrorResult(err: unknown): ToolErrorResult {
  let body: ToolErrorBody["error"];
  if (isLoominalError(err)) {
    body = { code: err.code, message: err.message, ...(err.details ? { details: err.details } : {}) };
  } else {
    const message = err instanceof Error ? err.message : String(err);
    body = { code: "internal", message: `unexpected error: ${message}; this is a bug, please report it` };
  }
  return {
    isError: true,
    content: [{ type: "text", text: `${body.code}: ${body.message}` }],
    structuredContent: { error: body },
  };
}
