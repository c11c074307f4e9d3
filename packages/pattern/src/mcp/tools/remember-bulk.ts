import { defineTool } from "@loominal/mcp-kit";
import { z } from "zod";
import { BULK_MAX, type RememberInput, rememberBulkInputSchema } from "../../inputs.js";
import type { PatternToolDeps } from "../deps.js";
import { errorOutput, locationOutput } from "../schemas.js";

export function rememberBulkTool(deps: PatternToolDeps) {
  return defineTool({
    name: "pattern_remember_bulk",
    title: "Remember many",
    description: `Store up to ${BULK_MAX} memories in one call, each with the same fields as pattern_remember. Each one succeeds or fails on its own (an invalid item, say empty content, fails only itself with invalid_input); the result lists them in order.`,
    input: z.strictObject({
      memories: rememberBulkInputSchema.describe("The memories to store."),
    }),
    output: z.object({
      stored: z.int(),
      failed: z.int(),
      results: z.array(
        z.object({
          index: z.int(),
          ok: z.boolean(),
          memoryId: z.string().optional(),
          location: locationOutput.optional(),
          error: errorOutput.optional(),
        }),
      ),
      warnings: z.array(z.string()),
    }),
    handler: async (input) => {
      // Each item is validated as it is stored (an invalid one fails only its result).
      const outcomes = await deps.store.rememberBulk(input.memories as RememberInput[]);
      const warnings: string[] = [];
      const results = outcomes.map((o, index) => {
        if (!o.ok) return { index, ok: false, error: o.error };
        warnings.push(...o.warnings);
        return {
          index,
          ok: true,
          memoryId: o.memory.id,
          location: { scope: o.memory.scope, category: o.memory.category },
        };
      });
      const stored = results.filter((r) => r.ok).length;
      const failed = results.length - stored;
      const failures = results
        .filter((r) => !r.ok)
        .slice(0, 10)
        .map((r) => `#${r.index}: ${r.error?.code}: ${r.error?.message}`);
      const text = [
        `Stored ${stored} of ${results.length} memories.`,
        ...failures,
        ...warnings.map((w) => `WARNING: ${w}`),
      ].join("\n");
      return { data: { stored, failed, results, warnings }, text };
    },
  });
}
