import { defineTool } from "@loominal/mcp-kit";
import { orchestrationPhaseSchema } from "@loominal/protocol";
import { z } from "zod";
import { orchestrationIdInput, type ShuttleToolDeps, subtaskBriefSchema } from "../schemas.js";

export function spawnSubagentsTool({ shuttle }: ShuttleToolDeps) {
  return defineTool({
    name: "shuttle_spawn_subagents",
    title: "Start an orchestration",
    description:
      "Create a work directory per subtask and offer the first wave as Warp work (capability from the subtask; " +
      "contextData.shuttle carries the output path and orchestration id). Each later subtask is offered as soon " +
      "as its dependencies complete, by this server following work events, whether or not you call tools. " +
      "Needs NATS.",
    input: z.strictObject({ orchestrationId: orchestrationIdInput }),
    output: z.object({
      orchestrationId: z.string(),
      phase: orchestrationPhaseSchema,
      directory: z.string(),
      subtasks: z.array(subtaskBriefSchema),
    }),
    annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: false },
    async handler({ orchestrationId }) {
      const r = await shuttle.spawn(orchestrationId);
      const offered = r.subtasks.filter((s) => s.workId !== undefined).map((s) => s.id);
      return {
        data: {
          orchestrationId,
          phase: r.phase,
          directory: r.directory,
          subtasks: r.subtasks.map((s) => ({
            id: s.id,
            title: s.title,
            capability: s.capability,
            dependsOn: s.dependsOn,
            wave: s.wave,
            status: s.status,
            ...(s.workId ? { workId: s.workId } : {}),
          })),
        },
        text: `Orchestration ${orchestrationId} is in ${r.phase}; offered ${offered.length ? offered.join(", ") : "nothing yet (will retry)"}. Follow it with shuttle_get_state.`,
      };
    },
  });
}
