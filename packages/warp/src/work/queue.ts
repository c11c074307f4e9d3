import {
  encodeJson,
  ensureStream,
  type Fabric,
  forgetStream,
  isCasConflict,
  type Logger,
  mayMeanStreamMissing,
  StorageFullError,
  silentLogger,
  streamInfo,
  streamVanished,
} from "@loominal/fabric";
import {
  assertAgentId,
  assertNameToken,
  buckets,
  type ClaimedWork,
  canRead,
  DEFAULT_BOUNDARY,
  type DeadLetter,
  LoominalError,
  type Owner,
  randomId,
  streams,
  subjects,
  type WarpConfig,
  type WorkEvent,
  type WorkItem,
  type WorkOfferMessage,
  type WorkResult,
  type WorkStatus,
  workIdSchema,
  workOfferInputSchema,
  workResultSchema,
  workStatusSchema,
} from "@loominal/protocol";
import { JetStreamApiError, type JsMsg } from "@nats-io/jetstream";
import type { z } from "zod";
import {
  claimRecord,
  type Delivery,
  type DeliveryDecision,
  deadRecord,
  decideDelivery,
  expiredRecord,
  iso,
  without,
} from "./decision.js";
import { type DeadLetterPage, DeadLetterStore, dlqStreamSpec } from "./dlq.js";
import { WorkClaimConflictError, WorkNotFoundError, WorkTransitionError } from "./errors.js";
import { type EventWatch, transition, type WatchEventsOptions } from "./events.js";
import { OfferJournal, STRANDED_AFTER_MS, strandedJournals } from "./journal.js";
import { type LedgerEntry, WorkLedger } from "./ledger.js";
import { WorkMaintenance } from "./maintenance.js";
import { assertOwnClaim } from "./ownership.js";
import { type DeliveredOffer, decodeOffer, OfferPuller } from "./puller.js";
import { BoundaryPolicies } from "./routing.js";
import { ensureWorkConsumer, workStreamSpec } from "./setup.js";
import { type QueueStatus, queueStatus } from "./status.js";

export type WorkSettings = WarpConfig["work"];

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

export interface DeadLetterListInput {
  capability?: string;
  limit?: number;
  cursor?: string;
}

export interface DeadLetterList {
  letters: DeadLetter[];
  nextCursor?: string;
}

/** Default wait of a claim, and the shortest one (a pull needs a round trip). */
const DEFAULT_CLAIM_TIMEOUT_MS = 5_000;
const MIN_CLAIM_WAIT_MS = 200;
const MAX_CLAIM_TIMEOUT_MS = 300_000;
/** How long an offer this claimer may not take is kept from coming straight back to it. */
const NOT_MINE_DELAY_MS = 500;
const NOT_MINE_MAX_DELAY_MS = 30_000;
const MAX_RETRY_BACKOFF_MS = 300_000;
const DEFAULT_PREFETCH_HOLD_MS = 5_000;
/** Tries of an offer publish, waiting for the connection between them. */
const OFFER_PUBLISH_ATTEMPTS = 3;
/** How often the maintenance lease holder runs a pass (and others try to take the lease). */
const DEFAULT_MAINTENANCE_INTERVAL_MS = 2_000;
/** Pulls per consumer and pass, messages per pull, and how long a sweep pull waits. */
const SWEEP_ROUNDS = 8;
const SWEEP_BATCH = 16;
const SWEEP_PULL_EXPIRES_MS = 1_000;
/** How often maintenance removes finished items past their retention. */
const RETENTION_PASS_MS = 60_000;
const DAY_MS = 86_400_000;
const DEFAULT_RESERVE_BYTES = 512 * 1024;
/** How often an offerer looks whether the storage reserve is in place. */
const RESERVE_CHECK_MS = 1_000;

/** A claim this process holds: the JetStream message (to ack, nak, extend) and the ledger state it wrote. */
interface HeldClaim {
  msg: JsMsg;
  claimId: string;
  entry: LedgerEntry;
}

/** Thrown inside a ledger mutation when an offer must not be claimed; says what to do with the message. */
class OfferNotClaimable extends Error {
  constructor(
    readonly action: "ack" | "term" | "leave" | "release" | "repair",
    readonly why: string,
  ) {
    super(why);
  }
}

interface Setup {
  ledger: WorkLedger;
  dlq: DeadLetterStore;
}

let lastWorkId = "";

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

function invalid(message: string): LoominalError {
  return new LoominalError("invalid_input", message);
}

function checkWorkId(workId: unknown): string {
  const r = workIdSchema.safeParse(workId);
  if (!r.success) throw invalid(r.error.issues.map((i) => i.message).join("; "));
  return r.data;
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
  #prefetch: number;
  #prefetchHoldMs: number;
  #connectTimeoutMs: number;
  #setup: Promise<Setup> | undefined;
  #pullers = new Map<string, Promise<OfferPuller>>();
  #agentType: (() => string | undefined) | undefined;
  #policies: BoundaryPolicies;
  #held = new Map<string, HeldClaim>();
  #heldListeners = new Set<() => void>();
  #maintenance: WorkMaintenance | undefined;
  #journal: OfferJournal;
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
    this.#prefetch = Math.max(1, Math.floor(options.prefetch ?? 1));
    this.#prefetchHoldMs = Math.max(
      50,
      Math.floor(options.prefetchHoldMs ?? Math.min(DEFAULT_PREFETCH_HOLD_MS, this.settings.ackWaitMs / 2)),
    );
    this.#connectTimeoutMs = options.connectTimeoutMs ?? 2_000;
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
      createdAt: iso(now),
      updatedAt: iso(now),
      lastTransition: transition(["offered"], this.agentId, iso(now)),
    };
    return this.#guard(async () => {
      const { ledger } = await this.#ready();
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
    try {
      entry = { item, revision: await ledger.create(item) };
    } catch (err) {
      if (!idempotent || !isCasConflict(err)) throw err;
      return this.#reoffer(ledger, item);
    }
    if (this.#crashAt === "work-offer-before-publish") process.kill(process.pid, "SIGKILL");
    try {
      await this.#publishOfferDurably(entry);
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
    if (have.status === "pending" && have.attempts === 0) await this.#publishOfferDurably(existing);
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
    return this.#guard(async () => {
      await this.#ready();
      if (this.#agentType) await this.#policies.assertMayClaim(boundary, this.#agentType());
      const deadline = Date.now() + Math.max(timeoutMs, MIN_CLAIM_WAIT_MS);
      for (;;) {
        // Taken afresh each round: a puller whose consumer vanished is replaced meanwhile.
        const puller = await this.#puller(boundary, capability);
        const delivered = await puller.take(deadline - Date.now());
        if (!delivered) {
          if (puller.closed && !this.#closed && Date.now() < deadline) continue;
          return undefined;
        }
        const claimed = await this.#tryClaim(await this.#ready(), delivered);
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
    return this.#guard(async () => {
      const { ledger } = await this.#ready();
      const held = this.#held.get(workId);
      const now = Date.now();
      const entry = await this.#own(workId, "report progress on", () =>
        ledger.transition(
          workId,
          (cur) => {
            const claim = assertOwnClaim(this.#me, workId, cur, "report progress on", held, true);
            return {
              ...claim.item,
              claim: {
                ...claim.claim,
                expiresAt: iso(now + this.settings.ackWaitMs),
                progressAt: iso(now),
                ...(note !== undefined ? { progressNote: note } : {}),
              },
              updatedAt: iso(now),
              lastTransition: transition(
                ["progress"],
                this.agentId,
                iso(now),
                note !== undefined ? { note } : {},
              ),
            };
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
    const r = workResultSchema.safeParse(result);
    if (!r.success) throw invalid(`invalid result: ${r.error.issues.map((i) => i.message).join("; ")}`);
    return this.#guard(async () => {
      const { ledger } = await this.#ready();
      const held = this.#held.get(workId);
      const now = iso(Date.now());
      const entry = await this.#own(workId, "complete", () =>
        ledger.transition(
          workId,
          (cur) => {
            const { item } = assertOwnClaim(this.#me, workId, cur, "complete", held, false);
            return {
              ...without(item, "availableAt"),
              status: "completed",
              result: r.data,
              completedBy: this.agentId,
              updatedAt: now,
              finishedAt: now,
              lastTransition: transition(["completed"], this.agentId, now),
            };
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
    return this.#guard(async () => {
      const setup = await this.#ready();
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
              return {
                ...without(item, "availableAt"),
                status: "dead",
                lastError,
                dead: { reason: why, at: now },
                updatedAt: now,
                lastTransition,
              };
            }
            backoffMs = Math.min(
              MAX_RETRY_BACKOFF_MS,
              this.settings.retryBackoffMs * 2 ** Math.max(0, item.attempts - 1),
            );
            return {
              ...item,
              status: "pending",
              lastError,
              availableAt: iso(nowMs + backoffMs),
              updatedAt: now,
              lastTransition,
            };
          },
          held?.entry,
        ),
      );
      this.#held.delete(workId);
      this.#heldChanged();
      if (entry.item.status === "dead") {
        const dead = await this.#toDeadLetters(setup, entry);
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
    return this.#guard(async () => {
      const { ledger } = await this.#ready();
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
    return this.#guard(async () => {
      const { ledger } = await this.#ready();
      const item = (await ledger.get(workId))?.item;
      return item && this.#mayRead(item) ? item : undefined;
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
    return this.#guard(async () => {
      const { ledger } = await this.#ready();
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
    return this.#guard(async () => {
      const { dlq } = await this.#ready();
      return queueStatus(this.#fabric, this.projectId, dlq, capability);
    });
  }

  /** Dead letters, oldest first; letters whose item was since retried or discarded are left out. */
  async dlqList(input: DeadLetterListInput = {}): Promise<DeadLetterList> {
    const limit = input.limit ?? 50;
    if (!Number.isInteger(limit) || limit < 1 || limit > 100)
      throw invalid("limit must be an integer from 1 to 100");
    if (input.capability !== undefined) assertNameToken(input.capability, "capability");
    if (input.cursor !== undefined && !/^[1-9][0-9]{0,15}$/.test(input.cursor))
      throw invalid("cursor must be the nextCursor of a previous warp_dlq_list result");
    return this.#guard(async () => {
      const { dlq, ledger } = await this.#ready();
      const page: DeadLetterPage = await dlq.page(limit, input.capability, input.cursor);
      const current = await Promise.all(page.letters.map((l) => ledger.get(l.letter.workId)));
      const letters: DeadLetter[] = [];
      page.letters.forEach((l, i) => {
        const item = current[i]?.item;
        // Only letters of items still dead, and of each item only the letter its record names.
        if (item?.status !== "dead" || !this.#mayRead(item)) return;
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
  async dlqRetry(workId: string, options: { resetAttempts?: boolean } = {}): Promise<WorkItem> {
    checkWorkId(workId);
    const reset = options.resetAttempts ?? false;
    return this.#guard(async () => {
      const { ledger, dlq } = await this.#ready();
      await this.#journal.enter(workId);
      try {
        return await this.#retryNoted(ledger, dlq, workId, reset);
      } finally {
        this.#journal.leave(workId);
      }
    });
  }

  async #retryNoted(
    ledger: WorkLedger,
    dlq: DeadLetterStore,
    workId: string,
    reset: boolean,
  ): Promise<WorkItem> {
    const now = iso(Date.now());
    let letterSeq: number | undefined;
    const entry = await ledger.transition(workId, (cur) => {
      const dead = this.#deadItem(workId, cur, "retry");
      letterSeq = dead.dead?.dlqSeq;
      return {
        ...without(dead, "dead", "availableAt"),
        status: "pending",
        attempts: reset ? 0 : dead.attempts,
        maxAttempts: reset ? this.settings.maxAttempts : Math.max(dead.maxAttempts, dead.attempts + 1),
        updatedAt: now,
        lastTransition: transition(["retried"], this.agentId, now, {
          reason: reset ? "retried with attempts reset" : "retried with one more attempt",
        }),
      };
    });
    try {
      await this.#publishOfferDurably(entry);
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
            lastTransition: transition([], this.agentId, iso(Date.now())),
          }),
          entry,
        )
        .catch((deadErr: unknown) =>
          this.#logger.warn(
            { workId, err: String(deadErr) },
            "a DLQ retry that could not be queued is pending in the ledger; retry it again",
          ),
        );
      throw err;
    }
    if (letterSeq !== undefined) await dlq.remove(letterSeq);
    return entry.item;
  }

  /**
   * Removes from the ledger the items that finished more than `work.retentionDays` ago (dead items once
   * their dead letters expired too), at most `maxItems` per call. Returns how many it removed.
   */
  async purgeFinishedItems(signal?: AbortSignal, maxItems = 10_000): Promise<number> {
    const { ledger } = await this.#ready();
    const now = Date.now();
    const keepMs = this.settings.retentionDays * DAY_MS;
    const removed = await ledger.purgeFinished(
      now - keepMs,
      now - Math.max(keepMs, this.settings.dlqMaxAgeMs),
      maxItems,
      signal,
    );
    if (removed > 0) this.#logger.info({ removed }, "removed finished work items past their retention");
    return removed;
  }

  /**
   * Queues the offers of journals that offerers left behind (they stopped between writing the ledger and
   * publishing): each item still pending from that very write is published again. Its message id makes
   * the publish a duplicate the stream drops if the first one did land within two minutes, and claimers
   * ignore a later duplicate. Returns how many offers were published.
   */
  async repairStrandedOffers(strandedAfterMs = STRANDED_AFTER_MS): Promise<number> {
    const { ledger } = await this.#ready();
    let published = 0;
    for (const journal of await strandedJournals(
      this.#fabric,
      this.projectId,
      strandedAfterMs,
      this.#logger,
    )) {
      for (const workId of journal.workIds) {
        const r = workIdSchema.safeParse(workId);
        if (!r.success) continue;
        const entry = await ledger.get(r.data);
        if (entry?.item.status !== "pending") continue;
        const events = entry.item.lastTransition?.events ?? [];
        if (!events.includes("offered") && !events.includes("retried")) continue;
        await this.#publishOfferDurably(entry);
        published++;
        this.#logger.info(
          { workId, offerer: journal.holder },
          "queued an offer its offerer left pending in the ledger",
        );
      }
      await journal.done();
    }
    return published;
  }

  /** The record of an item in the dead-letter queue that this agent may see, or the error saying why not. */
  #deadItem(workId: string, cur: WorkItem | undefined, action: "retry" | "discard"): WorkItem {
    if (!cur || !this.#mayRead(cur)) throw new WorkNotFoundError(workId);
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
  async dlqDiscard(workId: string): Promise<WorkItem> {
    checkWorkId(workId);
    return this.#guard(async () => {
      const { ledger, dlq } = await this.#ready();
      const now = iso(Date.now());
      let letterSeq: number | undefined;
      const entry = await ledger.transition(workId, (cur) => {
        const dead = this.#deadItem(workId, cur, "discard");
        letterSeq = dead.dead?.dlqSeq;
        return {
          ...dead,
          status: "discarded",
          updatedAt: now,
          finishedAt: now,
          lastTransition: transition(["discarded"], this.agentId, now),
        };
      });
      if (letterSeq !== undefined) await dlq.remove(letterSeq);
      return entry.item;
    });
  }

  /** Follows work events of this project (all, or of some items) until `stop()`. */
  async watchEvents(
    handler: (event: WorkEvent) => void | Promise<void>,
    options: WatchEventsOptions = {},
  ): Promise<EventWatch> {
    for (const id of options.workIds ?? []) checkWorkId(id);
    return this.#guard(async () => {
      const { ledger } = await this.#ready();
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
    const pullers = await Promise.allSettled(this.#pullers.values());
    for (const p of pullers) if (p.status === "fulfilled") await p.value.close();
    this.#pullers.clear();
    this.#held.clear();
  }

  // ——— internals ———

  #assertOpen(): void {
    if (this.#closed)
      throw new LoominalError("invalid_transition", "this work queue is closed; create a new one");
  }

  async #guard<T>(run: () => Promise<T>): Promise<T> {
    try {
      return await this.#recovering(run);
    } catch (err) {
      // The fabric's one classifier turns "not there right now" (JetStream not enabled while the server
      // starts, a request cut off by a disconnect) into nats_unavailable.
      throw this.#fabric.mapError(err);
    }
  }

  /**
   * Runs `run`; if it failed because the work stream, the dead-letter stream or the ledger bucket is gone
   * (deleted, or a server that lost its store), forgets the setup so the next call creates them again,
   * and runs it once more.
   */
  async #recovering<T>(run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (err) {
      if (!mayMeanStreamMissing(err) || !this.#fabric.isConnected) throw err;
      if (!(await this.#forgetVanished(err).catch(() => false))) throw err;
      return run();
    }
  }

  /** Whether one of the queue's streams vanished; if so, its setup and pullers are dropped. */
  async #forgetVanished(err: unknown): Promise<boolean> {
    const names = [
      streams.work(this.projectId),
      streams.dlq(this.projectId),
      `KV_${buckets.workLedger(this.projectId)}`,
    ];
    const gone = await Promise.all(names.map((n) => streamVanished(this.#fabric, n, err)));
    if (!gone.some(Boolean)) return false;
    this.#setup = undefined;
    // The consumers went with the work stream: pull through new ones.
    this.#dropPullers();
    return true;
  }

  #dropPullers(): void {
    const pullers = [...this.#pullers.values()];
    this.#pullers.clear();
    for (const p of pullers) p.then((x) => x.close()).catch(() => undefined);
  }

  /** A pull failed: if the work stream or the consumer is gone, drop the puller so claims make anew. */
  async #onPullError(key: string, consumerName: string, err: unknown): Promise<void> {
    if (this.#closed || !this.#fabric.isConnected) return;
    if (await this.#forgetVanished(err).catch(() => false)) return;
    const jsm = await this.#fabric.jsm();
    const missing = await jsm.consumers.info(streams.work(this.projectId), consumerName).then(
      () => false,
      (e: unknown) => e instanceof JetStreamApiError && (e.code === 10014 || e.code === 10059),
    );
    if (!missing) return;
    const p = this.#pullers.get(key);
    this.#pullers.delete(key);
    p?.then((x) => x.close()).catch(() => undefined);
    if (await streamInfo(jsm, streams.work(this.projectId)).then((i) => i === undefined)) {
      forgetStream(this.#fabric, streams.work(this.projectId));
      this.#setup = undefined;
    }
  }

  async #ready(): Promise<Setup> {
    await this.#fabric.ready(this.#connectTimeoutMs);
    if (!this.#setup) {
      const setup = this.#prepare();
      this.#setup = setup;
      // A failed setup (NATS went away, a config mismatch) is tried again on the next call.
      setup.catch(() => {
        if (this.#setup === setup) this.#setup = undefined;
      });
    }
    return this.#setup;
  }

  async #prepare(): Promise<Setup> {
    await Promise.all([
      ensureStream(this.#fabric, workStreamSpec(this.projectId)),
      ensureStream(this.#fabric, dlqStreamSpec(this.projectId, this.settings.dlqMaxAgeMs)),
    ]);
    const ledger = await WorkLedger.open(this.#fabric, this.projectId, this.#logger);
    ledger.onReserveReleased = () => {
      this.#reserveCheck = Promise.resolve(false);
      this.#reserveCheckedAt = Date.now();
    };
    return { ledger, dlq: new DeadLetterStore(this.#fabric, this.projectId, this.#logger) };
  }

  #puller(boundary: string, capability: string): Promise<OfferPuller> {
    const key = `${boundary}\u0000${capability}`;
    let p = this.#pullers.get(key);
    if (!p) {
      p = this.#openPuller(boundary, capability);
      this.#pullers.set(key, p);
      p.catch(() => this.#pullers.delete(key));
    }
    return p;
  }

  async #openPuller(boundary: string, capability: string): Promise<OfferPuller> {
    const { consumer, name } = await ensureWorkConsumer(
      this.#fabric,
      this.projectId,
      boundary,
      capability,
      this.settings.ackWaitMs,
    );
    return new OfferPuller(consumer, {
      prefetch: this.#prefetch,
      staleAfterMs: Math.min(this.#prefetchHoldMs, Math.floor(this.settings.ackWaitMs / 2)),
      logger: this.#logger,
      onPullError: (err) =>
        void this.#onPullError(`${boundary}\u0000${capability}`, name, err).catch(() => undefined),
    });
  }

  /**
   * Publishes the offer message of a ledger entry. A publish that fails while NATS is reconnecting is
   * tried again once the connection is back (within `connectTimeoutMs`); the message id makes a
   * publish that did land the first time a duplicate the stream drops.
   */
  async #publishOfferDurably(entry: LedgerEntry): Promise<void> {
    const { item, revision } = entry;
    const message: WorkOfferMessage = { workId: item.workId, revision, item };
    const subject = subjects.workOffer(this.projectId, item.boundary, item.capability);
    const data = encodeJson(message);
    for (let attempt = 1; ; attempt++) {
      try {
        await this.#fabric.js.publish(subject, data, { msgID: `${item.workId}-${revision}` });
        return;
      } catch (err) {
        if (attempt >= OFFER_PUBLISH_ATTEMPTS) throw err;
        // A work stream that vanished is created again before the next try.
        if (await this.#forgetVanished(err).catch(() => false)) await this.#ready();
        this.#logger.debug(
          { workId: item.workId, attempt, err: String(err) },
          "offer publish failed; retrying",
        );
        await this.#fabric.ready(this.#connectTimeoutMs);
        await new Promise((r) => setTimeout(r, 50 * attempt));
      }
    }
  }

  /**
   * Tries to turn one delivered offer into a claim. Returns undefined (and disposes of the message)
   * when the item may not or need not be claimed: not this agent's scope, already finished, held by a
   * live claimer, or out of attempts (then it goes to the dead-letter queue).
   */
  async #tryClaim(setup: Setup, delivered: DeliveredOffer): Promise<ClaimedWork | undefined> {
    const { msg, offer } = delivered;
    if (!offer) {
      this.#logger.warn(
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
        projectId: this.projectId,
        agentId: this.agentId,
        userId: this.userId,
      })
    ) {
      // Not for this agent: hand it back unconsumed, a little later so it does not bounce straight back.
      msg.nak(NOT_MINE_DELAY_MS);
      return undefined;
    }
    const required = offer.item.requiredAgentType;
    if (required !== undefined && this.#agentType && this.#agentType() !== required) {
      // For another agent type: hand it back, waiting longer each time it comes back to the wrong kind of
      // claimer, so claimers that may not take it poll it at most every 30 s instead of spinning on it.
      msg.nak(Math.min(NOT_MINE_MAX_DELAY_MS, NOT_MINE_DELAY_MS * 2 ** Math.min(6, msg.info.deliveryCount)));
      return undefined;
    }
    const workId = offer.workId;
    // The server's ack timer runs from delivery. A fresh delivery keeps that deadline (saves a message
    // per claim); one that waited in the prefetch buffer is extended to a full ack wait from now.
    const fresh = Date.now() - delivered.receivedAt < this.settings.ackWaitMs / 10;
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
          return this.#recordOf(cur, decided, delivery, nowMs, fresh ? delivered.receivedAt : nowMs);
        },
        { item: offer.item, revision: offer.revision },
      );
    } catch (err) {
      if (err instanceof OfferNotClaimable) {
        await this.#dispose(setup, msg, workId, err);
        return undefined;
      }
      // The claim could not be recorded: give the message back for another try.
      msg.nak();
      throw err;
    }
    if (decided?.action === "dead") {
      await this.#toDeadLetters(setup, entry);
      msg.term();
      return undefined;
    }
    if (!fresh) msg.working();
    const claim = entry.item.claim;
    if (entry.item.status !== "claimed" || !claim)
      throw new Error(`ledger claim of ${workId} was not recorded`);
    this.#held.set(workId, { msg, claimId: claim.claimId, entry });
    this.#heldChanged();
    return { ...entry.item, status: "claimed", claim };
  }

  /** The record a decision writes, or OfferNotClaimable when it writes none. */
  #recordOf(
    cur: WorkItem | undefined,
    d: DeliveryDecision,
    delivery: Delivery,
    nowMs: number,
    timerFromMs: number,
  ): WorkItem {
    if (!cur) throw new OfferNotClaimable("term", "no ledger record");
    switch (d.action) {
      case "claim":
        return claimRecord(
          cur,
          delivery,
          this.agentId,
          nowMs,
          timerFromMs,
          this.settings.ackWaitMs,
          d.tookOver,
        );
      case "dead":
        return deadRecord(cur, d.reason, this.agentId, nowMs, d.events, d.eventReason);
      case "expire":
        return expiredRecord(cur, this.agentId, nowMs);
      default:
        throw new OfferNotClaimable(d.action, d.why);
    }
  }

  /** Does with an offer message what a decision that writes nothing says. */
  async #dispose(setup: Setup, msg: JsMsg, workId: string, err: OfferNotClaimable): Promise<void> {
    switch (err.action) {
      case "repair": {
        const dead = await setup.ledger.get(workId);
        if (dead?.item.status === "dead") await this.#toDeadLetters(setup, dead);
        msg.term();
        return;
      }
      case "ack":
        msg.ack();
        return;
      case "term":
        this.#logger.warn({ workId, why: err.why }, "dropping a work offer");
        msg.term();
        return;
      case "release":
        msg.nak();
        return;
      case "leave":
        return;
    }
  }

  /**
   * Looks at one offer message on behalf of the maintenance sweep: a claim that lapsed goes back to the
   * queue (or, on its last attempt, to the dead-letter queue); anything else is handed back or disposed
   * of as a claimer would. Returns whether it moved a lapsed claim on.
   */
  async #sweepDelivery(setup: Setup, msg: JsMsg): Promise<boolean> {
    const decoded = decodeOffer(msg);
    if (!decoded.offer) {
      this.#logger.warn(
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
        return this.#recordOf(cur, decided, delivery, nowMs, nowMs);
      });
    } catch (err) {
      if (err instanceof OfferNotClaimable) {
        await this.#dispose(setup, msg, workId, err);
        return false;
      }
      msg.nak();
      throw err;
    }
    if (decided?.action === "dead") {
      await this.#toDeadLetters(setup, entry);
      msg.term();
    } else msg.nak();
    this.#logger.debug({ workId, action: decided?.action }, "maintenance moved a lapsed claim on");
    return true;
  }

  /**
   * Moves on claims that lapsed while no claimer was pulling: the server redelivers a message only to a
   * pull, so without this an item whose only claimer died would show `claimed` until the next claim.
   * For each consumer with unacknowledged messages and no waiting claimer it pulls what the server
   * offers (redeliveries come first) and decides on each as the sweep: lapsed claims go back to
   * `pending` (or dead on their last attempt); a pending offer pulled by the way is handed straight back.
   */
  async sweepLapsedClaims(signal?: AbortSignal): Promise<number> {
    const setup = await this.#ready();
    const jsm = await this.#fabric.jsm();
    const stream = streams.work(this.projectId);
    let moved = 0;
    const idle = [];
    for await (const ci of jsm.consumers.list(stream)) {
      if (ci.num_ack_pending > 0 && ci.num_waiting === 0) idle.push(ci);
    }
    for (const ci of idle) {
      const consumer = await this.#fabric.js.consumers.get(stream, ci.name);
      for (let round = 0; round < SWEEP_ROUNDS && !signal?.aborted; round++) {
        // With offers waiting, take one at a time so few are pulled by the way; redeliveries come first.
        const max = ci.num_pending > 0 ? 1 : Math.min(SWEEP_BATCH, ci.num_ack_pending);
        const messages = await consumer.fetch({ max_messages: max, expires: SWEEP_PULL_EXPIRES_MS });
        let got = 0;
        let lapsed = 0;
        for await (const m of messages) {
          got++;
          if (await this.#sweepDelivery(setup, m)) lapsed++;
        }
        moved += lapsed;
        if (lapsed === 0 || got < max) break;
      }
    }
    return moved;
  }

  /**
   * Starts this process's part in work maintenance: it takes the project's maintenance lease when free
   * and, while it holds it, moves lapsed claims on every `intervalMs`. Stopped by `close()`.
   */
  startMaintenance(options: { intervalMs?: number; strandedAfterMs?: number } = {}): void {
    if (this.#maintenance || this.#closed) return;
    this.#maintenance = new WorkMaintenance({
      fabric: this.#fabric,
      projectId: this.projectId,
      holder: `${this.agentId} pid ${process.pid}`,
      intervalMs: options.intervalMs ?? DEFAULT_MAINTENANCE_INTERVAL_MS,
      logger: this.#logger,
      tasks: [
        { name: "lapsed claims", run: (signal) => this.sweepLapsedClaims(signal).then(() => undefined) },
        {
          name: "retention",
          everyMs: RETENTION_PASS_MS,
          run: (signal) => this.purgeFinishedItems(signal).then(() => undefined),
        },
        {
          name: "stranded offers",
          run: () => this.repairStrandedOffers(options.strandedAfterMs).then(() => undefined),
        },
      ],
    });
    this.#maintenance.start();
  }

  /** Whether this process runs the project's work maintenance now (holds its lease). */
  get maintaining(): boolean {
    return this.#maintenance?.holding === true;
  }

  /**
   * Stores the dead letter of an item the ledger already marks dead, then records where it is; that
   * second write is the item's `dead` event. Callers dispose of the offer message only after this
   * returns, so if either step fails the message comes back and the claimer that gets it repairs the
   * missing letter (see #tryClaim). A letter stored twice that way is shown once: the ledger names the
   * one that counts.
   */
  async #toDeadLetters(setup: Setup, entry: LedgerEntry): Promise<LedgerEntry> {
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
            lastTransition: transition(["dead"], this.agentId, iso(Date.now()), { reason }),
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

  /**
   * Runs a transition on a claim; a conflict means this process's claim is gone, so forget it
   * (without acking: the message now belongs to whoever holds the item).
   */
  async #own(workId: string, _action: string, run: () => Promise<LedgerEntry>): Promise<LedgerEntry> {
    try {
      return await run();
    } catch (err) {
      if (err instanceof WorkClaimConflictError) {
        this.#held.delete(workId);
        this.#heldChanged();
      }
      throw err;
    }
  }
}
