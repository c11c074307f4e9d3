import { defineTool } from "@loominal/mcp-kit";
import { orchestrationPhaseSchema } from "@loominal/protocol";
import { z } from "zod";
import { orchestrationIdInput, type ShuttleToolDeps } from "../schemas.js";

export function cancelTool({ shuttle }: ShuttleToolDeps) {
  return defineTool({
    name: "shuttle_cancel",
    title: "Cancel an orchestration",
    description:
      "Cancel the orchestration's outstanding Warp work items and move it to cancelled. Subtasks already " +
      "completed keep their outputs; items that could not be cancelled (NATS unreachable) are listed.",
    input: z.strictObject({
      orchestrationId: orchestrationIdInput,
      reason: z.string().max(2_000).optional().describe("Why, recorded with the cancellation"),
    }),
    output: z.object({
      orchestrationId: z.string(),
      phase: orchestrationPhaseSchema,
      cancelledWork: z.array(z.string()),
      notCancelled: z.array(z.object({ subtaskId: z.string(), workId: z.string(), reason: z.string() })),
    }),
    annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: false },
    async handler({ orchestrationId, reason }) {
      const out = await shuttle.cancel(orchestrationId, reason);
      return {
        data: {
          orchestrationId,
          phase: out.record.phase,
          cancelledWork: out.cancelledWork,
          notCancelled: out.notCancelled,
        },
        text: `Orchestration ${orchestrationId} cancelled; ${out.cancelledWork.length} work items cancelled${out.notCancelled.length > 0 ? `, ${out.notCancelled.length} could not be (see notCancelled)` : ""}.`,
      };
    },
  });
}
