import { defineTool } from "@loominal/mcp-kit";
import { memoryPrioritySchema } from "@loominal/protocol";
import { z } from "zod";
import { contentSchema, tagsSchema } from "../../inputs.js";
import type { PatternToolDeps } from "../deps.js";
import { describeWrite, writeOutput } from "../schemas.js";

export function coreMemoryTool(deps: PatternToolDeps) {
  return defineTool({
    name: "pattern_core_memory",
    title: "Store a core memory",
    description:
      "Store a core memory: something about you or how you work that should follow you into every project (personal/core). Core memories come first in pattern_recall_context. At most pattern.maxCoreMemories (100 by default); forgetting one needs force: true.",
    input: z.strictObject({
      content: contentSchema.describe("The core memory, 1–16,384 characters."),
      tags: tagsSchema.optional(),
      priority: memoryPrioritySchema.optional().describe("1 (most important) to 3. Default 2."),
    }),
    output: writeOutput,
    handler: async (input) => {
      const { memory, warnings } = await deps.store.remember({
        ...input,
        scope: "personal",
        category: "core",
      });
      return { data: { memory, warnings }, text: describeWrite("Stored core memory as", memory, warnings) };
    },
  });
}
