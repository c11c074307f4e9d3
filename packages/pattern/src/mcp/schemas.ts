import { memoryCategorySchema, memoryRecordBaseSchema, scopeSchema } from "@loominal/protocol";
import { z } from "zod";
import type { Memory } from "../recall.js";

/** A memory in a tool result: the stored record, plus `expiresAt` for the ephemeral categories. */
export const memoryOutput = memoryRecordBaseSchema.extend({
  expiresAt: z.string().optional().describe("When NATS expires this memory (recent and tasks only)."),
});

/** A memory in pattern_recall_context's result: like memoryOutput, with long content cut. */
export const recalledMemoryOutput = memoryOutput.extend({
  contentTruncated: z
    .literal(true)
    .optional()
    .describe(
      "Set when content was cut to the 500 characters the summary shows; pattern_search or pattern_export give the full text.",
    ),
});

/** The result of a tool that writes one memory. */
export const writeOutput = z.object({
  memory: memoryOutput,
  warnings: z.array(z.string()).describe("Set when the content looks like a secret; act on it."),
  duplicate: z
    .boolean()
    .optional()
    .describe("true when the idempotencyKey was used before: memory is the one stored then."),
});

export const errorOutput = z.object({ code: z.string(), message: z.string() });

export const locationOutput = z.object({ scope: scopeSchema, category: memoryCategorySchema });

/** One line describing a written memory, with its warnings, for a tool's text result. */
export function describeWrite(verb: string, memory: Memory, warnings: readonly string[]): string {
  const expiry = memory.expiresAt ? `, expires ${memory.expiresAt}` : "";
  const lines = [`${verb} ${memory.scope}/${memory.category} memory ${memory.id}${expiry}.`];
  for (const w of warnings) lines.push(`WARNING: ${w}`);
  return lines.join("\n");
}
