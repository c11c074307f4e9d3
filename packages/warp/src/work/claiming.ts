import type { JsMsg } from "@loominal/fabric";
import { type ClaimedWork, canRead, type Owner, type WorkItem } from "@loominal/protocol";
import { OfferNotClaimable, type QueueContext } from "./context.js";
import { toDeadLetters } from "./dead-letters.js";
import {
  claimRecord,
  type Delivery,
  type DeliveryDecision,
  deadRecord,
  decideDelivery,
  expiredRecord,
} from "./decision.js";
import type { LedgerEntry } from "./ledger.js";
import type { DeliveredOffer } from "./puller.js";
import type { Setup } from "./recovery.js";

/** How long an offer this claimer may not take is kept from coming straight back to it. */
const NOT_MINE_DELAY_MS = 500;
const NOT_MINE_MAX_DELAY_MS = 30_000;

/**
 * Tries to turn one delivered offer into a claim. Returns undefined (and disposes of the message)
 * when the item may not or need not be claimed: not this agent's scope, already finished, held by a
 * live claimer, or out of attempts (then it goes to the dead-letter queue).
 */
export async function tryClaim(
  ctx: QueueContext,
  setup: Setup,
  delivered: DeliveredOffer,
): Promise<ClaimedWork | undefined> {
  const { msg, offer } = delivered;
  if (!offer) {
    ctx.logger.warn(
      { subject: msg.subject, seq: msg.seq, problem: delivered.problem },
      "dropping an invalid work offer",
    );
    msg.term();
    return undefined;
  }
  const owner: Owner = {
    projectId: offer.item.projectId,
    agentId: offer.item.offeredBy.agentId,
    userId: offer.item.offeredBy.userId,
  };
  if (
    !canRead(offer.item.scope, owner, {
      projectId: ctx.projectId,
      agentId: ctx.agentId,
      userId: ctx.userId,
    })
  ) {
    // Not for this agent: hand it back unconsumed, a little later so it does not bounce straight back.
    msg.nak(NOT_MINE_DELAY_MS);
    return undefined;
  }
  const required = offer.item.requiredAgentType;
  if (required !== undefined && ctx.agentType && ctx.agentType() !== required) {
    // For another agent type: hand it back, waiting longer each time it comes back to the wrong kind of
    // claimer, so claimers that may not take it poll it at most every 30 s instead of spinning on it.
    msg.nak(Math.min(NOT_MINE_MAX_DELAY_MS, NOT_MINE_DELAY_MS * 2 ** Math.min(6, msg.info.deliveryCount)));
    return undefined;
  }
  const workId = offer.workId;
  // The server's ack timer runs from delivery. A fresh delivery keeps that deadline (saves a message
  // per claim); one that waited in the prefetch buffer is extended to a full ack wait from now.
  const fresh = Date.now() - delivered.receivedAt < ctx.settings.ackWaitMs / 10;
  const delivery: Delivery = { seq: msg.seq, deliveryCount: msg.info.deliveryCount };
  // Set by the mutation (its last run is the one that was written).
  let decided: DeliveryDecision | undefined;
  let entry: LedgerEntry;
  try {
    entry = await setup.ledger.transition(
      workId,
      (cur) => {
        const nowMs = Date.now();
        decided = decideDelivery(cur, delivery, nowMs, "claim");
        return recordOf(ctx, cur, decided, delivery, nowMs, fresh ? delivered.receivedAt : nowMs);
      },
      { item: offer.item, revision: offer.revision },
    );
  } catch (err) {
    if (err instanceof OfferNotClaimable) {
      await dispose(ctx, setup, msg, workId, err);
      return undefined;
    }
    // The claim could not be recorded: give the message back for another try.
    msg.nak();
    throw err;
  }
  if (decided?.action === "dead") {
    await toDeadLetters(ctx, setup, entry);
    msg.term();
    return undefined;
  }
  if (!fresh) msg.working();
  const claim = entry.item.claim;
  if (entry.item.status !== "claimed" || !claim)
    throw new Error(`ledger claim of ${workId} was not recorded`);
  ctx.held.set(workId, { msg, claimId: claim.claimId, entry });
  ctx.heldChanged();
  return { ...entry.item, status: "claimed", claim };
}

/** The record a decision writes, or OfferNotClaimable when it writes none. */
export function recordOf(
  ctx: QueueContext,
  cur: WorkItem | undefined,
  d: DeliveryDecision,
  delivery: Delivery,
  nowMs: number,
  timerFromMs: number,
): WorkItem {
  if (!cur) throw new OfferNotClaimable("term", "no ledger record");
  switch (d.action) {
    case "claim":
      return claimRecord(cur, delivery, ctx.agentId, nowMs, timerFromMs, ctx.settings.ackWaitMs, d.tookOver);
    case "dead":
      return deadRecord(cur, d.reason, ctx.agentId, nowMs, d.events, d.eventReason);
    case "expire":
      return expiredRecord(cur, ctx.agentId, nowMs);
    default:
      throw new OfferNotClaimable(d.action, d.why);
  }
}

/** Does with an offer message what a decision that writes nothing says. */
export async function dispose(
  ctx: QueueContext,
  setup: Setup,
  msg: JsMsg,
  workId: string,
  err: OfferNotClaimable,
): Promise<void> {
  switch (err.action) {
    case "repair": {
      const dead = await setup.ledger.get(workId);
      if (dead?.item.status === "dead") await toDeadLetters(ctx, setup, dead);
      msg.term();
      return;
    }
    case "ack":
      msg.ack();
      return;
    case "term":
      ctx.logger.warn({ workId, why: err.why }, "dropping a work offer");
      msg.term();
      return;
    case "release":
      msg.nak();
      return;
    case "leave":
      return;
  }
}
