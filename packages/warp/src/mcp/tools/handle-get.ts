import { defineTool } from "@loominal/mcp-kit";
import { agentIdSchema, isLoominalError, projectIdSchema } from "@loominal/protocol";
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
    handler: async () => {
      // With NATS, the identity is established first (a restarted agent gets its handle back); without
      // it, the answer comes from this process alone.
      await warp.ready().catch((err: unknown) => {
        if (!isLoominalError(err) || err.code !== "nats_unavailable") throw err;
      });
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
