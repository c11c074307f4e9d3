import {
  casUpdate,
  ensureBucket,
  type Fabric,
  forgetRevision,
  isCasConflict,
  type JsonCodec,
  jsonCodec,
  type Logger,
} from "@loominal/fabric";
import { buckets, type WorkEvent, type WorkItem, type WorkStatus, workItemSchema } from "@loominal/protocol";
import type { KV } from "@nats-io/kv";
import { type EventWatch, type WatchEventsOptions, watchLedgerEvents } from "./events.js";

/** One ledger record and the revision it was read or written at. */
export interface LedgerEntry {
  item: WorkItem;
  revision: number;
}

/**
 * Computes the next record from the current one, or throws to refuse the transition.
 * It may run more than once (after a lost compare-and-set), so it must not have side effects.
 */
export type LedgerMutation = (current: WorkItem | undefined) => WorkItem;

export interface LedgerFilter {
  capability?: string;
  boundary?: string;
  statuses?: readonly WorkStatus[];
  offeredBy?: string;
  claimedBy?: string;
  /** Items the reader may see at all (scope); others are skipped as if absent. */
  visible?: (item: WorkItem) => boolean;
}

export interface LedgerPage {
  items: WorkItem[];
  /** Pass back to get the next (older) page; absent when the scan reached the oldest item. */
  nextCursor?: string;
}

const codec: JsonCodec<WorkItem> = jsonCodec(workItemSchema);
const READ_CONCURRENCY = 32;
/**
 * Revisions kept per item. Each write is also the item's work event, so the history is the item's
 * recent transitions (`watchEvents({ deliverFrom: "all" })` replays them).
 */
export const LEDGER_HISTORY = 16;

/**
 * The work ledger: one KV key per work item, holding its current state. Every transition is a
 * compare-and-set on the key's revision, so two writers can never both move an item out of a state
 * (an item is completed at most once, claimed by one claimer at a time).
 */
export class WorkLedger {
  readonly bucket: string;
  #fabric: Fabric;
  #kv: KV;
  #logger: Logger;

  private constructor(fabric: Fabric, kv: KV, bucket: string, logger: Logger) {
    this.#fabric = fabric;
    this.#kv = kv;
    this.bucket = bucket;
    this.#logger = logger;
  }

  static async open(fabric: Fabric, projectId: string, logger: Logger): Promise<WorkLedger> {
    const name = buckets.workLedger(projectId);
    const kv = await ensureBucket(fabric, { name, history: LEDGER_HISTORY });
    return new WorkLedger(fabric, kv, name, logger);
  }

  /** Follows the ledger's writes as work events. */
  watch(
    handler: (event: WorkEvent) => void | Promise<void>,
    options: WatchEventsOptions,
  ): Promise<EventWatch> {
    return watchLedgerEvents(
      this.#fabric,
      { name: this.bucket, history: LEDGER_HISTORY },
      handler,
      options,
      this.#logger,
    );
  }

  /** Writes a new item; fails (10071) if the key exists. Returns the revision. */
  create(item: WorkItem): Promise<number> {
    return this.#kv.create(item.workId, codec.encode(item));
  }

  async get(workId: string): Promise<LedgerEntry | undefined> {
    const entry = await this.#kv.get(workId);
    if (entry?.operation !== "PUT") return undefined;
    return { item: codec.decode(entry.value, `${this.bucket}/${workId}`), revision: entry.revision };
  }

  /**
   * Applies `mutate` by compare-and-set. With `known` (a record and revision this process already has,
   * e.g. from the offer message or its own last write) the first attempt costs one round trip; after a
   * lost race it falls back to fabric's casUpdate, which re-reads and retries with backoff.
   */
  async transition(workId: string, mutate: LedgerMutation, known?: LedgerEntry): Promise<LedgerEntry> {
    if (known) {
      const next = mutate(known.item);
      try {
        const revision = await this.#kv.update(workId, codec.encode(next), known.revision);
        return { item: next, revision };
      } catch (err) {
        if (!isCasConflict(err)) throw err;
      }
    }
    try {
      const r = await casUpdate(this.#kv, workId, codec, (current) => mutate(current), { maxAttempts: 16 });
      if (!r.value) throw new Error(`ledger transition of ${workId} produced no value`);
      return { item: r.value, revision: r.revision };
    } finally {
      // This ledger keeps revisions itself (in claims and offers); fabric's per-key memory would only grow.
      forgetRevision(this.#kv, workId);
    }
  }

  /**
   * One page of items matching `filter`, newest first. Work ids start with their creation time, so
   * sorted keys are creation order; `cursor` is the last workId of the previous page. At most
   * `maxScan` records are read per call; a page may then hold fewer than `limit` items but still
   * carries a cursor to continue from.
   */
  async page(filter: LedgerFilter, limit: number, cursor?: string, maxScan = 5_000): Promise<LedgerPage> {
    const keys: string[] = [];
    for await (const k of await this.#kv.keys()) {
      if (cursor === undefined || k < cursor) keys.push(k);
    }
    keys.sort((a, b) => (a < b ? 1 : a > b ? -1 : 0));
    const items: WorkItem[] = [];
    let scanned = 0;
    let lastKey: string | undefined;
    while (scanned < keys.length && items.length < limit && scanned < maxScan) {
      const batch = keys.slice(scanned, scanned + READ_CONCURRENCY);
      const read = await Promise.all(batch.map((k) => this.#readQuietly(k)));
      for (let i = 0; i < batch.length; i++) {
        scanned++;
        lastKey = batch[i];
        const item = read[i];
        if (item && matches(item, filter)) {
          items.push(item);
          if (items.length >= limit) break;
        }
      }
    }
    const more = scanned < keys.length;
    return more && lastKey !== undefined ? { items, nextCursor: lastKey } : { items };
  }

  /** A record for listing: a corrupt value is reported and skipped, never fails the whole list. */
  async #readQuietly(workId: string): Promise<WorkItem | undefined> {
    const entry = await this.#kv.get(workId);
    if (entry?.operation !== "PUT") return undefined;
    const r = codec.safeDecode(entry.value, `${this.bucket}/${workId}`);
    if (!r.ok) {
      this.#logger.warn({ workId, err: r.error.message }, "skipping an unreadable work ledger record");
      return undefined;
    }
    return r.value;
  }
}

function matches(item: WorkItem, f: LedgerFilter): boolean {
  if (f.capability !== undefined && item.capability !== f.capability) return false;
  if (f.boundary !== undefined && item.boundary !== f.boundary) return false;
  if (f.statuses && f.statuses.length > 0 && !f.statuses.includes(item.status)) return false;
  if (f.offeredBy !== undefined && item.offeredBy.agentId !== f.offeredBy) return false;
  if (f.claimedBy !== undefined && item.claim?.agentId !== f.claimedBy) return false;
  return f.visible === undefined || f.visible(item);
}
