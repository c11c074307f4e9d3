import { defineTool } from "@loominal/mcp-kit";
import { z } from "zod";
import { recallContextInputSchema } from "../../inputs.js";
import type { PatternToolDeps } from "../deps.js";
import { recalledMemoryOutput } from "../schemas.js";

export function recallContextTool(deps: PatternToolDeps) {
  return defineTool({
    name: "pattern_recall_context",
    title: "Recall context",
    description:
      "Load what you should know at the start of a session: memories in priority order (core, longterm, team decisions, architecture, learnings, recent, tasks, then public), with a Markdown summary of at most maxBytes (default 4 KiB). The memories returned are exactly those in the summary; their content totals at most maxBytes too (content over 500 characters is cut and marked contentTruncated). Call it first in a new session.",
    input: recallContextInputSchema,
    output: z.object({
      memories: z
        .array(recalledMemoryOutput)
        .describe("The memories in the summary, in order; their content totals at most maxBytes."),
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
