import { createHash } from "node:crypto";
import {
  type OrchestrationRecord,
  TERMINAL_WORK_STATUSES,
  type WorkEvent,
  type WorkItem,
} from "@loominal/protocol";
import { OFFER_NOT_QUEUED_REASON } from "@loominal/warp";

/** Work ids tried per subtask before it is failed (a new one is used only when Warp dropped an offer). */
export const MAX_OFFER_GENERATIONS = 16;

/**
 * Warp's `cancelReason` for an item it cancelled itself because the offer message could not be queued
 * (the ledger took the item, the stream did not). Offering the same id again only returns that item, so
 * Shuttle moves the subtask to its next work id.
 */
export const WARP_UNQUEUED_REASON = OFFER_NOT_QUEUED_REASON;

type WorkIdSource = Pick<OrchestrationRecord, "orchestrationId" | "createdAt">;

/**
 * The Warp work id of a subtask: 12 hex of the orchestration's creation time in ms (Warp lists sort work
 * ids by age), then the first 20 hex of sha256(orchestrationId NUL subtaskId [NUL generation]). The same
 * subtask always gets the same id, so an offer replayed after a crash is idempotent in Warp instead of
 * queuing the subtask twice. `generation` moves past an item Warp dropped (see WARP_UNQUEUED_REASON).
 */
export function subtaskWorkId(record: WorkIdSource, subtaskId: string, generation = 0): string {
  const ms = Date.parse(record.createdAt);
  const prefix = (Number.isFinite(ms) && ms > 0 ? ms : 0).toString(16).padStart(12, "0").slice(-12);
  const key =
    generation === 0
      ? `${record.orchestrationId}\0${subtaskId}`
      : `${record.orchestrationId}\0${subtaskId}\0${generation}`;
  return prefix + createHash("sha256").update(key).digest("hex").slice(0, 20);
}

/** Which generation of `subtaskWorkId` a work id is; undefined for an id Shuttle did not derive. */
export function workIdGeneration(
  record: WorkIdSource,
  subtaskId: string,
  workId: string,
): number | undefined {
  for (let g = 0; g < MAX_OFFER_GENERATIONS; g++)
    if (subtaskWorkId(record, subtaskId, g) === workId) return g;
  return undefined;
}

/** Whether Warp cancelled this item itself because its offer never reached the queue. */
export function wasDroppedByWarp(item: WorkItem): boolean {
  return item.status === "cancelled" && item.attempts === 0 && item.cancelReason === WARP_UNQUEUED_REASON;
}

function isFinal(item: WorkItem): boolean {
  return TERMINAL_WORK_STATUSES.includes(item.status);
}

/** Identifies one ledger state of an item (compared for equality only, never ordered). */
function stateKey(item: WorkItem): string {
  return [
    item.status,
    item.attempts,
    item.updatedAt,
    item.claim?.claimId ?? "",
    item.claim?.progressAt ?? "",
  ].join("|");
}

interface Applied {
  /** Ledger revision of the applied state, when known (events carry it; reads do not). */
  revision: number | undefined;
  state: string;
  final: boolean;
}

/**
 * The ledger state last applied to each work item, to tell a newer state from an older one without
 * comparing clocks: the `updatedAt` of a ledger state comes from the clock of whichever host made the
 * transition, and hosts' clocks differ.
 *
 * Work events carry the ledger revision of their transition, which only grows. `WorkQueue.get` and
 * `offer` return no revision, but what they return is the ledger as it is now, at least as new as any
 * state applied before (applied states were read from the ledger or its events earlier). So:
 * - an event is applied when its revision is above the applied one;
 * - when the applied revision is unknown (the state came from a read), an event carrying the same state
 *   teaches the revision; any other event is settled by reading the ledger again (`reread`);
 * - a read is applied, except that a final state (completed, cancelled, discarded) is never replaced by
 *   a non-final one, as the ledger never does that.
 */
export class AppliedStates {
  #byWork = new Map<string, Applied>();

  onEvent(event: WorkEvent): "apply" | "skip" | "reread" {
    const have = this.#byWork.get(event.workId);
    const state = stateKey(event.item);
    if (have?.revision !== undefined) {
      if (event.revision <= have.revision) return "skip";
      this.#byWork.set(event.workId, { revision: event.revision, state, final: isFinal(event.item) });
      return "apply";
    }
    if (have && have.state === state) {
      have.revision = event.revision;
      return "apply";
    }
    return "reread";
  }

  /** A state read from the ledger now; `revision` when it is known to be that of an event. */
  onRead(item: WorkItem, revision?: number): boolean {
    const have = this.#byWork.get(item.workId);
    if (have?.final && !isFinal(item)) return false;
    if (have?.revision !== undefined && revision !== undefined && revision < have.revision) return false;
    const state = stateKey(item);
    this.#byWork.set(item.workId, {
      revision: revision ?? (have?.state === state ? have.revision : undefined),
      state,
      final: isFinal(item),
    });
    return true;
  }

  /** Whether two ledger states are the same state. */
  static same(a: WorkItem, b: WorkItem): boolean {
    return stateKey(a) === stateKey(b);
  }

  forget(workId: string): void {
    this.#byWork.delete(workId);
  }
}
