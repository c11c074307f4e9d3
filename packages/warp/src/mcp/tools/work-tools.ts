import type { ToolDefinition } from "@loominal/mcp-kit";
import type { WorkQueue } from "../../work/index.js";
import { dlqDiscardTool } from "./dlq-discard.js";
import { dlqListTool } from "./dlq-list.js";
import { dlqRetryTool } from "./dlq-retry.js";
import { workBroadcastTool } from "./work-broadcast.js";
import { workClaimTool } from "./work-claim.js";
import { workCompleteTool } from "./work-complete.js";
import { workFailTool } from "./work-fail.js";
import { workGetTool } from "./work-get.js";
import { workListTool } from "./work-list.js";
import { workProgressTool } from "./work-progress.js";
import { workQueueStatusTool } from "./work-queue-status.js";

export interface WorkToolDeps {
  work: WorkQueue;
  /**
   * Resolves once this process may act as its agent (NATS connected, identity claimed), so work is
   * never offered, claimed or completed under an identity another live process holds.
   */
  ready: () => Promise<void>;
}

/** The work queue and dead-letter tools of Warp, in the order clients list them. */
export function workTools(deps: WorkToolDeps): ToolDefinition[] {
  return [
    workBroadcastTool(deps),
    workClaimTool(deps),
    workProgressTool(deps),
    workCompleteTool(deps),
    workFailTool(deps),
    workGetTool(deps),
    workListTool(deps),
    workQueueStatusTool(deps),
    dlqListTool(deps),
    dlqRetryTool(deps),
    dlqDiscardTool(deps),
  ];
}
