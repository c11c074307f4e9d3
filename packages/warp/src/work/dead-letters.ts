import { assertNameToken, type DeadLetter, type WorkItem } from "@loominal/protocol";
import { checkWorkId, invalid, OfferNotClaimable, type QueueContext } from "./context.js";
import { iso, without } from "./decision.js";
import type { DeadLetterPage, DeadLetterStore } from "./dlq.js";
import { WorkNotFoundError, WorkTransitionError } from "./errors.js";
import { transition } from "./events.js";
import type { LedgerEntry, WorkLedger } from "./ledger.js";
import type { Setup } from "./recovery.js";

export interface DeadLetterListInput {
  capability?: string;
  limit?: number;
  cursor?: string;
}

export interface DeadLetterList {
  letters: DeadLetter[];
  nextCursor?: string;
}

/** Dead letters, oldest first; letters whose item was since retried or discarded are left out. */
export async function listDeadLetters(
  ctx: QueueContext,
  input: DeadLetterListInput,
): Promise<DeadLetterList> {
  const limit = input.limit ?? 50;
  if (!Number.isInteger(limit) || limit < 1 || limit > 100)
    throw invalid("limit must be an integer from 1 to 100");
  if (input.capability !== undefined) assertNameToken(input.capability, "capability");
  if (input.cursor !== undefined && !/^[1-9][0-9]{0,15}$/.test(input.cursor))
    throw invalid("cursor must be the nextCursor of a previous warp_dlq_list result");
  return ctx.resources.guard(async () => {
    const { dlq, ledger } = await ctx.resources.ready();
    const page: DeadLetterPage = await dlq.page(limit, input.capability, input.cursor);
    const current = await Promise.all(page.letters.map((l) => ledger.get(l.letter.workId)));
    const letters: DeadLetter[] = [];
    page.letters.forEach((l, i) => {
      const item = current[i]?.item;
      // Only letters of items still dead, and of each item only the letter its record names.
      if (item?.status !== "dead" || !ctx.mayRead(item)) return;
      if (item.dead?.dlqSeq !== undefined && item.dead.dlqSeq !== l.seq) return;
      letters.push({ ...l.letter, item });
    });
    return page.nextCursor !== undefined ? { letters, nextCursor: page.nextCursor } : { letters };
  });
}

/**
 * Puts a dead item back in its queue. Without `resetAttempts` it gets one more attempt; with it, a
 * fresh `maxAttempts`.
 */
export async function retryDeadItem(
  ctx: QueueContext,
  workId: string,
  options: { resetAttempts?: boolean },
): Promise<WorkItem> {
  checkWorkId(workId);
  const reset = options.resetAttempts ?? false;
  return ctx.resources.guard(async () => {
    const { ledger, dlq } = await ctx.resources.ready();
    await ctx.journal.enter(workId);
    try {
      return await retryNoted(ctx, ledger, dlq, workId, reset);
    } finally {
      ctx.journal.leave(workId);
    }
  });
}

async function retryNoted(
  ctx: QueueContext,
  ledger: WorkLedger,
  dlq: DeadLetterStore,
  workId: string,
  reset: boolean,
): Promise<WorkItem> {
  const now = iso(Date.now());
  let letterSeq: number | undefined;
  const entry = await ledger.transition(workId, (cur) => {
    const dead = deadItem(ctx, workId, cur, "retry");
    letterSeq = dead.dead?.dlqSeq;
    return {
      ...without(dead, "dead", "availableAt"),
      status: "pending",
      attempts: reset ? 0 : dead.attempts,
      maxAttempts: reset ? ctx.settings.maxAttempts : Math.max(dead.maxAttempts, dead.attempts + 1),
      updatedAt: now,
      lastTransition: transition(["retried"], ctx.agentId, now, {
        reason: reset ? "retried with attempts reset" : "retried with one more attempt",
      }),
    };
  });
  try {
    await ctx.resources.publishOfferDurably(entry);
  } catch (err) {
    await ledger
      .transition(
        workId,
        (cur) => ({
          ...(cur ?? entry.item),
          status: "dead",
          dead: {
            reason: "retry could not be queued",
            at: now,
            ...(letterSeq ? { dlqSeq: letterSeq } : {}),
          },
          lastTransition: transition([], ctx.agentId, iso(Date.now())),
        }),
        entry,
      )
      .catch((deadErr: unknown) =>
        ctx.logger.warn(
          { workId, err: String(deadErr) },
          "a DLQ retry that could not be queued is pending in the ledger; retry it again",
        ),
      );
    throw err;
  }
  if (letterSeq !== undefined) await dlq.remove(letterSeq);
  return entry.item;
}

/** The record of an item in the dead-letter queue that this agent may see, or the error saying why not. */
function deadItem(
  ctx: QueueContext,
  workId: string,
  cur: WorkItem | undefined,
  action: "retry" | "discard",
): WorkItem {
  if (!cur || !ctx.mayRead(cur)) throw new WorkNotFoundError(workId);
  if (cur.status !== "dead")
    throw new WorkTransitionError(
      workId,
      action,
      cur.status,
      `only items in the dead-letter queue can be ${action === "retry" ? "retried" : "discarded"}`,
    );
  return cur;
}

/** Drops a dead item for good (status discarded). */
export async function discardDeadItem(ctx: QueueContext, workId: string): Promise<WorkItem> {
  checkWorkId(workId);
  return ctx.resources.guard(async () => {
    const { ledger, dlq } = await ctx.resources.ready();
    const now = iso(Date.now());
    let letterSeq: number | undefined;
    const entry = await ledger.transition(workId, (cur) => {
      const dead = deadItem(ctx, workId, cur, "discard");
      letterSeq = dead.dead?.dlqSeq;
      return {
        ...dead,
        status: "discarded",
        updatedAt: now,
        finishedAt: now,
        lastTransition: transition(["discarded"], ctx.agentId, now),
      };
    });
    if (letterSeq !== undefined) await dlq.remove(letterSeq);
    return entry.item;
  });
}

/**
 * Stores the dead letter of an item the ledger already marks dead, then records where it is; that
 * second write is the item's `dead` event. Callers dispose of the offer message only after this
 * returns, so if either step fails the message comes back and the claimer that gets it repairs the
 * missing letter (see tryClaim). A letter stored twice that way is shown once: the ledger names the
 * one that counts.
 */
export async function toDeadLetters(
  ctx: QueueContext,
  setup: Setup,
  entry: LedgerEntry,
): Promise<LedgerEntry> {
  const reason = entry.item.dead?.reason ?? "dead";
  const seq = await setup.dlq.put(entry.item, reason, entry.revision);
  try {
    return await setup.ledger.transition(
      entry.item.workId,
      (cur) => {
        if (cur?.status !== "dead" || !cur.dead) throw new OfferNotClaimable("leave", "item left the DLQ");
        return {
          ...cur,
          dead: { ...cur.dead, dlqSeq: seq },
          lastTransition: transition(["dead"], ctx.agentId, iso(Date.now()), { reason }),
        };
      },
      entry,
    );
  } catch (err) {
    // Retried or discarded in the meantime: the letter is stale and the DLQ list leaves it out.
    if (err instanceof OfferNotClaimable) return entry;
    throw err;
  }
}
