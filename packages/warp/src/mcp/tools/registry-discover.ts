import { defineTool } from "@loominal/mcp-kit";
import { agentViewSchema, nameToken, presenceFilterSchema, scopeSchema } from "@loominal/protocol";
import { z } from "zod";
import { DISCOVER_DEFAULT_LIMIT, DISCOVER_MAX_LIMIT } from "../../registry.js";
import type { WarpToolDeps } from "./index.js";

export function registryDiscoverTool({ warp }: WarpToolDeps) {
  return defineTool({
    name: "warp_registry_discover",
    title: "Discover agents",
    description: `Finds registered agents of this project you may see, by type, capability, boundary, status or scope. status is derived: busy (holding a work claim or lease), idle, offline (heartbeats overdue). Offline agents are left out unless includeOffline is true or status is 'offline'. scope 'public' or 'personal' also searches other projects. Pages of up to ${DISCOVER_MAX_LIMIT} (default ${DISCOVER_DEFAULT_LIMIT}).`,
    input: z.strictObject({
      agentType: nameToken("agent type").optional(),
      capability: nameToken("capability").optional(),
      boundary: nameToken("boundary").optional(),
      status: presenceFilterSchema.optional().describe("idle, busy, offline, or online (idle or busy)"),
      scope: scopeSchema.optional(),
      includeOffline: z.boolean().optional(),
      limit: z.int().min(1).max(DISCOVER_MAX_LIMIT).optional(),
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
