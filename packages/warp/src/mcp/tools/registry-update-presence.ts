import { defineTool } from "@loominal/mcp-kit";
import { agentViewSchema, nameToken } from "@loominal/protocol";
import { z } from "zod";
import type { WarpToolDeps } from "./index.js";

export function registryUpdatePresenceTool({ warp }: WarpToolDeps) {
  return defineTool({
    name: "warp_registry_update_presence",
    title: "Update presence",
    description:
      "Updates what you report about yourself: status ('busy' to show busy without holding a claim, 'online' to leave it to your claims and leases), current task count, capabilities. Requires warp_registry_register first.",
    input: z.strictObject({
      status: z.enum(["online", "busy"]).optional(),
      currentTaskCount: z.int().min(0).max(100_000).optional(),
      capabilities: z.array(nameToken("capability")).max(64).optional(),
    }),
    output: z.object({ agent: agentViewSchema }),
    handler: async (update) =>
      warp.run(async () => {
        const agent = await warp.registry.updatePresence(update);
        return {
          data: { agent },
          text: `${agent.handle} is ${agent.status}; tasks ${agent.currentTaskCount}/${agent.maxConcurrentTasks}.`,
        };
      }),
  });
}
