import { defineTool } from "@loominal/mcp-kit";
import { memoryIdSchema } from "@loominal/protocol";
import { z } from "zod";
import { forgetOptionsSchema } from "../../inputs.js";
import type { PatternToolDeps } from "../deps.js";
import { locationOutput } from "../schemas.js";

export function forgetTool(deps: PatternToolDeps) {
  return defineTool({
    name: "pattern_forget",
    title: "Forget a memory",
    description:
      "Forget one memory by id. You can forget your own private and personal memories and the team or public memories you wrote; core memories need force: true.",
    input: z.strictObject({
      memoryId: memoryIdSchema.describe("Id of the memory to forget."),
      ...forgetOptionsSchema.shape,
    }),
    output: z.object({ memoryId: z.string(), removed: z.array(locationOutput) }),
    annotations: { destructiveHint: true, idempotentHint: false },
    handler: async (input) => {
      const result = await deps.store.forget(
        input.memoryId,
        input.force === undefined ? {} : { force: input.force },
      );
      const where = result.removed.map((r) => `${r.scope}/${r.category}`).join(", ");
      return { data: result, text: `Forgot memory ${result.memoryId} (${where}).` };
    },
  });
}
