import { defineTool } from "@loominal/mcp-kit";
import { orchestrationPhaseSchema, subtaskStatusSchema } from "@loominal/protocol";
import { z } from "zod";
import { orchestrationIdInput, type ShuttleToolDeps } from "../schemas.js";

export function synthesizeResultsTool({ shuttle }: ShuttleToolDeps) {
  return defineTool({
    name: "shuttle_synthesize_results",
    title: "Merge subtask outputs",
    description:
      "Merge the subtask outputs into one document in plan order (written to synthesis.md or synthesis.json in " +
      "the orchestration directory). Names subtasks that failed, were blocked, cancelled, or left no output, and " +
      "lists contradictions: the same `key: value` line stated with different values (or opposite yes/no) in two " +
      "outputs. From collection it moves to synthesis, then complete (nothing missing) or failed (gaps).",
    input: z.strictObject({
      orchestrationId: orchestrationIdInput,
      format: z
        .enum(["markdown", "json"])
        .default("markdown")
        .describe("markdown (synthesis.md, default) or json (synthesis.json)"),
    }),
    output: z.object({
      orchestrationId: z.string(),
      phase: orchestrationPhaseSchema,
      format: z.enum(["markdown", "json"]),
      path: z.string(),
      document: z.string(),
      included: z.array(z.string()),
      gaps: z.array(
        z.object({
          subtaskId: z.string(),
          title: z.string(),
          status: subtaskStatusSchema,
          reason: z.string(),
        }),
      ),
      contradictions: z.array(
        z.object({
          key: z.string(),
          kind: z.enum(["opposite_yes_no", "different_values"]),
          statements: z.array(z.object({ subtaskId: z.string(), value: z.string(), line: z.int() })),
        }),
      ),
    }),
    annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: true },
    async handler({ orchestrationId, format }) {
      const { record, synthesis, path } = await shuttle.synthesize(orchestrationId, format);
      const gaps = synthesis.gaps.map((g) => `${g.subtaskId} (${g.status})`);
      return {
        data: {
          orchestrationId,
          phase: record.phase,
          format,
          path,
          document: synthesis.document,
          included: synthesis.included,
          gaps: synthesis.gaps,
          contradictions: synthesis.contradictions,
        },
        text: `Merged ${synthesis.included.length} of ${record.subtasks.length} outputs into ${path}; phase ${record.phase}.${gaps.length > 0 ? ` Failed or missing: ${gaps.join(", ")}.` : ""}${synthesis.contradictions.length > 0 ? ` Contradictions on: ${synthesis.contradictions.map((c) => c.key).join(", ")}.` : ""}`,
      };
    },
  });
}
