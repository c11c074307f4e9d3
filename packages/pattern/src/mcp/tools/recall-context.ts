import { defineTool } from "@loominal/mcp-kit";
import { memoryCategorySchema, memoryTagSchema } from "@loominal/protocol";
import { z } from "zod";
import type { PatternToolDeps } from "../deps.js";
import { memoryOutput, scopesInput } from "../schemas.js";

export function recallContextTool(deps: PatternToolDeps) {
  return defineTool({
    name: "pattern_recall_context",
    title: "Recall context",
    description:
      "Load what you should know at the start of a session: memories in priority order (core, longterm, team decisions, architecture, learnings, recent, tasks, then public), with a Markdown summary of at most maxBytes (default 4 KiB). The memories returned are exactly those in the summary. Call it first in a new session.",
    input: z.strictObject({
      scopes: scopesInput.optional(),
      categories: z.array(memoryCategorySchema).min(1).max(7).optional().describe("Only these categories."),
      tags: z
        .array(memoryTagSchema)
        .min(1)
        .max(20)
        .optional()
        .describe("Only memories with any of these tags."),
      search: z.string().max(500).optional().describe("Only memories containing every word of this text."),
      since: z.iso
        .datetime({ offset: true })
        .optional()
        .describe("Only memories updated at or after this ISO-8601 time."),
      limit: z.int().min(1).max(500).optional().describe("At most this many memories. Default 50."),
      maxBytes: z
        .int()
        .min(256)
        .max(1_048_576)
        .optional()
        .describe("Summary size limit in bytes. Default 4096."),
    }),
    output: z.object({
      memories: z.array(memoryOutput),
      summary: z.string(),
      matched: z.int().describe("Memories that matched, before limit and maxBytes."),
      returned: z.int(),
      truncated: z.boolean(),
      counts: z.record(z.string(), z.int()).describe("Matching memories per scope/category."),
    }),
    annotations: { readOnlyHint: true },
    handler: async (input) => {
      const r = await deps.store.recallContext(input);
      return {
        data: { ...r, returned: r.memories.length },
        text: r.summary,
      };
    },
  });
}
