import type { Logger } from "@loominal/fabric";
import { LoominalError } from "@loominal/protocol";
import { McpServer, type StandardSchemaWithJSON } from "@modelcontextprotocol/server";
import type { z } from "zod";
import { describeIssues, toolErrorResult } from "./errors.js";

/** What a tool handler returns: the structured result (validated against the output schema) and a short text. */
export interface ToolResultData<O> {
  data: O;
  text: string;
}

export interface ToolAnnotationsInput {
  readOnlyHint?: boolean;
  destructiveHint?: boolean;
  idempotentHint?: boolean;
  openWorldHint?: boolean;
}

export interface ToolSpec<I extends z.ZodObject, O extends z.ZodObject> {
  name: string;
  title?: string;
  description: string;
  input: I;
  output: O;
  annotations?: ToolAnnotationsInput;
  handler: (input: z.infer<I>) => Promise<ToolResultData<z.infer<O>>>;
}

/** A tool ready to register: its schemas and a call function that never throws. */
export interface ToolDefinition {
  readonly name: string;
  readonly title: string | undefined;
  readonly description: string;
  readonly input: z.ZodObject;
  readonly output: z.ZodObject;
  readonly annotations: ToolAnnotationsInput | undefined;
  /** Validates raw arguments, runs the handler, and shapes the result or the error (logged to `logger`). */
  call(args: unknown, context?: { logger?: Logger }): Promise<CallResult>;
}

/** A successful result (with `structuredContent`) or an error result (see `ToolErrorResult`). */
export interface CallResult {
  [key: string]: unknown;
  isError?: boolean;
  content: Array<{ type: "text"; text: string }>;
  structuredContent?: Record<string, unknown>;
  _meta?: Record<string, unknown>;
}

/**
 * Defines one MCP tool from zod input and output schemas. The input schema is published as the tool's
 * inputSchema and enforced here (not by the SDK) so that bad arguments come back as an `invalid_input`
 * error result naming each field, the same shape as every other tool error.
 */
export function defineTool<I extends z.ZodObject, O extends z.ZodObject>(
  spec: ToolSpec<I, O>,
): ToolDefinition {
  return {
    name: spec.name,
    title: spec.title,
    description: spec.description,
    input: spec.input,
    output: spec.output,
    annotations: spec.annotations,
    async call(args: unknown, context: { logger?: Logger } = {}): Promise<CallResult> {
      const deep = tooDeep(args, MAX_ARGUMENT_DEPTH);
      if (deep !== undefined) {
        return toolErrorResult(
          new LoominalError(
            "invalid_input",
            `invalid arguments for ${spec.name}: ${deep} is nested more than ${MAX_ARGUMENT_DEPTH} levels deep; no tool takes arguments that deep. Flatten the value and call again.`,
            { details: { path: deep, maxDepth: MAX_ARGUMENT_DEPTH } },
          ),
        );
      }
      const parsed = spec.input.safeParse(args ?? {});
      if (!parsed.success) {
        return toolErrorResult(
          new LoominalError(
            "invalid_input",
            `invalid arguments for ${spec.name}: ${describeIssues(parsed.error)}. Fix these fields and call again.`,
          ),
        );
      }
      try {
        const { data, text } = await spec.handler(parsed.data as z.infer<I>);
        const checked = spec.output.safeParse(data);
        if (!checked.success) {
          throw new Error(
            `${spec.name} produced a result that breaks its output schema: ${describeIssues(checked.error)}`,
          );
        }
        return {
          content: [{ type: "text", text }],
          structuredContent: checked.data as Record<string, unknown>,
        };
      } catch (err) {
        return toolErrorResult(err, {
          tool: spec.name,
          ...(context.logger ? { logger: context.logger } : {}),
        });
      }
    },
  };
}

/** How deeply tool arguments may nest (objects and arrays); deeper ones are refused before validation. */
export const MAX_ARGUMENT_DEPTH = 64;

/**
 * The path of the first value nested deeper than `max` levels, or undefined. Walks without recursion, so
 * arguments nested thousands of levels deep cannot overflow the stack.
 */
function tooDeep(value: unknown, max: number): string | undefined {
  const stack: Array<{ v: unknown; depth: number; path: string }> = [
    { v: value, depth: 0, path: "arguments" },
  ];
  while (stack.length > 0) {
    const { v, depth, path } = stack.pop() as { v: unknown; depth: number; path: string };
    if (v === null || typeof v !== "object") continue;
    if (depth >= max) return path.length > 120 ? `${path.slice(0, 117)}...` : path;
    // The path stops growing once it is long enough to say where the nesting is.
    const at = (step: string) => (path.length > 200 ? path : `${path}${step}`);
    if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) stack.push({ v: v[i], depth: depth + 1, path: at(`[${i}]`) });
    } else
      for (const [k, x] of Object.entries(v as Record<string, unknown>))
        stack.push({ v: x, depth: depth + 1, path: at(`.${k}`) });
  }
  return undefined;
}

/**
 * A standard schema that publishes the zod schema's JSON Schema but accepts any value, so validation
 * happens in `defineTool` where its errors get Loominal's shape.
 */
function publishedOnly(schema: z.ZodObject): StandardSchemaWithJSON {
  const std = schema["~standard"];
  const wrapper = {
    "~standard": {
      version: 1 as const,
      vendor: "loominal",
      validate: (value: unknown) => ({ value }),
      jsonSchema: std.jsonSchema,
    },
  };
  return wrapper as unknown as StandardSchemaWithJSON;
}

export interface ServerInfo {
  name: string;
  version: string;
  /** Shown to the agent by MCP clients that support server instructions. */
  instructions?: string;
  /** Where tool failures that are bugs are logged; a stderr logger when absent. */
  logger?: Logger;
}

/** An McpServer with the given tools registered. */
export function createToolServer(info: ServerInfo, tools: ToolDefinition[]): McpServer {
  const server = new McpServer(
    { name: info.name, version: info.version },
    info.instructions ? { instructions: info.instructions } : undefined,
  );
  const seen = new Set<string>();
  for (const tool of tools) {
    if (seen.has(tool.name)) throw new Error(`tool ${tool.name} is defined twice`);
    seen.add(tool.name);
    server.registerTool(
      tool.name,
      {
        ...(tool.title ? { title: tool.title } : {}),
        description: tool.description,
        inputSchema: publishedOnly(tool.input),
        outputSchema: tool.output,
        ...(tool.annotations ? { annotations: tool.annotations } : {}),
      },
      async (args: unknown) => tool.call(args, info.logger ? { logger: info.logger } : {}),
    );
  }
  return server;
}
