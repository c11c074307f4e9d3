import { defineTool } from "@loominal/mcp-kit";
import { z } from "zod";
import { BULK_MAX, memoryIdsInputSchema } from "../../inputs.js";
import type { PatternToolDeps } from "../deps.js";
import { errorOutput } from "../schemas.js";

export function forgetBulkTool(deps: PatternToolDeps) {
  return defineTool({
    name: "pattern_forget_bulk",
    title: "Forget many",
    description: `Forget up to ${BULK_MAX} memories by id. The rules of pattern_forget apply to each (only your own team/public memories; core needs force); each succeeds or fails on its own.`,
    input: z.strictObject({
      memoryIds: memoryIdsInputSchema.describe("Ids to forget."),
      force: z.boolean().optional().describe("Also forget core memories. Default false."),
    }),
    output: z.object({
      forgotten: z.int(),
      failed: z.int(),
      results: z.array(z.object({ memoryId: z.string(), ok: z.boolean(), error: errorOutput.optional() })),
    }),
    annotations: { destructiveHint: true },
    handler: async (input) => {
      const outcomes = await deps.store.forgetBulk(
        input.memoryIds,
        input.force === undefined ? {} : { force: input.force },
      );
      const results = outcomes.map((o, i) =>
        o.ok
          ? { memoryId: o.memoryId, ok: true }
          : { memoryId: input.memoryIds[i] ?? "", ok: false, error: o.error },
      );
      const forgotten = results.filter((r) => r.ok).length;
      const failed = results.length - forgotten;
      const failures = results
        .filter((r) => !r.ok)
        .slice(0, 10)
        .map((r) => `${r.memoryId}: ${r.error?.code}: ${r.error?.message}`);
      return {
        data: { forgotten, failed, results },
        text: [`Forgot ${forgotten} of ${results.length} memories.`, ...failures].join("\n"),
      };
    },
  });
}
