import { defineTool } from "@loominal/mcp-kit";
import { agentIdSchema, projectIdSchema } from "@loominal/protocol";
import { z } from "zod";
import type { WarpToolDeps } from "./index.js";

export function handleGetTool({ warp }: WarpToolDeps) {
  return defineTool({
    name: "warp_handle_get",
    title: "Who am I",
    description:
      "Returns your identity: handle, agentId (what other agents use to message you), projectId, and whether you are registered.",
    input: z.strictObject({}),
    output: z.object({
      agentId: agentIdSchema,
      handle: z.string(),
      projectId: projectIdSchema,
      agentName: z.string(),
      instance: z.int().positive(),
      registered: z.boolean(),
    }),
    annotations: { readOnlyHint: true },
    // Answered from this process alone: it works while NATS is down.
    handler: async () => {
      const id = warp.identity;
      const registered = warp.registry.registered;
      return {
        data: {
          agentId: id.agentId,
          handle: id.handle,
          projectId: id.projectId,
          agentName: id.agentName,
          instance: id.instance,
          registered,
        },
        text: `You are ${id.handle} (agentId ${id.agentId}) in project ${id.projectId}; ${registered ? "registered" : "not registered"}.`,
      };
    },
  });
}
