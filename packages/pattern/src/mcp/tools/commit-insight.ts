import { defineTool } from "@loominal/mcp-kit";
import { memoryIdSchema } from "@loominal/protocol";
import { z } from "zod";
import { contentSchema } from "../../inputs.js";
import type { PatternToolDeps } from "../deps.js";
import { describeWrite, writeOutput } from "../schemas.js";

export function commitInsightTool(deps: PatternToolDeps) {
  return defineTool({
    name: "pattern_commit_insight",
    title: "Commit an insight to long-term memory",
    description:
      "Keep a private recent or tasks memory for good: it moves to private/longterm (same id) and no longer expires. Optionally replace its content with a distilled version.",
    input: z.strictObject({
      memoryId: memoryIdSchema.describe("Id of a private recent or tasks memory."),
      newContent: contentSchema
        .optional()
        .describe("Replacement content; default: keep the current content."),
    }),
    output: writeOutput,
    handler: async (input) => {
      const { memory, warnings } = await deps.store.commitInsight(input.memoryId, input.newContent);
      return { data: { memory, warnings }, text: describeWrite("Committed", memory, warnings) };
    },
  });
}
