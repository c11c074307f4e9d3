import { defineTool } from "@loominal/mcp-kit";
import { memoryPrioritySchema } from "@loominal/protocol";
import { z } from "zod";
import { contentSchema, relatedToSchema, tagsSchema } from "../../inputs.js";
import type { PatternToolDeps } from "../deps.js";
import { describeWrite, writeOutput } from "../schemas.js";

export function rememberTaskTool(deps: PatternToolDeps) {
  return defineTool({
    name: "pattern_remember_task",
    title: "Remember a task",
    description:
      "Note a task you are working on or must come back to (private/tasks: only you see it, and NATS expires it after the ephemeral TTL, 24 h by default). Commit it with pattern_commit_insight to keep it.",
    input: z.strictObject({
      content: contentSchema.describe("The task, 1–16,384 characters."),
      tags: tagsSchema.optional(),
      priority: memoryPrioritySchema.optional().describe("1 (most important) to 3. Default 2."),
      relatedTo: relatedToSchema.optional(),
    }),
    output: writeOutput,
    handler: async (input) => {
      const { memory, warnings } = await deps.store.remember({
        ...input,
        scope: "private",
        category: "tasks",
      });
      return { data: { memory, warnings }, text: describeWrite("Remembered task as", memory, warnings) };
    },
  });
}
