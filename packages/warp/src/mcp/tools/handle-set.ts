import { defineTool } from "@loominal/mcp-kit";
import { agentIdSchema, nameToken } from "@loominal/protocol";
import { z } from "zod";
import type { WarpToolDeps } from "./index.js";

export function handleSetTool({ warp }: WarpToolDeps) {
  return defineTool({
    name: "warp_handle_set",
    title: "Set handle",
    description:
      "Sets the readable name other agents see on your channel and direct messages (and in the registry, if registered). Lower case letters, digits, '-' and '_'; up to 64 characters.",
    input: z.strictObject({
      handle: nameToken("handle").describe("The new handle, e.g. 'reviewer' or 'api-worker'"),
    }),
    output: z.object({ agentId: agentIdSchema, handle: z.string() }),
    annotations: { idempotentHint: true },
    handler: async ({ handle }) =>
      warp.run(async () => {
        await warp.setHandle(handle);
        return {
          data: { agentId: warp.agentId, handle: warp.identity.handle },
          text: `Your handle is now ${warp.identity.handle}.`,
        };
      }),
  });
}
