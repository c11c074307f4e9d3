import { defineTool } from "@loominal/mcp-kit";
import { agentIdSchema } from "@loominal/protocol";
import { z } from "zod";
import type { WarpToolDeps } from "./index.js";

export function registryDeregisterTool({ warp }: WarpToolDeps) {
  return defineTool({
    name: "warp_registry_deregister",
    title: "Deregister",
    description:
      "Removes you from the registry, stops heartbeats and releases your file leases. Others can no longer discover you or send you new direct messages.",
    input: z.strictObject({}),
    output: z.object({ agentId: agentIdSchema, deregistered: z.literal(true) }),
    annotations: { destructiveHint: true },
    handler: async () =>
      warp.run(async () => {
        const { agentId } = await warp.registry.deregister();
        await warp.leases.releaseOwn();
        return { data: { agentId, deregistered: true as const }, text: `Deregistered ${agentId}.` };
      }),
  });
}
