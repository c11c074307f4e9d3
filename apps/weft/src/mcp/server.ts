import { createLogger, encodeJson, Fabric, loadConfig } from "@loominal/fabric";
import {
  createToolServer,
  defineTool,
  type McpServer,
  runStdio,
  type ToolDefinition,
  type ToolProfile,
  toolProfileFromEnv,
} from "@loominal/mcp-kit";
import { LoominalError, subjects } from "@loominal/protocol";
import { z } from "zod";
import { OPERATIONS, type Operation } from "../api.js";
import type { CoordReply } from "../nats-api.js";

export const WEFT_MCP_NAME = "loominal-weft";
export const WEFT_MCP_VERSION = "0.1.0";
/** How long a tool waits for a Weft instance to answer. */
const REQUEST_TIMEOUT_MS = 10_000;

const INSTRUCTIONS = [
  "Weft is the coordinator: submit work (it is routed by boundary and capability and an agent is started when none eligible is online),",
  "follow it with weft_work_get / weft_work_list, see agents, targets, spin-ups and stats.",
  "Each tool is answered by a running Weft (weft serve) over NATS.",
  "Target changes need an admin token on Weft's REST API and are not offered here.",
].join(" ");

/**
 * The tools the `core` profile lists: submit work and follow it, see the agents and the totals. The other
 * operations (cancel, shutdown, targets, spin-ups, channels) are reached through `weft_more`.
 */
export const WEFT_CORE_TOOLS = [
  "weft_work_submit",
  "weft_work_get",
  "weft_work_list",
  "weft_agents_list",
  "weft_stats",
] as const;
export const WEFT_GATEWAY_TOOL = "weft_more";

/** Tool name of an operation: `work-submit` → `weft_work_submit`. */
export function toolName(op: Operation): string {
  return `weft_${(op.op as string).replace(/-/g, "_")}`;
}

/** The operations `weft mcp` offers: every NATS operation that needs no admin token. */
export function mcpOperations(): Operation[] {
  return OPERATIONS.filter((o) => o.op !== undefined && o.admin === undefined);
}

/** Sends a coordinator request; an error reply becomes a LoominalError with Weft's code and message. */
export type CoordRequester = (
  op: string,
  request: { params?: unknown; query?: unknown; body?: unknown },
) => Promise<unknown>;

export function natsRequester(fabric: Fabric, projectId: string): CoordRequester {
  return async (op, request) => {
    await fabric.ready(2_000);
    let raw: unknown;
    try {
      const m = await fabric.nc.request(subjects.coordinator(projectId, op), encodeJson(request), {
        timeout: REQUEST_TIMEOUT_MS,
      });
      raw = m.json();
    } catch (err) {
      throw new LoominalError(
        "timeout",
        `no Weft answered coord.${projectId}.${op} within ${REQUEST_TIMEOUT_MS} ms (${err instanceof Error ? err.message : String(err)}); start one with \`weft serve\``,
      );
    }
    const reply = raw as CoordReply;
    if (reply.ok) return reply.body;
    const code = reply.error.code as ConstructorParameters<typeof LoominalError>[0];
    throw new LoominalError(
      [
        "invalid_input",
        "not_found",
        "forbidden",
        "conflict",
        "already_exists",
        "timeout",
        "invalid_transition",
        "nats_unavailable",
      ].includes(code)
        ? code
        : "internal",
      reply.error.message,
      reply.error.details && typeof reply.error.details === "object"
        ? { details: reply.error.details as Record<string, unknown> }
        : undefined,
    );
  };
}

function toolOf(op: Operation, request: CoordRequester): ToolDefinition {
  const shapes = [op.params, op.query?.omit({ projectId: true } as never), op.body].filter(
    (s): s is z.ZodObject => s !== undefined,
  );
  const keysOf = (s: z.ZodObject | undefined) => new Set(s ? Object.keys(s.shape) : []);
  const paramKeys = keysOf(op.params);
  const queryKeys = keysOf(op.query);
  const input = z.strictObject(Object.assign({}, ...shapes.map((s) => s.shape)));
  return defineTool({
    name: toolName(op),
    description: `${op.summary}.`,
    input,
    output: z.looseObject({}),
    annotations: {
      readOnlyHint: op.method === "get",
      destructiveHint: op.id.startsWith("cancel") || op.id.startsWith("shutdown"),
      idempotentHint: op.method === "get",
      openWorldHint: false,
    },
    async handler(args: Record<string, unknown>) {
      const params: Record<string, unknown> = {};
      const query: Record<string, unknown> = {};
      const body: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(args)) {
        if (v === undefined) continue;
        if (paramKeys.has(k)) params[k] = v;
        else if (queryKeys.has(k)) query[k] = v;
        else body[k] = v;
      }
      const result = await request(op.op as string, { params, query, body });
      const data = (
        result && typeof result === "object" && !Array.isArray(result) ? result : { result }
      ) as Record<string, unknown>;
      return { data, text: JSON.stringify(data).slice(0, 2_000) };
    },
  });
}

export interface WeftMcpOptions {
  /** Which tools to list (default `full`; `weft mcp` passes `LOOMINAL_TOOLS`, whose default is `core`). */
  tools?: ToolProfile;
}

/** The Weft MCP server (a factory: tests run it in-process with their own requester). */
export function createWeftMcpServer(request: CoordRequester, options: WeftMcpOptions = {}): McpServer {
  return createToolServer(
    { name: WEFT_MCP_NAME, version: WEFT_MCP_VERSION, instructions: INSTRUCTIONS },
    mcpOperations().map((op) => toolOf(op, request)),
    { profile: options.tools ?? "full", core: WEFT_CORE_TOOLS, gateway: WEFT_GATEWAY_TOOL, server: "Weft" },
  );
}

/** `weft mcp`: serves the tools on stdio for the project of the working directory (LOOMINAL_PROJECT_ID). */
export async function runWeftMcp(): Promise<void> {
  const logger = createLogger({ name: "weft-mcp", destination: "stderr" });
  const config = loadConfig();
  const tools = toolProfileFromEnv();
  // Connects in the background: tools list at once and say "NATS unreachable" until it is there.
  const fabric = Fabric.start({ nats: config.nats, logger, name: `weft-mcp ${config.projectId}` });
  logger.info({ projectId: config.projectId, nats: fabric.url, tools }, "weft mcp starting");
  await runStdio(createWeftMcpServer(natsRequester(fabric, config.projectId), { tools }), {
    logger,
    onShutdown: () => fabric.close(),
  });
}
