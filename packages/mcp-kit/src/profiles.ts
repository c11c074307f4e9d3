import { type Env, type Logger, parseEnv } from "@loominal/fabric";
import { LoominalError } from "@loominal/protocol";
import { z } from "zod";
import type { CallResult, ToolDefinition } from "./tool.js";
import { defineTool, inputJsonSchema } from "./tool.js";

/**
 * Which tools a server lists. `core`: the few an agent uses every session, plus one gateway tool
 * (`<server>_more`) that lists the others and calls any of them by name. `full`: every tool.
 */
export const TOOL_PROFILES = ["core", "full"] as const;
export type ToolProfile = (typeof TOOL_PROFILES)[number];

/** The environment variable that picks the profile of a server process. */
export const TOOL_PROFILE_VARIABLE = "LOOMINAL_TOOLS";

export const TOOL_PROFILE_ENV = {
  [TOOL_PROFILE_VARIABLE]: {
    schema: z.enum(TOOL_PROFILES).default("core"),
    description:
      "which tools the server lists: core (the everyday ones, the rest through <server>_more) or full (all)",
  },
};

/** Reads `LOOMINAL_TOOLS` (default `core`); any other value is a ConfigError naming the variable and the allowed values. */
export function toolProfileFromEnv(env: Env = process.env): ToolProfile {
  return parseEnv(TOOL_PROFILE_ENV, env)[TOOL_PROFILE_VARIABLE];
}

/** How a server splits its tools between the core profile and its gateway. */
export interface ToolSurface {
  profile: ToolProfile;
  /** The tools listed in the core profile, by name, in the order clients list them. */
  core: readonly string[];
  /** The gateway tool's name, `<server>_more`. */
  gateway: string;
  /** The server's name as an agent knows it ("Warp"), for the gateway's description. */
  server: string;
}

/**
 * The tools a server registers for its surface: every tool for `full`; for `core`, the core tools in the
 * given order and then the gateway to the rest. A core name that is not a tool is a programming error.
 */
export function toolsForSurface(tools: ToolDefinition[], surface: ToolSurface): ToolDefinition[] {
  const byName = new Map(tools.map((t) => [t.name, t]));
  for (const name of surface.core) {
    if (!byName.has(name)) throw new Error(`core tool ${name} is not one of the ${surface.server} tools`);
  }
  if (surface.profile === "full") return tools;
  const core = new Set(surface.core);
  const rest = tools.filter((t) => !core.has(t.name));
  const listed = surface.core.map((name) => byName.get(name) as ToolDefinition);
  return rest.length === 0 ? listed : [...listed, gatewayTool(surface.gateway, surface.server, rest)];
}

/** A line of the gateway's listing: name, parameters (`?` marks optional ones) and the first sentence. */
interface GatewayEntry {
  name: string;
  parameters: string;
  description: string;
}

/** The first sentence of a description (at most 160 characters), for the gateway's listing. */
export function firstSentence(text: string): string {
  const end = text.search(/\.(\s|$)/);
  const sentence = end >= 0 ? text.slice(0, end + 1) : text;
  return sentence.length > 160 ? `${sentence.slice(0, 157)}...` : sentence;
}

/** `leaseId, ttlMs?`: the tool's parameters, optional ones marked. */
function parametersOf(tool: ToolDefinition): string {
  return Object.entries(tool.input.shape as Record<string, z.ZodType>)
    .map(([key, schema]) => (schema.safeParse(undefined).success ? `${key}?` : key))
    .join(", ");
}

/**
 * One tool that reaches the tools a profile does not list: `{}` lists them (name, parameters, purpose),
 * `{tool, describe: true}` gives one's whole description and input schema, `{tool, arguments}` calls it.
 * A call is the tool's own: its arguments are validated by its schema, and its result or error (same
 * code, same message) is returned as if it had been called directly.
 */
export function gatewayTool(name: string, server: string, tools: ToolDefinition[]): ToolDefinition {
  const names = tools.map((t) => t.name) as [string, ...string[]];
  const byName = new Map(tools.map((t) => [t.name, t]));
  const entries: GatewayEntry[] = tools.map((t) => ({
    name: t.name,
    parameters: parametersOf(t),
    description: firstSentence(t.description),
  }));
  const input = z.strictObject({
    tool: z.enum(names).optional().describe("The tool to call or describe; omit to list them"),
    arguments: z
      .record(z.string(), z.unknown())
      .optional()
      .describe("The tool's arguments, as it takes them (default {})"),
    describe: z
      .boolean()
      .optional()
      .describe("true: return the tool's full description and input schema instead of calling it"),
  });
  const listing = defineTool({
    name,
    title: `More ${server} tools`,
    description: `Reaches the ${tools.length} ${server} tools not listed here: {} lists them with their parameters; {tool, describe: true} gives one's input schema; {tool, arguments} calls it and returns its result or error.`,
    input,
    output: z.looseObject({}),
    annotations: { openWorldHint: false },
    handler: async ({ tool, describe }) => {
      if (tool === undefined) {
        return {
          data: { tools: entries },
          text: [
            `${entries.length} more ${server} tools; call one with ${name} {tool, arguments}:`,
            ...entries.map((e) => `${e.name} {${e.parameters}}: ${e.description}`),
          ].join("\n"),
        };
      }
      const target = byName.get(tool);
      if (!target || describe !== true) {
        // Unreachable: zod checked the name, and a call with describe unset never gets here.
        throw new LoominalError("invalid_input", `${name}: no tool ${tool}`);
      }
      const schema = inputJsonSchema(target.input);
      return {
        data: {
          name: target.name,
          ...(target.title ? { title: target.title } : {}),
          description: target.description,
          inputSchema: schema,
        },
        text: `${target.name}: ${target.description}\ninputSchema: ${JSON.stringify(schema)}`,
      };
    },
  });
  return {
    ...listing,
    async call(args: unknown, context: { logger?: Logger } = {}): Promise<CallResult> {
      const parsed = input.safeParse(args ?? {});
      // Bad gateway arguments, a listing or a description: the gateway's own answer.
      if (!parsed.success || parsed.data.tool === undefined || parsed.data.describe === true) {
        return listing.call(args, context);
      }
      const target = byName.get(parsed.data.tool) as ToolDefinition;
      return target.call(parsed.data.arguments ?? {}, context);
    },
  };
}
