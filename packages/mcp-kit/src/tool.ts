import type { Logger } from "@loominal/fabric";
import { LoominalError } from "@loominal/protocol";
import { McpServer, type StandardSchemaWithJSON } from "@modelcontextprotocol/server";
import type { z } from "zod";
import { describeIssues, toolErrorResult } from "./errors.js";
import { type ToolSurface, toolsForSurface } from "./profiles.js";

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

type JsonSchema = Record<string, unknown>;

/**
 * The input JSON Schema a client sees for `schema`: zod's, without what says nothing to a reader — the
 * `$schema` line every tool would repeat (MCP's default dialect is the same draft 2020-12), the
 * `propertyNames: {type: "string"}` and `additionalProperties: {}` of a record (JSON keys are strings;
 * any value is the default), and the long `pattern` zod adds beside a `format` such as `date-time`.
 * Arguments are validated by the zod schema itself.
 */
export function inputJsonSchema(schema: z.ZodObject): JsonSchema {
  const { $schema: _dialect, ...rest } = schema["~standard"].jsonSchema.input({ target: "draft-2020-12" });
  return withoutNoise(rest) as JsonSchema;
}

function withoutNoise(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutNoise);
  if (value === null || typeof value !== "object") return value;
  const node = value as JsonSchema;
  const out: JsonSchema = {};
  for (const [key, v] of Object.entries(node)) {
    if (key === "pattern" && typeof node.format === "string") continue;
    if (key === "propertyNames" && isStringTypeOnly(v)) continue;
    if (key === "additionalProperties" && isEmptyObject(v)) continue;
    // Property names are data, not keywords: only their schemas are cleaned.
    out[key] =
      key === "properties" && v !== null && typeof v === "object"
        ? Object.fromEntries(Object.entries(v).map(([k, p]) => [k, withoutNoise(p)]))
        : withoutNoise(v);
  }
  return out;
}

function isStringTypeOnly(v: unknown): boolean {
  return isObject(v) && Object.keys(v).length === 1 && v.type === "string";
}

function isEmptyObject(v: unknown): boolean {
  return isObject(v) && Object.keys(v).length === 0;
}

function isObject(v: unknown): v is JsonSchema {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

/**
 * The output JSON Schema a client sees for `schema`: its top-level fields with their types and
 * descriptions, one level of array items, and nothing deeper. Clients check results against it (v1 SDK
 * clients do), and it stays true of every result because `defineTool` checks each one against the whole
 * zod schema; the nested shapes are in the docs and in every result, and listing them made `tools/list`
 * several times larger.
 */
export function outputJsonSchema(schema: z.ZodObject): JsonSchema {
  return shallow(schema["~standard"].jsonSchema.output({ target: "draft-2020-12" }), 0);
}

const KEPT_KEYWORDS = ["type", "description", "enum", "const"] as const;

function shallow(schema: JsonSchema, depth: number): JsonSchema {
  const out: JsonSchema = {};
  for (const key of KEPT_KEYWORDS) if (key in schema) out[key] = schema[key];
  for (const key of ["anyOf", "oneOf"] as const) {
    const options = schema[key];
    if (Array.isArray(options)) out[key] = options.map((o) => shallow(o as JsonSchema, depth));
  }
  if (depth === 0) {
    const properties = schema.properties as Record<string, JsonSchema> | undefined;
    if (properties) {
      out.properties = Object.fromEntries(
        Object.entries(properties).map(([k, v]) => [k, shallow(v, depth + 1)]),
      );
    }
    if (Array.isArray(schema.required)) out.required = schema.required;
  }
  if (depth <= 1 && schema.items && typeof schema.items === "object" && !Array.isArray(schema.items)) {
    out.items = shallow(schema.items as JsonSchema, 2);
  }
  return out;
}

/**
 * A standard schema that publishes `json` (for `tools/list`) but accepts any value, so validation happens
 * in `defineTool`, where its errors get Loominal's shape.
 */
function publishedOnly(json: JsonSchema): StandardSchemaWithJSON {
  const wrapper = {
    "~standard": {
      version: 1 as const,
      vendor: "loominal",
      validate: (value: unknown) => ({ value }),
      jsonSchema: { input: () => json, output: () => json },
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

/**
 * An McpServer with the given tools registered: all of them, or with a `surface`, the ones its profile
 * lists (see `toolsForSurface`). In the core profile the instructions end with how to reach the rest.
 */
export function createToolServer(
  info: ServerInfo,
  tools: ToolDefinition[],
  surface?: ToolSurface,
): McpServer {
  const registered = surface ? toolsForSurface(tools, surface) : tools;
  const gateway = registered.some((t) => t.name === surface?.gateway) ? surface : undefined;
  const instructions = gateway
    ? `${info.instructions ? `${info.instructions} ` : ""}Less frequent ${gateway.server} tools are not listed: ${gateway.gateway} lists them and calls them by name.`
    : info.instructions;
  const server = new McpServer(
    { name: info.name, version: info.version },
    instructions ? { instructions } : undefined,
  );
  const seen = new Set<string>();
  for (const tool of registered) {
    if (seen.has(tool.name)) throw new Error(`tool ${tool.name} is defined twice`);
    seen.add(tool.name);
    server.registerTool(
      tool.name,
      {
        ...(tool.title ? { title: tool.title } : {}),
        description: tool.description,
        inputSchema: publishedOnly(inputJsonSchema(tool.input)),
        outputSchema: publishedOnly(outputJsonSchema(tool.output)),
        ...(tool.annotations ? { annotations: tool.annotations } : {}),
      },
      async (args: unknown) => tool.call(args, info.logger ? { logger: info.logger } : {}),
    );
  }
  return server;
}
