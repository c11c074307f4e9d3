import { defineTool } from "@loominal/mcp-kit";
import { memoryIdSchema } from "@loominal/protocol";
import { z } from "zod";
import { shareOptionsSchema } from "../../inputs.js";
import type { PatternToolDeps } from "../deps.js";
import { describeWrite, memoryOutput } from "../schemas.js";

export function shareLearningTool(deps: PatternToolDeps) {
  return defineTool({
    name: "pattern_share_learning",
    title: "Share a private memory with the team",
    description:
      "Share one of your private memories with every agent of this project as a team memory (category learnings by default). It moves with its id; with keepOriginal: true your private memory stays and the team gets a copy with a new id. Only you can forget the shared memory.",
    input: z.strictObject({
      memoryId: memoryIdSchema.describe("Id of one of your private memories."),
      ...shareOptionsSchema.shape,
    }),
    output: z.object({
      memory: memoryOutput,
      warnings: z.array(z.string()),
      originalKept: z.boolean(),
    }),
    handler: async (input) => {
      const result = await deps.store.shareLearning(input.memoryId, {
        ...(input.category ? { category: input.category } : {}),
        ...(input.keepOriginal !== undefined ? { keepOriginal: input.keepOriginal } : {}),
      });
      const kept = result.originalKept ? ` (private original ${input.memoryId} kept)` : "";
      return {
        data: result,
        text: `${describeWrite("Shared as", result.memory, result.warnings)}${kept}`,
      };
    },
  });
}
