import { type Fabric, isCasConflict, type Logger, StorageFullError, silentLogger } from "@loominal/fabric";
import {
  assertAgentId,
  assertNameToken,
  type ClaimedWork,
  canRead,
  DEFAULT_BOUNDARY,
  LoominalError,
  randomId,
  WORK_RESULT_MAX_BYTES,
  type WorkEvent,
  type WorkItem,
  type WorkResult,
  type WorkStatus,
  workOfferInputSchema,
  workResultSchema,
  workStatusSchema,
} from "@loominal/protocol";
import type { z } from "zod";
import { tryClaim } from "./claiming.js";
import { checkWorkId, type HeldClaim, invalid, type QueueContext, type WorkSettings } from "./context.js";
import {
  type DeadLetterList,
  type DeadLetterListInput,
  discardDeadItem,
  listDeadLetters,
  retryDeadItem,
  toDeadLetters,
} from "./dead-letters.js";
import { iso, revise, without } from "./decision.js";
import { WorkClaimConflictError, WorkNotFoundError, WorkTransitionError } from "./errors.js";
import { type EventWatch, eventsOf, transition, type WatchEventsOptions } from "./events.js";
import { OfferJournal, STRANDED_AFTER_MS } from "./journal.js";
import type { LedgerEntry, WorkLedger } from "./ledger.js";
import type { WorkMaintenance } from "./maintenance.js";
import { assertOwnClaim } from "./ownership.js";
import {
  purgeFinishedItems,
  repairStrandedOffers,
  startWorkMaintenance,
  sweepLapsedClaims,
} from "./passes.js";
import { QueueResources } from "./recovery.js";
import { BoundaryPolicies } from "./routing.js";
import { type QueueStatus, queueStatus } from "./status.js";

export type { WorkSettings } from "./context.js";
export type { DeadLetterList, DeadLetterListInput } from "./dead-letters.js";

/**
 * The `cancelReason` of an item the offerer cancelled itself because the ledger took it but the work
 * stream did not: nobody will ever be offered it. A caller using idempotent `workId`s must offer such a
 * task again under a new id.
 */
export const OFFER_NOT_QUEUED_REASON = "the offer could not be queued";

export interface WorkQueueOptions {
  fabric: Fabric;
  projectId: string;
  agentId: string;
  userId: string;
  settings: WorkSettings;
  logger?: Logger;
  /**
   * Offers fetched ahead of claims, per boundary+capability (default 1: nothing is held beyond the
   * claim being made). Set it higher in a process that claims in a loop; buffered offers are handed
   * back after half the ack wait and on close.
   */
  prefetch?: number;
  /**
   * How long a prefetched offer may wait unclaimed in this process before it is handed back to the
   * queue, in ms (default: the smaller of 5000 and half the ack wait). Other processes cannot take an
   * offer while it is held here, so keep this short.
   */
  prefetchHoldMs?: number;
  /** How long an operation waits for a NATS connection before failing with nats_unavailable (ms). */
  connectTimeoutMs?: number;
  /**
   * Bytes the ledger holds in reserve for a full JetStream store (default 512 KiB): when the store fills,
   * claims, completions and failures of accepted work use the room it frees, and new offers are refused
   * with `storage_full` until the reserve can be written again.
   */
  storageReserveBytes?: number;
  /**
   * The agent type claims are made as (undefined: not registered). When given, every claim is checked
   * against the boundary's routing policy (KV `loom-boundaries`) and against an item's
   * `requiredAgentType`. Without it claims are not checked (a process that only offers and reads).
   */
  agentType?: () => string | undefined;
}

export type OfferInput = z.input<typeof workOfferInputSchema> & {
  /**
   * Makes the offer idempotent: the item gets this id (32 lower-case hex), and offering the same id
   * again returns the item already stored instead of queuing a second one. Use an id derived from the
   * caller's own key (e.g. a hash of orchestration and subtask) so a retried or replayed offer cannot
   * create duplicate work. Offering an existing id with a different taskId, capability or boundary is a
   * `conflict`.
   */
  workId?: string;
};

export interface ClaimInput {
  capability: string;
  boundary?: string;
  /** How long to wait for an item, in ms (default 5000; at least ~200 ms is always allowed for the round trip). */
  timeoutMs?: number;
}

export interface CancelOptions {
  /** Cancel on behalf of a coordinator surface that authorised the request itself (Weft). */
  asCoordinator?: boolean;
}

export interface WorkListFilter {
  capability?: string;
  boundary?: string;
  status?: WorkStatus | readonly WorkStatus[];
  offeredBy?: string;
  claimedBy?: string;
  /** 1–100, default 50. */
  limit?: number;
  cursor?: string;
}

export interface WorkListPage {
  items: WorkItem[];
  nextCursor?: string;
}
/** Default wait of a claim, and the shortest one (a pull needs a round trip). */
const DEFAULT_CLAIM_TIMEOUT_MS = 5_000;
const MIN_CLAIM_WAIT_MS = 200;
const MAX_CLAIM_TIMEOUT_MS = 300_000;
const MAX_RETRY_BACKOFF_MS = 300_000;
const DEFAULT_PREFETCH_HOLD_MS = 5_000;
const DEFAULT_RESERVE_BYTES = 512 * 1024;
/** How often an offerer looks whether the storage reserve is in place. */
const RESERVE_CHECK_MS = 1_000;

let lastWorkId = "";

/**
 * A worker's result, validated. A text result short enough that its JSON cannot pass the size limit
 * (at most 6 bytes per UTF-16 unit, escaped) is valid as it is, without running the schema.
 */
function checkResult(result: unknown): ReturnType<typeof workResultSchema.safeParse> {
  if (typeof result === "string" && result.length * 6 + 2 <= WORK_RESULT_MAX_BYTES)
    return { success: true, data: result };
  return workResultSchema.safeParse(result);
}

/**
 * A new work id: 12 hex of the creation time in ms, then 20 random hex (sorts by age, unique). Ids made
 * by one process only grow, even within one millisecond, so its items list in the order it offered them.
 */
export function newWorkId(now = Date.now()): string {
  let id = now.toString(16).padStart(12, "0").slice(-12) + randomId().slice(0, 20);
  if (id <= lastWorkId) id = (BigInt(`0x${lastWorkId}`) + 1n).toString(16).padStart(32, "0").slice(-32);
  lastWorkId = id;
  return id;
}
/**
 * Work queues of one project, as one agent sees them.
 *
 * An offer is written to the work ledger (KV) and published to the work-queue stream on
 * `loom.<p>.work.<boundary>.<capability>`. A claim pulls the message through the durable consumer of
 * that boundary+capability and records the claim in the ledger by compare-and-set; the message stays
 * unacknowledged while the claim is held, and progress extends its ack deadline. Complete acks it,
 * fail naks it with backoff (or sends the item to the dead-letter stream), and a claim that is neither
 * completed nor extended within `ackWaitMs` comes back to the queue. Every transition is one ledger
 * compare-and-set, and that write is also the work event: it carries `lastTransition` (which events,
 * who, when), and `watchEvents` follows the ledger bucket, so an event can never be lost or disagree
 * with the state it reports.
 *
 * Delivery is at least once; completion is at most once (the ledger's first writer wins).
 */
export class WorkQueue {
  readonly projectId: string;
  readonly agentId: string;
  readonly userId: string;
  readonly settings: WorkSettings;
  #fabric: Fabric;
  #logger: Logger;
  #agentType: (() => string | undefined) | undefined;
  #policies: BoundaryPolicies;
  #held = new Map<string, HeldClaim>();
  #heldListeners = new Set<() => void>();
  #maintenance: WorkMaintenance | undefined;
  #journal: OfferJournal;
  /** The streams, ledger and pullers this queue runs on, re-made when they vanish. */
  #r: QueueResources;
  /** What the queue's parts (claiming, dead letters, maintenance passes) share. */
  #ctx: QueueContext;
  /** Who this queue acts as, for ownership checks. */
  #me: { agentId: string; mayRead: (item: WorkItem) => boolean };
  #storageReserveBytes: number;
  /** Whether the storage reserve is in place, as last looked at (at `#reserveCheckedAt`). */
  #reserveCheck: Promise<boolean> | undefined;
  #reserveCheckedAt = 0;
  /** A test hook: die at this point (to prove what survives a crash there). */
  #crashAt = process.env.LOOMINAL_TEST_CRASH_AT;
  #closed = false;

  constructor(options: WorkQueueOptions) {
    this.#fabric = options.fabric;
    this.projectId = options.projectId;
    this.agentId = options.agentId;
    this.userId = options.userId;
    this.settings = options.settings;
    this.#logger = options.logger ?? silentLogger();
    this.#r = new QueueResources({
      fabric: this.#fabric,
      projectId: this.projectId,
      settings: this.settings,
      logger: this.#logger,
      connectTimeoutMs: options.connectTimeoutMs ?? 2_000,
      prefetch: Math.max(1, Math.floor(options.prefetch ?? 1)),
      prefetchHoldMs: Math.max(
        50,
        Math.floor(options.prefetchHoldMs ?? Math.min(DEFAULT_PREFETCH_HOLD_MS, this.settings.ackWaitMs / 2)),
      ),
      closed: () => this.#closed,
      onReserveReleased: () => {
        this.#reserveCheck = Promise.resolve(false);
        this.#reserveCheckedAt = Date.now();
      },
    });
    this.#me = { agentId: this.agentId, mayRead: (item) => this.#mayRead(item) };
    this.#storageReserveBytes = Math.max(1, Math.floor(options.storageReserveBytes ?? DEFAULT_RESERVE_BYTES));
    this.#journal = new OfferJournal(
      this.#fabric,
      this.projectId,
      `${this.agentId} pid ${process.pid}`,
      this.#logger,
    );
    this.#agentType = options.agentType;
    this.#policies = new BoundaryPolicies(this.#fabric);
    this.#ctx = {
      fabric: this.#fabric,
      projectId: this.projectId,
      agentId: this.agentId,
      userId: this.userId,
      settings: this.settings,
      logger: this.#logger,
      resources: this.#r,
      journal: this.#journal,
      held: this.#held,
      heldChanged: () => this.#heldChanged(),
      agentType: this.#agentType,
      mayRead: (item) => this.#mayRead(item),
    };
  }

  /** Items this process currently holds claims on. */
  get heldClaims(): string[] {
    return [...this.#held.keys()];
  }

  /** Calls `listener` whenever the set of claims this process holds changes; returns the unsubscribe. */
  onHeldChange(listener: () => void): () => void {
    this.#heldListeners.add(listener);
    return () => this.#heldListeners.delete(listener);
  }

  #heldChanged(): void {
    for (const listener of this.#heldListeners) {
      try {
        listener();
      } catch (err) {
        this.#logger.warn({ err: String(err) }, "a held-claims listener failed");
      }
    }
  }

  /** Offers an item; resolves once the ledger and the work stream have stored it. */
  async offer(input: OfferInput): Promise<WorkItem> {
    const { workId: givenId, ...fields } = input;
    const workId = givenId === undefined ? undefined : checkWorkId(givenId);
    const parsed = workOfferInputSchema.safeParse(fields);
    if (!parsed.success) {
      throw invalid(
        `invalid work offer: ${parsed.error.issues.map((i) => `${i.path.join(".") || "(offer)"}: ${i.message}`).join("; ")}`,
      );
    }
    const o = parsed.data;
    const now = Date.now();
    const at = iso(now);
    const item: WorkItem = {
      workId: workId ?? newWorkId(now),
      projectId: this.projectId,
      taskId: o.taskId,
      description: o.description,
      capability: o.capability,
      boundary: o.boundary ?? DEFAULT_BOUNDARY,
      priority: o.priority ?? 5,
      ...(o.requiredAgentType !== undefined ? { requiredAgentType: o.requiredAgentType } : {}),
      ...(o.deadline !== undefined ? { deadline: o.deadline } : {}),
      ...(o.contextData !== undefined ? { contextData: o.contextData } : {}),
      scope: o.scope ?? "team",
      offeredBy: { agentId: this.agentId, userId: this.userId },
      status: "pending",
      attempts: 0,
      maxAttempts: this.settings.maxAttempts,
      createdAt: at,
      updatedAt: at,
      lastTransition: transition(["offered"], this.agentId, at),
    };
    return this.#r.guard(async () => {
      const { ledger } = await this.#r.ready();
      await this.#assertRoomForOffers(ledger);
      // Noted before the ledger write, so if this process dies before the publish, maintenance queues it.
      await this.#journal.enter(item.workId);
      try {
        return await this.#offerNoted(ledger, item, workId !== undefined);
      } finally {
        this.#journal.leave(item.workId);
      }
    });
  }

  /**
   * New offers need the storage reserve in place (checked at most once a second): without it the store
   * was full, and what room there is belongs to work already accepted. Puts the reserve back when the
   * store has room again.
   */
  async #assertRoomForOffers(ledger: WorkLedger): Promise<void> {
    const now = Date.now();
    if (!this.#reserveCheck || now - this.#reserveCheckedAt >= RESERVE_CHECK_MS) {
      // One look at a time: concurrent offers share it.
      this.#reserveCheckedAt = now;
      const check = (async () =>
        (await ledger.hasReserve()) || (await ledger.writeReserve(this.#storageReserveBytes)))();
      this.#reserveCheck = check;
      check.catch(() => {
        if (this.#reserveCheck === check) this.#reserveCheck = undefined;
      });
    }
    if (!(await this.#reserveCheck)) {
      const jsm = await this.#fabric.jsm();
      const usedBytes = await jsm.getAccountInfo().then(
        (a) => a.storage,
        () => undefined,
      );
      throw new StorageFullError(usedBytes !== undefined ? { usedBytes } : {});
    }
  }

  async #offerNoted(ledger: WorkLedger, item: WorkItem, idempotent: boolean): Promise<WorkItem> {
    let entry: LedgerEntry;
    // Encoded once: the ledger value and the offer message carry the same JSON.
    const json = JSON.stringify(item);
    try {
      entry = { item, revision: await ledger.create(item, json) };
    } catch (err) {
      if (!idempotent || !isCasConflict(err)) throw err;
      return this.#reoffer(ledger, item);
    }
    if (this.#crashAt === "work-offer-before-publish") process.kill(process.pid, "SIGKILL");
    try {
      await this.#r.publishOfferDurably(entry, json);
    } catch (err) {
      // Not queued: say so in the ledger rather than leave an item nobody will ever deliver.
      const at = iso(Date.now());
      const reason = OFFER_NOT_QUEUED_REASON;
      await ledger
        .transition(
          item.workId,
          (cur) => ({
            ...(cur ?? item),
            status: "cancelled",
            cancelReason: reason,
            updatedAt: at,
            finishedAt: at,
            lastTransition: transition(["cancelled"], this.agentId, at, { reason }),
          }),
          entry,
        )
        .catch((cancelErr: unknown) =>
          this.#logger.warn(
            { workId: item.workId, err: String(cancelErr) },
            "an offer that could not be queued is still pending in the ledger; offer it again with the same workId",
          ),
        );
      throw err;
    }
    return item;
  }

  /**
   * An idempotent offer found its id taken: the stored item is the answer. If it is still pending and
   * was never claimed, its offer message is published again (deduplicated by the stream within two
   * minutes; a later duplicate is ignored by claimers), in case the first offerer stopped between
   * writing the ledger and queuing the message.
   */
  async #reoffer(ledger: WorkLedger, wanted: WorkItem): Promise<WorkItem> {
    const existing = await ledger.get(wanted.workId);
    if (!existing) throw new WorkNotFoundError(wanted.workId);
    const have = existing.item;
    if (
      have.taskId !== wanted.taskId ||
      have.capability !== wanted.capability ||
      have.boundary !== wanted.boundary
    )
      throw new LoominalError(
        "conflict",
        `work ${wanted.workId} already exists for task ${JSON.stringify(have.taskId)} (${have.boundary}/${have.capability}); use another workId for a different task`,
        { details: { workId: wanted.workId } },
      );
    if (have.status === "pending" && have.attempts === 0) await this.#r.publishOfferDurably(existing);
    return have;
  }

  /**
   * Claims the next item of a capability (and boundary) this agent may take, waiting up to `timeoutMs`.
   * Returns undefined when none came. The claim lasts `ackWaitMs` unless extended with `progress`.
   */
  async claim(input: ClaimInput): Promise<ClaimedWork | undefined> {
    const capability = assertNameToken(input.capability, "capability");
    const boundary = assertNameToken(input.boundary ?? DEFAULT_BOUNDARY, "boundary");
    const timeoutMs = input.timeoutMs ?? DEFAULT_CLAIM_TIMEOUT_MS;
    if (!Number.isInteger(timeoutMs) || timeoutMs < 0 || timeoutMs > MAX_CLAIM_TIMEOUT_MS)
      throw invalid(
        `timeoutMs must be an integer from 0 to ${MAX_CLAIM_TIMEOUT_MS}, got ${String(input.timeoutMs)}`,
      );
    this.#assertOpen();
    return this.#r.guard(async () => {
      await this.#r.ready();
      if (this.#agentType) await this.#policies.assertMayClaim(boundary, this.#agentType());
      const deadline = Date.now() + Math.max(timeoutMs, MIN_CLAIM_WAIT_MS);
      for (;;) {
        // Taken afresh each round: a puller whose consumer vanished is replaced meanwhile.
        const puller = await this.#r.puller(boundary, capability);
        const delivered = await puller.take(deadline - Date.now());
        if (!delivered) {
          if (puller.closed && !this.#closed && Date.now() < deadline) continue;
          return undefined;
        }
        const claimed = await tryClaim(this.#ctx, await this.#r.ready(), delivered);
        if (claimed) return claimed;
        if (Date.now() >= deadline) return undefined;
      }
    });
  }

  /** Reports progress on a held claim and extends it by `ackWaitMs`. */
  async progress(workId: string, note?: string): Promise<WorkItem> {
    checkWorkId(workId);
    if (note !== undefined && (typeof note !== "string" || note.length > 2_000))
      throw invalid("note must be a string of at most 2000 characters");
    return this.#r.guard(async () => {
      const { ledger } = await this.#r.ready();
      const held = this.#held.get(workId);
      const nowMs = Date.now();
      const now = iso(nowMs);
      const expiresAt = new Date(nowMs + this.settings.ackWaitMs).toISOString();
      const entry = await this.#own(workId, "report progress on", () =>
        ledger.transition(
          workId,
          (cur) => {
            const claim = assertOwnClaim(this.#me, workId, cur, "report progress on", held, true);
            return revise(claim.item, {
              claim: Object.assign(
                {},
                claim.claim,
                note !== undefined
                  ? { expiresAt, progressAt: now, progressNote: note }
                  : { expiresAt, progressAt: now },
              ),
              updatedAt: now,
              lastTransition: transition(["progress"], this.agentId, now, note !== undefined ? { note } : {}),
            });
          },
          held?.entry,
        ),
      );
      if (held) {
        held.msg.working();
        held.entry = entry;
      }
      return entry.item;
    });
  }

  /** Completes a held claim with its result. An item is completed once; a stale claimer gets `conflict`. */
  async complete(workId: string, result: WorkResult): Promise<WorkItem> {
    checkWorkId(workId);
    const r = checkResult(result);
    if (!r.success) throw invalid(`invalid result: ${r.error.issues.map((i) => i.message).join("; ")}`);
    return this.#r.guard(async () => {
      const { ledger } = await this.#r.ready();
      const held = this.#held.get(workId);
      const now = iso(Date.now());
      const entry = await this.#own(workId, "complete", () =>
        ledger.transition(
          workId,
          (cur) => {
            const { item } = assertOwnClaim(this.#me, workId, cur, "complete", held, false);
            return revise(without(item, "availableAt"), {
              status: "completed",
              result: r.data,
              completedBy: this.agentId,
              updatedAt: now,
              finishedAt: now,
              lastTransition: transition(["completed"], this.agentId, now),
            });
          },
          held?.entry,
        ),
      );
      this.#held.delete(workId);
      this.#heldChanged();
      held?.msg.ack();
      return entry.item;
    });
  }

  /**
   * Fails a held claim. Retryable failures go back to the queue after a backoff
   * (retryBackoffMs · 2^(attempt−1)); a non-retryable failure, or one at `maxAttempts`, sends the
   * item to the dead-letter queue.
   */
  async fail(workId: string, reason: string, retryable = true): Promise<WorkItem> {
    checkWorkId(workId);
    if (typeof reason !== "string" || reason.length === 0 || reason.length > 4_000)
      throw invalid("reason must be a non-empty string of at most 4000 characters");
    if (typeof retryable !== "boolean") throw invalid("retryable must be true or false");
    return this.#r.guard(async () => {
      const setup = await this.#r.ready();
      const held = this.#held.get(workId);
      const nowMs = Date.now();
      const now = iso(nowMs);
      let backoffMs = 0;
      const entry = await this.#own(workId, "fail", () =>
        setup.ledger.transition(
          workId,
          (cur) => {
            const { item } = assertOwnClaim(this.#me, workId, cur, "fail", held, false);
            const lastError = { reason, retryable, at: now, agentId: this.agentId, attempt: item.attempts };
            const lastTransition = transition(["failed"], this.agentId, now, { reason, retryable });
            if (!retryable || item.attempts >= item.maxAttempts) {
              const why = retryable
                ? `failed ${item.attempts} time(s); last error: ${reason}`
                : `failed and not retryable: ${reason}`;
              return revise(without(item, "availableAt"), {
                status: "dead",
                lastError,
                dead: { reason: why, at: now },
                updatedAt: now,
                lastTransition,
              });
            }
            backoffMs = Math.min(
              MAX_RETRY_BACKOFF_MS,
              this.settings.retryBackoffMs * 2 ** Math.max(0, item.attempts - 1),
            );
            return revise(item, {
              status: "pending",
              lastError,
              availableAt: iso(nowMs + backoffMs),
              updatedAt: now,
              lastTransition,
            });
          },
          held?.entry,
        ),
      );
      this.#held.delete(workId);
      this.#heldChanged();
      if (entry.item.status === "dead") {
        const dead = await toDeadLetters(this.#ctx, setup, entry);
        held?.msg.term();
        return dead.item;
      }
      held?.msg.nak(backoffMs);
      return entry.item;
    });
  }

  /** Cancels a pending or claimed item; its claimer, if any, gets `conflict` on its next call. */
  /**
   * Cancels a pending or claimed item. Only its offerer, another agent of the offerer's user, or a
   * coordinator surface (`asCoordinator`, e.g. Weft acting on an authenticated request) may cancel it;
   * any other agent that can see the item gets `forbidden`, one that cannot see it `not_found`.
   */
  async cancel(workId: string, reason?: string, options: CancelOptions = {}): Promise<WorkItem> {
    checkWorkId(workId);
    if (reason !== undefined && (typeof reason !== "string" || reason.length > 4_000))
      throw invalid("reason must be a string of at most 4000 characters");
    return this.#r.guard(async () => {
      const { ledger } = await this.#r.ready();
      const now = iso(Date.now());
      const entry = await ledger.transition(workId, (cur) => {
        if (!cur || !this.#mayRead(cur)) throw new WorkNotFoundError(workId);
        if (!options.asCoordinator && !this.#mayCancel(cur))
          throw new LoominalError(
            "forbidden",
            `work item ${workId} was offered by agent ${cur.offeredBy.agentId}; only its offerer, an agent of the same user or the coordinator may cancel it — ask the offerer`,
            { details: { workId, offeredBy: cur.offeredBy.agentId } },
          );
        if (cur.status !== "pending" && cur.status !== "claimed")
          throw new WorkTransitionError(
            workId,
            "cancel",
            cur.status,
            "only pending or claimed items can be cancelled",
          );
        return {
          ...without(cur, "availableAt"),
          status: "cancelled",
          ...(reason !== undefined ? { cancelReason: reason } : {}),
          updatedAt: now,
          finishedAt: now,
          lastTransition: transition(
            ["cancelled"],
            this.agentId,
            now,
            reason !== undefined ? { reason } : {},
          ),
        };
      });
      const held = this.#held.get(workId);
      this.#held.delete(workId);
      this.#heldChanged();
      held?.msg.term();
      return entry.item;
    });
  }

  async get(workId: string): Promise<WorkItem | undefined> {
    checkWorkId(workId);
    return this.#r.guard(async () => {
      const { ledger } = await this.#r.ready();
      const item = (await ledger.get(workId))?.item;
      return item && this.#mayRead(item) ? item : undefined;
    });
  }

  /**
   * The item's recent transitions, oldest first: the work events of the revisions the ledger still keeps
   * (offered, claimed, a progress note and the outcome; see LEDGER_HISTORY). Empty when the item does not
   * exist or this agent may not see it.
   */
  async history(workId: string): Promise<WorkEvent[]> {
    checkWorkId(workId);
    return this.#r.guard(async () => {
      const { ledger } = await this.#r.ready();
      const revisions = await ledger.history(workId);
      const latest = revisions[revisions.length - 1]?.item;
      if (!latest || !this.#mayRead(latest)) return [];
      return revisions.flatMap((r) => eventsOf(r.item, r.revision));
    });
  }

  /** Whether this agent may cancel an item it can see: it offered it, or its user did. */
  #mayCancel(item: WorkItem): boolean {
    return (
      item.offeredBy.agentId === this.agentId ||
      (item.offeredBy.userId !== "" && item.offeredBy.userId === this.userId)
    );
  }

  /** Whether this agent may see an item: its scope, as offered, admits this agent. */
  #mayRead(item: WorkItem): boolean {
    return canRead(
      item.scope,
      { projectId: item.projectId, agentId: item.offeredBy.agentId, userId: item.offeredBy.userId },
      { projectId: this.projectId, agentId: this.agentId, userId: this.userId },
    );
  }

  /**
   * Items of the ledger, most recently written first, filtered; page with `nextCursor`. A page costs in
   * proportion to the ledger writes it scans, not to the ledger's size (see WorkLedger.page).
   */
  async list(filter: WorkListFilter = {}): Promise<WorkListPage> {
    const limit = filter.limit ?? 50;
    if (!Number.isInteger(limit) || limit < 1 || limit > 100)
      throw invalid("limit must be an integer from 1 to 100");
    if (filter.capability !== undefined) assertNameToken(filter.capability, "capability");
    if (filter.boundary !== undefined) assertNameToken(filter.boundary, "boundary");
    if (filter.cursor !== undefined && !/^[1-9][0-9]{0,15}$/.test(filter.cursor))
      throw invalid("cursor must be the nextCursor of a previous list result");
    const statuses =
      filter.status === undefined
        ? undefined
        : typeof filter.status === "string"
          ? [filter.status]
          : filter.status;
    if (statuses !== undefined) {
      if (!Array.isArray(statuses) || statuses.length > workStatusSchema.options.length)
        throw invalid(
          `status must be at most ${workStatusSchema.options.length} of ${workStatusSchema.options.join(", ")}`,
        );
      for (const st of statuses)
        if (!workStatusSchema.safeParse(st).success)
          throw invalid(
            `status ${JSON.stringify(String(st).slice(0, 40))} is not one of ${workStatusSchema.options.join(", ")}`,
          );
    }
    if (filter.offeredBy !== undefined) assertAgentId(filter.offeredBy);
    if (filter.claimedBy !== undefined) assertAgentId(filter.claimedBy);
    return this.#r.guard(async () => {
      const { ledger } = await this.#r.ready();
      const page = await ledger.page(
        {
          ...(filter.capability !== undefined ? { capability: filter.capability } : {}),
          ...(filter.boundary !== undefined ? { boundary: filter.boundary } : {}),
          ...(statuses !== undefined ? { statuses } : {}),
          ...(filter.offeredBy !== undefined ? { offeredBy: filter.offeredBy } : {}),
          ...(filter.claimedBy !== undefined ? { claimedBy: filter.claimedBy } : {}),
          visible: (item) => this.#mayRead(item),
        },
        limit,
        filter.cursor,
      );
      return page;
    });
  }

  /**
   * Queue depth, in-flight and dead counts per capability (and boundary), from stream and consumer
   * state: no consumer is created and nothing is read from the queue.
   */
  async status(capability?: string): Promise<QueueStatus> {
    if (capability !== undefined) assertNameToken(capability, "capability");
    return this.#r.guard(async () => {
      const { dlq } = await this.#r.ready();
      return queueStatus(this.#fabric, this.projectId, dlq, capability);
    });
  }

  /** Dead letters, oldest first; letters whose item was since retried or discarded are left out. */
  dlqList(input: DeadLetterListInput = {}): Promise<DeadLetterList> {
    return listDeadLetters(this.#ctx, input);
  }

  /**
   * Puts a dead item back in its queue. Without `resetAttempts` it gets one more attempt; with it, a
   * fresh `maxAttempts`.
   */
  dlqRetry(workId: string, options: { resetAttempts?: boolean } = {}): Promise<WorkItem> {
    return retryDeadItem(this.#ctx, workId, options);
  }

  /** Drops a dead item for good (status discarded). */
  dlqDiscard(workId: string): Promise<WorkItem> {
    return discardDeadItem(this.#ctx, workId);
  }

  /**
   * Removes from the ledger the items that finished more than `work.retentionDays` ago (dead items once
   * their dead letters expired too), at most `maxItems` per call. Returns how many it removed.
   */
  purgeFinishedItems(signal?: AbortSignal, maxItems = 10_000): Promise<number> {
    return purgeFinishedItems(this.#ctx, signal, maxItems);
  }

  /**
   * Queues the offers of journals that offerers left behind (they stopped between writing the ledger and
   * publishing). Returns how many offers were published.
   */
  repairStrandedOffers(strandedAfterMs = STRANDED_AFTER_MS): Promise<number> {
    return repairStrandedOffers(this.#ctx, strandedAfterMs);
  }

  /**
   * Moves on claims that lapsed while no claimer was pulling (back to `pending`, or dead on their last
   * attempt). Returns how many it moved.
   */
  sweepLapsedClaims(signal?: AbortSignal): Promise<number> {
    return sweepLapsedClaims(this.#ctx, signal);
  }

  /** Follows work events of this project (all, or of some items) until `stop()`. */
  async watchEvents(
    handler: (event: WorkEvent) => void | Promise<void>,
    options: WatchEventsOptions = {},
  ): Promise<EventWatch> {
    for (const id of options.workIds ?? []) checkWorkId(id);
    return this.#r.guard(async () => {
      const { ledger } = await this.#r.ready();
      if (options.asCoordinator) return ledger.watch(handler, options);
      // An event carries the whole item: it reaches a watcher only if `get` would show the item to it.
      const filter = options.filter;
      return ledger.watch(handler, {
        ...options,
        filter: (e) => this.#mayRead(e.item) && (filter ? filter(e) : true),
      });
    });
  }

  /**
   * Stops pulling and hands back offers fetched but not claimed. Claims still held are left to lapse
   * after their ack wait (as if this process had stopped), so another claimer picks them up.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#maintenance?.stop();
    await this.#journal.close().catch(() => undefined);
    await this.#r.close();
    this.#held.clear();
  }

  // ——— internals ———

  #assertOpen(): void {
    if (this.#closed)
      throw new LoominalError("invalid_transition", "this work queue is closed; create a new one");
  }

  /**
   * Starts this process's part in work maintenance: it takes the project's maintenance lease when free
   * and, while it holds it, moves lapsed claims on every `intervalMs`. Stopped by `close()`.
   */
  startMaintenance(options: { intervalMs?: number; strandedAfterMs?: number } = {}): void {
    if (this.#maintenance || this.#closed) return;
    this.#maintenance = startWorkMaintenance(this.#ctx, options);
  }

  /** Whether this process runs the project's work maintenance now (holds its lease). */
  get maintaining(): boolean {
    return this.#maintenance?.holding === true;
  }

  /**
   * Runs a transition on a claim; a conflict means this process's claim is gone, so forget it
   * (without acking: the message now belongs to whoever holds the item).
   */
  #own(workId: string, _action: string, run: () => Promise<LedgerEntry>): Promise<LedgerEntry> {
    return run().catch((err: unknown) => {
      if (err instanceof WorkClaimConflictError) {
        this.#held.delete(workId);
        this.#heldChanged();
      }
      throw err;
    });
  }
}
