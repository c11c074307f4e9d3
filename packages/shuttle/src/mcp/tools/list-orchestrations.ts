import { defineTool } from "@loominal/mcp-kit";
import { orchestrationPhaseSchema } from "@loominal/protocol";
import { z } from "zod";
import { type ShuttleToolDeps, summarySchema } from "../schemas.js";

export function listOrchestrationsTool({ shuttle }: ShuttleToolDeps) {
  return defineTool({
    name: "shuttle_list_orchestrations",
    title: "List orchestrations",
    description:
      "Orchestrations of this project, most recently updated first: those in this server's work dir, plus " +
      "those other Shuttle servers of the project mirrored to NATS (when NATS is reachable).",
    input: z.strictObject({
      phase: orchestrationPhaseSchema.optional().describe("Only orchestrations in this phase"),
      limit: z.int().min(1).max(200).default(20).describe("At most this many (default 20)"),
    }),
    output: z.object({ orchestrations: z.array(summarySchema), count: z.int() }),
    annotations: { readOnlyHint: true },
    async handler({ phase, limit }) {
      const list = await shuttle.list({ ...(phase ? { phase } : {}), limit });
      return {
        data: { orchestrations: list, count: list.length },
        text:
          list.length === 0
            ? "No orchestrations."
            : list
                .map(
                  (o) =>
                    // One line per orchestration: a task's own line breaks must not start lines that
                    // read as other orchestrations.
                    `${o.orchestrationId} ${o.phase} ${o.completed}/${o.subtasks}: ${o.task.replace(/\s+/g, " ").trim().slice(0, 80)}`,
                )
                .join("\n"),
      };
    },
  });
}
