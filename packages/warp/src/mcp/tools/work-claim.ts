import { defineTool } from "@loominal/mcp-kit";
import { nameToken, workItemSchema } from "@loominal/protocol";
import { z } from "zod";
import type { WorkToolDeps } from "./work-tools.js";

export function workClaimTool({ work, ready }: WorkToolDeps) {
  return defineTool({
    name: "warp_work_claim",
    title: "Claim work",
    description:
      "Claims the next work item of a capability that you may take, waiting up to timeoutMs. The claim lasts the ack wait (default 5 minutes): call warp_work_progress to extend it, then warp_work_complete or warp_work_fail. claimed is false when nothing came in time.",
    input: z.strictObject({
      capability: nameToken("capability").describe("Capability to claim work for, e.g. typescript"),
      boundary: nameToken("boundary").optional().describe("Boundary to claim from (default: default)"),
      timeoutMs: z
        .int()
        .min(0)
        .max(60_000)
        .optional()
        .describe("How long to wait for an item, in ms (default 5000)"),
    }),
    output: z.object({ claimed: z.boolean(), item: workItemSchema.optional() }),
    annotations: { readOnlyHint: false, idempotentHint: false },
    handler: async ({ capability, boundary, timeoutMs }) => {
      await ready();
      const wait = timeoutMs ?? 5_000;
      const item = await work.claim({ capability, ...(boundary ? { boundary } : {}), timeoutMs: wait });
      if (!item) {
        return {
          data: { claimed: false },
          text: `No ${capability}@${boundary ?? "default"} work available within ${wait} ms.`,
        };
      }
      return {
        data: { claimed: true, item },
        text: `Claimed work ${item.workId} (task ${item.taskId}), attempt ${item.attempts} of ${item.maxAttempts}. Complete or fail it before ${item.claim.expiresAt}, or extend the claim with warp_work_progress.\n\n${item.description}`,
      };
    },
  });
}
