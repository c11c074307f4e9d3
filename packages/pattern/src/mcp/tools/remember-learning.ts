import { defineTool } from "@loominal/mcp-kit";
import { memoryPrioritySchema } from "@loominal/protocol";
import { z } from "zod";
import { contentSchema, relatedToSchema, tagsSchema } from "../../inputs.js";
import type { PatternToolDeps } from "../deps.js";
import { describeWrite, writeOutput } from "../schemas.js";

export function rememberLearningTool(deps: PatternToolDeps) {
  return defineTool({
    name: "pattern_remember_learning",
    title: "Remember a learning",
    description:
      "Record something you learned that the other agents of this project should know (team/learnings), or with scope public every agent everywhere. Only you can forget it.",
    input: z.strictObject({
      content: contentSchema.describe("The learning, 1–16,384 characters."),
      scope: z.enum(["team", "public"]).optional().describe("team (default) or public."),
      tags: tagsSchema.optional(),
      priority: memoryPrioritySchema.optional().describe("1 (most important) to 3. Default 2."),
      relatedTo: relatedToSchema.optional(),
    }),
    output: writeOutput,
    handler: async (input) => {
      const { memory, warnings } = await deps.store.remember({
        ...input,
        scope: input.scope ?? "team",
        category: "learnings",
      });
      return { data: { memory, warnings }, text: describeWrite("Remembered learning as", memory, warnings) };
    },
  });
}
