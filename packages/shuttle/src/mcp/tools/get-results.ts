import { defineTool } from "@loominal/mcp-kit";
import { orchestrationPhaseSchema, subtaskStatusSchema } from "@loominal/protocol";
import { z } from "zod";
import { defined, orchestrationIdInput, type ShuttleToolDeps } from "../schemas.js";

export function getResultsTool({ shuttle }: ShuttleToolDeps) {
  return defineTool({
    name: "shuttle_get_results",
    title: "Collect subtask results",
    description:
      "Each subtask's status, the result its worker reported, and the contents of its output file (up to 256 KiB " +
      "each); subtasks without an output file are named in missingOutputs. Reads only.",
    input: z.strictObject({ orchestrationId: orchestrationIdInput }),
    output: z.object({
      orchestrationId: z.string(),
      phase: orchestrationPhaseSchema,
      subtasks: z.array(
        z.object({
          id: z.string(),
          title: z.string(),
          status: subtaskStatusSchema,
          wave: z.int(),
          workId: z.string().optional(),
          claims: z.int(),
          claimedBy: z.string().optional(),
          result: z.unknown().optional(),
          error: z.string().optional(),
          outputPath: z.string(),
          output: z.object({ content: z.string(), bytes: z.int(), truncated: z.boolean() }).nullable(),
        }),
      ),
      missingOutputs: z.array(
        z.object({
          id: z.string(),
          status: subtaskStatusSchema,
          reason: z
            .string()
            .optional()
            .describe(
              "Why an output file that exists was not read (not a regular file, or a link leading out)",
            ),
        }),
      ),
    }),
    annotations: { readOnlyHint: true },
    async handler({ orchestrationId }) {
      const view = await shuttle.results(orchestrationId);
      const missing = view.missingOutputs.map(
        (m) => `${m.id} (${m.status}${m.reason ? `: ${m.reason}` : ""})`,
      );
      return {
        data: {
          orchestrationId,
          phase: view.record.phase,
          subtasks: view.subtasks.map((s) =>
            defined({
              id: s.id,
              title: s.title,
              status: s.status,
              wave: s.wave,
              workId: s.workId,
              claims: s.claims,
              claimedBy: s.claimedBy,
              result: s.result,
              error: s.error,
              outputPath: s.outputPath,
              output: s.output ?? null,
            }),
          ),
          missingOutputs: view.missingOutputs,
        },
        text: `${view.subtasks.length - missing.length} of ${view.subtasks.length} subtasks have output files.${missing.length > 0 ? ` Missing: ${missing.join(", ")}.` : ""}`,
      };
    },
  });
}
