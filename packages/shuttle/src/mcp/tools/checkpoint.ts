import { defineTool } from "@loominal/mcp-kit";
import { orchestrationPhaseSchema } from "@loominal/protocol";
import { z } from "zod";
import {
  orchestrationCheckpointSchema,
  orchestrationIdInput,
  orchestrationTransitionSchema,
  type ShuttleToolDeps,
} from "../schemas.js";

export function checkpointTool({ shuttle }: ShuttleToolDeps) {
  return defineTool({
    name: "shuttle_checkpoint",
    title: "Record a checkpoint",
    description:
      "Record a note on an orchestration, optionally moving it to another phase. Phase changes are validated " +
      "(assessment → spawning → execution → collection → synthesis → complete; failed or cancelled from any " +
      "non-final phase). Moving to failed or cancelled cancels outstanding work items.",
    input: z.strictObject({
      orchestrationId: orchestrationIdInput,
      phase: orchestrationPhaseSchema.optional().describe("Phase to move to; omit to record a note only"),
      note: z.string().max(2_000).optional().describe("What to record, e.g. a decision or the next step"),
    }),
    output: z.object({
      orchestrationId: z.string(),
      phase: orchestrationPhaseSchema,
      checkpoint: orchestrationCheckpointSchema,
      history: z.array(orchestrationTransitionSchema),
    }),
    annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: false },
    async handler({ orchestrationId, phase, note }) {
      const r = await shuttle.checkpoint(orchestrationId, phase, note);
      const checkpoint = r.checkpoints.at(-1) ?? { at: r.updatedAt, phase: r.phase };
      return {
        data: { orchestrationId, phase: r.phase, checkpoint, history: r.history },
        text: `Checkpoint recorded; orchestration ${orchestrationId} is in ${r.phase}.`,
      };
    },
  });
}
