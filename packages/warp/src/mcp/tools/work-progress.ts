import { defineTool } from "@loominal/mcp-kit";
import { WORK_NOTE_MAX, workIdSchema, workItemSchema } from "@loominal/protocol";
import { z } from "zod";
import type { WorkToolDeps } from "./work-tools.js";

export function workProgressTool({ work, ready }: WorkToolDeps) {
  return defineTool({
    name: "warp_work_progress",
    title: "Report progress on claimed work",
    description:
      "Reports progress on an item you claimed and extends your claim by the ack wait. Call it well before the claim expires (claimExpiresAt) while you are still working. conflict means the claim is no longer yours: stop working on the item.",
    input: z.strictObject({
      workId: workIdSchema.describe("The workId from warp_work_claim"),
      note: z.string().max(WORK_NOTE_MAX).optional().describe("What has been done so far"),
    }),
    output: z.object({ item: workItemSchema }),
    annotations: { readOnlyHint: false, idempotentHint: true },
    handler: async ({ workId, note }) => {
      await ready();
      const item = await work.progress(workId, note);
      return {
        data: { item },
        text: `Claim on ${workId} extended until ${item.claim?.expiresAt ?? "(unknown)"}.`,
      };
    },
  });
}
