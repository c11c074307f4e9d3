import { defineTool } from "@loominal/mcp-kit";
import { agentViewSchema, nameToken, presenceFilterSchema, scopeSchema } from "@loominal/protocol";
import { z } from "zod";
import { DISCOVER_DEFAULT_LIMIT, DISCOVER_MAX_LIMIT } from "../../registry.js";
import type { WarpToolDeps } from "./index.js";

export function registryDiscoverTool({ warp }: WarpToolDeps) {
  return defineTool({
    name: "warp_registry_discover",
    title: "Discover agents",
    description:
      "Finds registered agents you may see, by type, capability, boundary, status or scope. status is derived: busy (holds a work claim or lease), idle, or offline (heartbeats overdue; listed only with includeOffline or status 'offline').",
    input: z.strictObject({
      agentType: nameToken("agent type").optional().describe("Only agents of this type, e.g. 'claude-code'"),
      capability: nameToken("capability").optional().describe("Only agents with this capability"),
      boundary: nameToken("boundary").optional().describe("Only agents working in this boundary"),
      status: presenceFilterSchema.optional().describe("idle, busy, offline, or online (idle or busy)"),
      scope: scopeSchema
        .optional()
        .describe("Registrations of this scope only; public/personal span projects"),
      includeOffline: z.boolean().optional().describe("Include offline agents (default false)"),
      limit: z
        .int()
        .min(1)
        .max(DISCOVER_MAX_LIMIT)
        .optional()
        .describe(`Agents per page (default ${DISCOVER_DEFAULT_LIMIT})`),
      cursor: z.string().min(1).max(200).optional().describe("nextCursor from an earlier call"),
    }),
    output: z.object({
      agents: z.array(agentViewSchema),
      count: z.int(),
      hasMore: z.boolean(),
      nextCursor: z.string().nullable(),
    }),
    annotations: { readOnlyHint: true },
    handler: async (filter) =>
      warp.run(async () => {
        const page = await warp.registry.discover(filter);
        const lines = page.agents.map(
          (a) => `${a.handle} (${a.agentType}, ${a.status}) ${a.agentId} [${a.capabilities.join(", ")}]`,
        );
        return {
          data: page,
          text: [
            `${page.count} agent(s)${page.hasMore ? `; more with cursor ${page.nextCursor}` : ""}`,
            ...lines,
          ].join("\n"),
        };
      }),
  });
}
