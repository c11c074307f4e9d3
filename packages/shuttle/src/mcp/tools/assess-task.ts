import { defineTool } from "@loominal/mcp-kit";
import { subtaskPlanSchema } from "@loominal/protocol";
import { z } from "zod";
import { MAX_SUBTASKS } from "../../plan.js";
import { type ShuttleToolDeps, subtaskBriefSchema } from "../schemas.js";

export function assessTaskTool({ shuttle }: ShuttleToolDeps) {
  return defineTool({
    name: "shuttle_assess_task",
    title: "Plan an orchestration",
    description:
      "Validate a plan of subtasks with dependencies and order it into waves that can run in parallel. " +
      "Returns the plan with an orchestrationId (phase assessment); start it with shuttle_spawn_subagents. " +
      "Without subtasks, returns a template to fill in: you are the planner. Unknown dependencies, cycles and " +
      "duplicate ids are rejected with the offending ids named.",
    input: z.strictObject({
      task: z
        .string()
        .trim()
        .min(1)
        .max(20_000)
        .describe("The overall task, as the parent agent understands it"),
      subtasks: z
        .array(subtaskPlanSchema)
        .max(MAX_SUBTASKS)
        .optional()
        .describe("The plan: [{id, title, description, capability, dependsOn?}]; omit to get a template"),
    }),
    output: z.object({
      orchestrationId: z.string().optional(),
      phase: z.string().optional(),
      waves: z.array(z.array(z.string())).optional(),
      subtasks: z.array(subtaskBriefSchema).optional(),
      directory: z.string().optional(),
      template: z
        .object({
          task: z.string(),
          instructions: z.array(z.string()),
          subtaskShape: z.record(z.string(), z.string()),
          example: z.array(z.record(z.string(), z.unknown())),
        })
        .optional(),
    }),
    annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: false },
    async handler(input) {
      const outcome = await shuttle.assess(input.task, input.subtasks);
      if (outcome.kind === "template") {
        return {
          data: { template: outcome.template },
          text: "No subtasks given: fill in the template's subtasks and call shuttle_assess_task again.",
        };
      }
      const r = outcome.record;
      const waves = r.waves.map((w, i) => `wave ${i}: ${w.join(", ")}`).join("; ");
      return {
        data: {
          orchestrationId: r.orchestrationId,
          phase: r.phase,
          waves: r.waves,
          subtasks: r.subtasks.map((s) => ({
            id: s.id,
            title: s.title,
            capability: s.capability,
            dependsOn: s.dependsOn,
            wave: s.wave,
            status: s.status,
          })),
          directory: r.directory,
        },
        text: `Plan accepted as orchestration ${r.orchestrationId}: ${r.subtasks.length} subtasks in ${r.waves.length} waves (${waves}). Start it with shuttle_spawn_subagents.`,
      };
    },
  });
}
