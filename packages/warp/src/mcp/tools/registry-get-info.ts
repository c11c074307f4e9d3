import { defineTool } from "@loominal/mcp-kit";
import { agentIdSchema, agentViewSchema, projectIdSchema } from "@loominal/protocol";
import { z } from "zod";
import type { WarpToolDeps } from "./index.js";

export function registryGetInfoTool({ warp }: WarpToolDeps) {
  return defineTool({
    name: "warp_registry_get_info",
    title: "Agent details",
    description:
      "Returns one registered agent by agentId, with its current status: of this project, or of another one if registered with scope public (or personal, for your user).",
    input: z.strictObject({
      agentId: agentIdSchema.describe("The agent's id"),
      projectId: projectIdSchema
        .optional()
        .describe("The agent's project (default: yours, then any you may see)"),
    }),
    output: z.object({ agent: agentViewSchema }),
    annotations: { readOnlyHint: true },
    handler: async ({ agentId, projectId }) =>
      warp.run(async () => {
        const agent = await warp.registry.getInfo(agentId, projectId !== undefined ? { projectId } : {});
        return {
          data: { agent },
          text: `${agent.handle} (${agent.agentType}${agent.projectId === warp.projectId ? "" : `, project ${agent.projectId}`}) is ${agent.status}; last heartbeat ${agent.lastHeartbeat}; tasks ${agent.currentTaskCount}/${agent.maxConcurrentTasks}.`,
        };
      }),
  });
}
