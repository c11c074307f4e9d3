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
