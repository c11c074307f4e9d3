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
      "Call first in a session: what you should know, in priority order (core, longterm, team decisions, architecture, learnings, recent, tasks, public), as a Markdown summary of at most maxBytes (default 4 KiB) and the memories in it (content over 500 characters cut, marked contentTruncated).",
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
