export {
  type ClaimedWork,
  type DeadLetter,
  type WorkEvent,
  type WorkItem,
  type WorkResult,
  type WorkStatus,
  workEventSchema,
  workItemSchema,
  workStatusSchema,
} from "@loominal/protocol";
export { type Delivery, type DeliveryDecision, decideDelivery } from "./decision.js";
export {
  WorkClaimConflictError,
  WorkConsumerMismatchError,
  WorkNotFoundError,
  WorkTransitionError,
} from "./errors.js";
export { type EventWatch, eventsOf, type WatchEventsOptions } from "./events.js";
export {
  type CancelOptions,
  type ClaimInput,
  type DeadLetterList,
  type DeadLetterListInput,
  newWorkId,
  OFFER_NOT_QUEUED_REASON,
  type OfferInput,
  type WorkListFilter,
  type WorkListPage,
  WorkQueue,
  type WorkQueueOptions,
  type WorkSettings,
} from "./queue.js";
export { BOUNDARY_POLICY_BUCKET, BoundaryPolicies } from "./routing.js";
export { workStreamSpec } from "./setup.js";
export type { BoundaryQueueStatus, CapabilityQueueStatus, QueueStatus } from "./status.js";
export {
  type WaitingOffer,
  type WaitingWork,
  type WaitingWorkAgent,
  type WaitingWorkOptions,
  waitingWork,
} from "./waiting.js";
