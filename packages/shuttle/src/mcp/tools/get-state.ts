import { defineTool } from "@loominal/mcp-kit";
import { z } from "zod";
import { summarize } from "../../orchestrator.js";
import {
  orchestrationIdInput,
  orchestrationRecordSchema,
  type ShuttleToolDeps,
  summarySchema,
} from "../schemas.js";

export function getStateTool({ shuttle }: ShuttleToolDeps) {
  return defineTool({
    name: "shuttle_get_state",
    title: "Show an orchestration",
    description:
      "The orchestration's phase, phase history with timestamps, checkpoints, and every subtask's status, work " +
      "item, claims and last error. Works without NATS for orchestrations in this server's work dir.",
    input: z.strictObject({ orchestrationId: orchestrationIdInput }),
    output: z.object({
      summary: summarySchema,
      orchestration: orchestrationRecordSchema,
      mirrorPending: z.boolean().describe("True while the latest version has not reached the NATS bucket"),
    }),
    annotations: { readOnlyHint: true },
    async handler({ orchestrationId }) {
      const r = await shuttle.get(orchestrationId);
      const summary = { ...summarize(r), local: shuttle.isLocal(r) };
      const byStatus = r.subtasks.map((s) => `${s.id}: ${s.status}`).join(", ");
      return {
        data: {
          summary,
          orchestration: r,
          mirrorPending: shuttle.store.pendingMirror.includes(orchestrationId),
        },
        text: `Orchestration ${orchestrationId} is in ${r.phase} (${summary.completed}/${summary.subtasks} completed). ${byStatus}.`,
      };
    },
  });
}
