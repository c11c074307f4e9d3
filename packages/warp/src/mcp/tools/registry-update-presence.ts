import { defineTool } from "@loominal/mcp-kit";
import { agentViewSchema, nameToken } from "@loominal/protocol";
import { z } from "zod";
import type { WarpToolDeps } from "./index.js";

export function registryUpdatePresenceTool({ warp }: WarpToolDeps) {
  return defineTool({
    name: "warp_registry_update_presence",
    title: "Update presence",
    description:
      "Updates what you report about yourself: status, current task count, capabilities. Requires warp_registry_register first.",
    input: z.strictObject({
      status: z
        .enum(["online", "busy"])
        .optional()
        .describe("busy: show busy without a claim; online: busy or idle by your claims and leases"),
      currentTaskCount: z.int().min(0).max(100_000).optional().describe("Tasks you are working on now"),
      capabilities: z
        .array(nameToken("capability"))
        .max(64)
        .optional()
        .describe("Replaces your registered capabilities"),
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
