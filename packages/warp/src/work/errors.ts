import { LoominalError, type WorkStatus } from "@loominal/protocol";

/** No ledger entry has that workId. */
export class WorkNotFoundError extends LoominalError {
  override name = "WorkNotFoundError";
  constructor(workId: string) {
    super("not_found", `no work item ${workId} in this project; list items with warp_work_list`, {
      details: { workId },
    });
  }
}

/**
 * The caller no longer holds the claim it acts on: it lapsed and another claimer took the item, or the
 * item already reached another state. The caller must drop the item; its result is not recorded.
 */
export class WorkClaimConflictError extends LoominalError {
  override name = "WorkClaimConflictError";
  constructor(workId: string, action: string, situation: string, status: WorkStatus) {
    super(
      "conflict",
      `cannot ${action} work ${workId}: ${situation}. Stop working on it; claim another item with warp_work_claim`,
      { details: { workId, status } },
    );
  }
}

/** The item is in a state from which the asked transition is not allowed. */
export class WorkTransitionError extends LoominalError {
  override name = "WorkTransitionError";
  constructor(workId: string, action: string, status: WorkStatus, hint: string) {
    super("invalid_transition", `cannot ${action} work ${workId} while it is ${status}; ${hint}`, {
      details: { workId, status },
    });
  }
}

/** The durable consumer of a queue exists with settings other than this process's. */
export class WorkConsumerMismatchError extends LoominalError {
  override name = "WorkConsumerMismatchError";
  constructor(consumer: string, field: string, existing: unknown, wanted: unknown) {
    super(
      "config_mismatch",
      `consumer ${consumer} already exists with ${field} ${JSON.stringify(existing)} but this process wants ${JSON.stringify(wanted)}; align warp.work settings in .loominal.json across processes or delete the consumer`,
      { details: { consumer, field, existing, wanted } },
    );
  }
}
