import type { WorkItem } from "@loominal/protocol";
import { WorkClaimConflictError, WorkNotFoundError } from "./errors.js";

/** The current record if this agent holds its claim; otherwise the error that explains why not. */
export function assertOwnClaim(
  me: { agentId: string; mayRead: (item: WorkItem) => boolean },
  workId: string,
  cur: WorkItem | undefined,
  action: string,
  held: { claimId: string } | undefined,
  needMessage: boolean,
): { item: WorkItem; claim: NonNullable<WorkItem["claim"]> } {
  // An item the caller may not see does not exist for it, whatever it tries (as for `get`).
  if (!cur || !me.mayRead(cur)) throw new WorkNotFoundError(workId);
  const c = cur.claim;
  if (cur.status !== "claimed" || !c) {
    const whose =
      c && (held ? c.claimId === held.claimId : c.agentId === me.agentId) ? "your claim" : "the item";
    const situation =
      cur.status === "completed"
        ? `it is already completed${cur.completedBy ? ` by agent ${cur.completedBy}` : ""}`
        : cur.status === "pending"
          ? `${whose} lapsed or failed and the item is back in the queue`
          : `it is ${cur.status}`;
    throw new WorkClaimConflictError(workId, action, situation, cur.status);
  }
  if (held ? c.claimId !== held.claimId : c.agentId !== me.agentId) {
    throw new WorkClaimConflictError(
      workId,
      action,
      held
        ? `your claim lapsed and agent ${c.agentId} claimed it (attempt ${c.attempt})`
        : `it is claimed by agent ${c.agentId}, not by you`,
      cur.status,
    );
  }
  if (needMessage && !held) {
    throw new WorkClaimConflictError(
      workId,
      action,
      `this process does not hold the claim's message (it was claimed by another process of agent ${c.agentId}, or before a restart), so it cannot extend it; complete or fail it before ${c.expiresAt}`,
      cur.status,
    );
  }
  return { item: cur, claim: c };
}
