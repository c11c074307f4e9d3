import { defineTool } from "@loominal/mcp-kit";
import { agentIdSchema, agentViewSchema } from "@loominal/protocol";
import { z } from "zod";
import type { WarpToolDeps } from "./index.js";

export function registryGetInfoTool({ warp }: WarpToolDeps) {
  return defineTool({
    name: "warp_registry_get_info",
    title: "Agent details",
    description:
      "Returns one registered agent of this project by agentId (as discover returns it), with its current status.",
    input: z.strictObject({ agentId: agentIdSchema.describe("32 hex characters") }),
    output: z.object({ agent: agentViewSchema }),
    annotations: { readOnlyHint: true },
    handler: async ({ agentId }) =>
      warp.run(async () => {
        const agent = await warp.registry.getInfo(agentId);
        return {
          data: { agent },
          text: `${agent.handle} (${agent.agentType}) is ${agent.status}; last heartbeat ${agent.lastHeartbeat}; tasks ${agent.currentTaskCount}/${agent.maxConcurrentTasks}.`,
        };
      }),
  });
}
