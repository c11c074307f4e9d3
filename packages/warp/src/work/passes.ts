import type { JsMsg } from "@loominal/fabric";
import { streams, workIdSchema } from "@loominal/protocol";
import { dispose, recordOf } from "./claiming.js";
import { OfferNotClaimable, type QueueContext } from "./context.js";
import { toDeadLetters } from "./dead-letters.js";
import { type Delivery, type DeliveryDecision, decideDelivery } from "./decision.js";
import { STRANDED_AFTER_MS, strandedJournals } from "./journal.js";
import type { LedgerEntry } from "./ledger.js";
import { WorkMaintenance } from "./maintenance.js";
import { decodeOffer } from "./puller.js";
import type { Setup } from "./recovery.js";

/** How often the maintenance lease holder runs a pass (and others try to take the lease). */
const DEFAULT_MAINTENANCE_INTERVAL_MS = 2_000;
/** Pulls per consumer and pass, messages per pull, and how long a sweep pull waits. */
const SWEEP_ROUNDS = 8;
const SWEEP_BATCH = 16;
const SWEEP_PULL_EXPIRES_MS = 1_000;
/** How often maintenance removes finished items past their retention. */
const RETENTION_PASS_MS = 60_000;
const DAY_MS = 86_400_000;

/**
 * Starts this process's part in work maintenance: it takes the project's maintenance lease when free
 * and, while it holds it, runs the passes below every `intervalMs`.
 */
export function startWorkMaintenance(
  ctx: QueueContext,
  options: { intervalMs?: number; strandedAfterMs?: number },
): WorkMaintenance {
  const maintenance = new WorkMaintenance({
    fabric: ctx.fabric,
    projectId: ctx.projectId,
    holder: `${ctx.agentId} pid ${process.pid}`,
    intervalMs: options.intervalMs ?? DEFAULT_MAINTENANCE_INTERVAL_MS,
    logger: ctx.logger,
    tasks: [
      { name: "lapsed claims", run: (signal) => sweepLapsedClaims(ctx, signal).then(() => undefined) },
      {
        name: "retention",
        everyMs: RETENTION_PASS_MS,
        run: (signal) => purgeFinishedItems(ctx, signal).then(() => undefined),
      },
      {
        name: "stranded offers",
        run: () => repairStrandedOffers(ctx, options.strandedAfterMs).then(() => undefined),
      },
    ],
  });
  maintenance.start();
  return maintenance;
}

/**
 * Removes from the ledger the items that finished more than `work.retentionDays` ago (dead items once
 * their dead letters expired too), at most `maxItems` per call. Returns how many it removed.
 */
export async function purgeFinishedItems(
  ctx: QueueContext,
  signal?: AbortSignal,
  maxItems = 10_000,
): Promise<number> {
  const { ledger } = await ctx.resources.ready();
  const now = Date.now();
  const keepMs = ctx.settings.retentionDays * DAY_MS;
  const removed = await ledger.purgeFinished(
    now - keepMs,
    now - Math.max(keepMs, ctx.settings.dlqMaxAgeMs),
    maxItems,
    signal,
  );
  if (removed > 0) ctx.logger.info({ removed }, "removed finished work items past their retention");
  return removed;
}

/**
 * Queues the offers of journals that offerers left behind (they stopped between writing the ledger and
 * publishing): each item still pending from that very write is published again. Its message id makes
 * the publish a duplicate the stream drops if the first one did land within two minutes, and claimers
 * ignore a later duplicate. Returns how many offers were published.
 */
export async function repairStrandedOffers(
  ctx: QueueContext,
  strandedAfterMs = STRANDED_AFTER_MS,
): Promise<number> {
  const { ledger } = await ctx.resources.ready();
  let published = 0;
  for (const journal of await strandedJournals(ctx.fabric, ctx.projectId, strandedAfterMs, ctx.logger)) {
    for (const workId of journal.workIds) {
      const r = workIdSchema.safeParse(workId);
      if (!r.success) continue;
      const entry = await ledger.get(r.data);
      if (entry?.item.status !== "pending") continue;
      const events = entry.item.lastTransition?.events ?? [];
      if (!events.includes("offered") && !events.includes("retried")) continue;
      await ctx.resources.publishOfferDurably(entry);
      published++;
      ctx.logger.info(
        { workId, offerer: journal.holder },
        "queued an offer its offerer left pending in the ledger",
      );
    }
    await journal.done();
  }
  return published;
}

/**
 * Looks at one offer message on behalf of the maintenance sweep: a claim that lapsed goes back to the
 * queue (or, on its last attempt, to the dead-letter queue); anything else is handed back or disposed
 * of as a claimer would. Returns whether it moved a lapsed claim on.
 */
async function sweepDelivery(ctx: QueueContext, setup: Setup, msg: JsMsg): Promise<boolean> {
  const decoded = decodeOffer(msg);
  if (!decoded.offer) {
    ctx.logger.warn(
      { subject: msg.subject, seq: msg.seq, problem: decoded.problem },
      "dropping an invalid work offer",
    );
    msg.term();
    return false;
  }
  const workId = decoded.offer.workId;
  const delivery: Delivery = { seq: msg.seq, deliveryCount: msg.info.deliveryCount };
  let decided: DeliveryDecision | undefined;
  let entry: LedgerEntry;
  try {
    entry = await setup.ledger.transition(workId, (cur) => {
      const nowMs = Date.now();
      decided = decideDelivery(cur, delivery, nowMs, "sweep");
      return recordOf(ctx, cur, decided, delivery, nowMs, nowMs);
    });
  } catch (err) {
    if (err instanceof OfferNotClaimable) {
      await dispose(ctx, setup, msg, workId, err);
      return false;
    }
    msg.nak();
    throw err;
  }
  if (decided?.action === "dead") {
    await toDeadLetters(ctx, setup, entry);
    msg.term();
  } else msg.nak();
  ctx.logger.debug({ workId, action: decided?.action }, "maintenance moved a lapsed claim on");
  return true;
}

/**
 * Moves on claims that lapsed while no claimer was pulling: the server redelivers a message only to a
 * pull, so without this an item whose only claimer died would show `claimed` until the next claim.
 * For each consumer with unacknowledged messages and no waiting claimer it pulls what the server
 * offers (redeliveries come first) and decides on each as the sweep: lapsed claims go back to
 * `pending` (or dead on their last attempt); a pending offer pulled by the way is handed straight back.
 */
export async function sweepLapsedClaims(ctx: QueueContext, signal?: AbortSignal): Promise<number> {
  const setup = await ctx.resources.ready();
  const jsm = await ctx.fabric.jsm();
  const stream = streams.work(ctx.projectId);
  let moved = 0;
  const idle = [];
  for await (const ci of jsm.consumers.list(stream)) {
    if (ci.num_ack_pending > 0 && ci.num_waiting === 0) idle.push(ci);
  }
  for (const ci of idle) {
    const consumer = await ctx.fabric.js.consumers.get(stream, ci.name);
    for (let round = 0; round < SWEEP_ROUNDS && !signal?.aborted; round++) {
      // With offers waiting, take one at a time so few are pulled by the way; redeliveries come first.
      const max = ci.num_pending > 0 ? 1 : Math.min(SWEEP_BATCH, ci.num_ack_pending);
      const messages = await consumer.fetch({ max_messages: max, expires: SWEEP_PULL_EXPIRES_MS });
      let got = 0;
      let lapsed = 0;
      for await (const m of messages) {
        got++;
        if (await sweepDelivery(ctx, setup, m)) lapsed++;
      }
      moved += lapsed;
      if (lapsed === 0 || got < max) break;
    }
  }
  return moved;
}
