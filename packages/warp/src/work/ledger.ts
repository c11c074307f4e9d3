import {
  ConfigMismatchError,
  casUpdate,
  DeliverPolicy,
  ensureBucket,
  type Fabric,
  forgetBucket,
  forgetRevision,
  isCasConflict,
  isStorageFullError,
  type JsonCodec,
  jsonCodec,
  type KV,
  type Logger,
} from "@loominal/fabric";
import { buckets, type WorkEvent, type WorkItem, type WorkStatus, workItemSchema } from "@loominal/protocol";
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
 * recent transitions (`watchEvents({ deliverFrom: "all" })` replays them). Each revision is a full copy
 * of the item (description, context, result), so the history is short: offered, claimed, one progress
 * note and the outcome.
 */
export const LEDGER_HISTORY = 4;
/** The first window a list reads, in ledger writes; it doubles while a page is not full. */
const FIRST_WINDOW = 128;
/** How long a scan waits for the server to deliver a window before giving up on the rest of it. */
const SCAN_IDLE_MS = 2_000;
const WORK_ID = /^[0-9a-f]{32}$/;
const TERMINAL: ReadonlySet<WorkStatus> = new Set(["completed", "cancelled", "discarded"]);
/** The ledger key holding the storage reserve (not a work id, so lists and watches skip it). */
const RESERVE_KEY = "storage-reserve";

/** One ledger write as the stream holds it: where, and of which key. */
interface WriteRef {
  seq: number;
  key: string;
  atMs: number;
  data: Uint8Array;
}

/**
 * The work ledger: one KV key per work item, holding its current state. Every transition is a
 * compare-and-set on the key's revision, so two writers can never both move an item out of a state
 * (an item is completed at most once, claimed by one claimer at a time).
 */
export class WorkLedger {
  readonly bucket: string;
  #kv: KV;
  #fabric: Fabric;
  #logger: Logger;
  #stream: string;
  #prefix: string;

  private constructor(fabric: Fabric, kv: KV, bucket: string, logger: Logger) {
    this.#fabric = fabric;
    this.#kv = kv;
    this.bucket = bucket;
    this.#logger = logger;
    this.#stream = `KV_${bucket}`;
    this.#prefix = `$KV.${bucket}.`;
  }

  static async open(fabric: Fabric, projectId: string, logger: Logger): Promise<WorkLedger> {
    const name = buckets.workLedger(projectId);
    const spec = { name, history: LEDGER_HISTORY };
    let kv: KV;
    try {
      kv = await ensureBucket(fabric, spec);
    } catch (err) {
      // A ledger made by an earlier version kept 16 revisions; only the history differs, so shorten it.
      if (!(err instanceof ConfigMismatchError) || err.differences.some((d) => d.field !== "history"))
        throw err;
      const jsm = await fabric.jsm();
      const info = await jsm.streams.info(`KV_${name}`);
      await jsm.streams.update(`KV_${name}`, { ...info.config, max_msgs_per_subject: LEDGER_HISTORY });
      logger.info({ bucket: name, history: LEDGER_HISTORY }, "shortened the work ledger's history");
      forgetBucket(fabric, name);
      kv = await ensureBucket(fabric, spec);
    }
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

  /**
   * Writes a new item; fails (10071) if the key exists. Returns the revision. `json` is the item's JSON
   * when the caller already has it (an offer, which sends the same JSON in its message).
   */
  create(item: WorkItem, json?: string): Promise<number> {
    return this.#kv.create(item.workId, json === undefined ? codec.encode(item) : Buffer.from(json, "utf8"));
  }

  async get(workId: string): Promise<LedgerEntry | undefined> {
    const entry = await this.#kv.get(workId);
    if (entry?.operation !== "PUT") return undefined;
    return { item: codec.decode(entry.value, `${this.bucket}/${workId}`), revision: entry.revision };
  }
  /** The revisions the ledger still keeps of an item (at most LEDGER_HISTORY), oldest first. */
  async history(workId: string): Promise<LedgerEntry[]> {
    const out: LedgerEntry[] = [];
    for await (const e of await this.#kv.history({ key: workId })) {
      if (e.operation !== "PUT") continue;
      const r = codec.safeDecode(e.value, `${this.bucket}/${workId}@${e.revision}`);
      if (r.ok) out.push({ item: r.value, revision: e.revision });
      else this.#logger.warn({ workId, err: r.error.message }, "skipping an unreadable work ledger revision");
    }
    return out;
  }

  /**
   * Applies `mutate` by compare-and-set. With `known` (a record and revision this process already has,
   * e.g. from the offer message or its own last write) the first attempt costs one round trip; after a
   * lost race it falls back to fabric's casUpdate, which re-reads and retries with backoff.
   */
  transition(workId: string, mutate: LedgerMutation, known?: LedgerEntry): Promise<LedgerEntry> {
    return this.#transition(workId, mutate, known).catch(async (err: unknown) => {
      // Work already accepted must be able to finish when the store is full: give up the reserve, once.
      if (!isStorageFullError(err) || !(await this.releaseReserve())) throw err;
      return this.#transition(workId, mutate);
    });
  }

  /**
   * Whether the storage reserve is in place: a value of `bytes` kept in the ledger so that, when the
   * JetStream store fills up, deleting it leaves room for claims and completions of work already
   * accepted while new offers are refused.
   */
  async hasReserve(): Promise<boolean> {
    const jsm = await this.#fabric.jsm();
    const subject = `${this.#prefix}${RESERVE_KEY}`;
    const info = await jsm.streams.info(this.#stream, { subjects_filter: subject });
    return (info.state.subjects?.[subject] ?? 0) > 0;
  }

  /** Writes the storage reserve; false when the store has no room for it. */
  async writeReserve(bytes: number): Promise<boolean> {
    try {
      await this.#kv.put(RESERVE_KEY, new Uint8Array(bytes));
      return true;
    } catch (err) {
      if (isStorageFullError(err)) return false;
      throw err;
    }
  }

  /**
   * Deletes the storage reserve (deleting needs no room); true when there was one. It deletes by
   * sequence: on nats-server 2.9 a purge by subject frees the bytes in the stream but not in the
   * server's storage accounting, so writes would still be refused.
   */
  async releaseReserve(): Promise<boolean> {
    const jsm = await this.#fabric.jsm();
    const entry = await this.#kv.get(RESERVE_KEY);
    const released =
      entry?.operation === "PUT" &&
      (await jsm.streams.deleteMessage(this.#stream, entry.revision, false).catch(() => false));
    if (released) {
      this.#logger.warn(
        { bucket: this.bucket },
        "the JetStream store is full: released the work ledger's storage reserve so claimed work can finish; new offers are refused until there is room again",
      );
      this.onReserveReleased?.();
    }
    return released === true;
  }

  /** Called when the reserve was given up. */
  onReserveReleased: (() => void) | undefined;

  async #transition(workId: string, mutate: LedgerMutation, known?: LedgerEntry): Promise<LedgerEntry> {
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
   * One page of items matching `filter`, most recently written first. The ledger's stream holds the
   * writes in order, so a page reads windows of the newest writes, newest first, keeps the newest write
   * of each key that matches, and reads the current record of those it returns (a write that is no
   * longer its key's latest is skipped). A page costs in proportion to the writes it scans, never to the whole
   * ledger. `cursor` is where the previous page stopped (a stream sequence). At most `maxScan` writes
   * are scanned per call; a page may then hold fewer than `limit` items but still carries a cursor.
   * An item written again while a caller pages moves to the front: it may be missed or shown twice.
   */
  async page(filter: LedgerFilter, limit: number, cursor?: string, maxScan = 20_000): Promise<LedgerPage> {
    const jsm = await this.#fabric.jsm();
    const { state } = await jsm.streams.info(this.#stream);
    const first = Math.max(1, state.first_seq);
    let hi = cursor !== undefined ? Math.min(Number(cursor) - 1, state.last_seq) : state.last_seq;
    let width = Math.max(FIRST_WINDOW, limit * 2);
    let scanned = 0;
    const items: WorkItem[] = [];
    let lastSeq: number | undefined;
    const seen = new Set<string>();
    while (items.length < limit && hi >= first && scanned < maxScan && state.messages > 0) {
      const lo = Math.max(first, hi - width + 1);
      const writes = await this.#scan(lo, hi);
      scanned += hi - lo + 1;
      // The newest write of each key in what this call scanned, if it matches; a newer write of it on
      // an earlier page is caught below, when the record is read.
      const candidates: WriteRef[] = [];
      for (let i = writes.length - 1; i >= 0; i--) {
        const w = writes[i];
        if (!w || seen.has(w.key)) continue;
        seen.add(w.key);
        const r = codec.safeDecode(w.data, `${this.bucket}/${w.key}`);
        if (r.ok && matches(r.value, filter)) candidates.push(w);
      }
      for (let i = 0; i < candidates.length && items.length < limit; i += READ_CONCURRENCY) {
        const batch = candidates.slice(i, i + READ_CONCURRENCY);
        const read = await Promise.all(batch.map((w) => this.#readQuietly(w.key, w.seq)));
        for (let j = 0; j < batch.length && items.length < limit; j++) {
          const item = read[j];
          if (item && matches(item, filter)) {
            items.push(item);
            lastSeq = batch[j]?.seq;
          }
        }
      }
      hi = lo - 1;
      width *= 2;
    }
    if (items.length >= limit && lastSeq !== undefined) return { items, nextCursor: String(lastSeq) };
    return hi >= first && state.messages > 0 ? { items, nextCursor: String(hi + 1) } : { items };
  }

  /**
   * Removes items that finished before `cutoffMs` (completed, cancelled, discarded) and dead items
   * marked before `deadCutoffMs`, every revision of each (deleted by sequence), leaving no marker. It reads the oldest
   * writes first and stops at the first one newer than the cutoff, so a pass costs in proportion to what
   * it removes (plus old items still in progress). Returns how many items it removed.
   */
  async purgeFinished(
    cutoffMs: number,
    deadCutoffMs: number,
    maxItems: number,
    signal?: AbortSignal,
  ): Promise<number> {
    const jsm = await this.#fabric.jsm();
    const { state } = await jsm.streams.info(this.#stream);
    if (state.messages === 0) return 0;
    // Every write of an item that finished before the cutoff is itself older than the cutoff, so the
    // scan meets all of them.
    const keys: string[] = [];
    const seqs = new Map<string, number[]>();
    await this.#scan(Math.max(1, state.first_seq), state.last_seq, (w) => {
      if (w.atMs >= cutoffMs) return false;
      const of = seqs.get(w.key);
      if (of) of.push(w.seq);
      else {
        seqs.set(w.key, [w.seq]);
        keys.push(w.key);
      }
      return keys.length < maxItems * 4;
    });
    let removed = 0;
    for (let i = 0; i < keys.length && removed < maxItems && !signal?.aborted; i += READ_CONCURRENCY) {
      const batch = keys.slice(i, i + READ_CONCURRENCY);
      const done = await Promise.all(
        batch.map(async (key) => {
          const entry = await this.#kv.get(key);
          if (entry?.operation !== "PUT") return false;
          const r = codec.safeDecode(entry.value, `${this.bucket}/${key}`);
          if (!r.ok) return false;
          const at = entry.created.getTime();
          const expired = TERMINAL.has(r.value.status)
            ? at < cutoffMs
            : r.value.status === "dead" && at < deadCutoffMs;
          if (!expired) return false;
          // By sequence, not a purge by subject: on nats-server 2.9 only this frees the bytes in the
          // server's storage accounting. No delete marker is written.
          for (const seq of seqs.get(key) ?? [])
            await jsm.streams.deleteMessage(this.#stream, seq, false).catch(() => false);
          return true;
        }),
      );
      removed += done.filter(Boolean).length;
    }
    return removed;
  }

  /**
   * The ledger's writes from `lo` to `hi` (stream sequences), oldest first, read with an ordered
   * consumer (one request, then the server streams them). `keep` may stop the scan early.
   */
  async #scan(lo: number, hi: number, keep?: (w: WriteRef) => boolean): Promise<WriteRef[]> {
    const out: WriteRef[] = [];
    if (hi < lo) return out;
    const consumer = await this.#fabric.js.consumers.get(this.#stream, {
      deliver_policy: DeliverPolicy.StartSequence,
      opt_start_seq: lo,
    });
    const messages = await consumer.consume({ max_messages: Math.min(1_000, hi - lo + 1) });
    let idle = setTimeout(() => messages.stop(), SCAN_IDLE_MS);
    try {
      for await (const m of messages) {
        clearTimeout(idle);
        idle = setTimeout(() => messages.stop(), SCAN_IDLE_MS);
        if (m.seq > hi) break;
        const key = m.subject.startsWith(this.#prefix) ? m.subject.slice(this.#prefix.length) : "";
        const op = m.headers?.get("KV-Operation");
        if (WORK_ID.test(key) && !op) {
          const w = { seq: m.seq, key, atMs: Math.floor(m.info.timestampNanos / 1_000_000), data: m.data };
          if (keep && !keep(w)) break;
          out.push(w);
        }
        if (m.seq >= hi || m.info.pending === 0) break;
      }
    } finally {
      clearTimeout(idle);
      messages.stop();
    }
    return out;
  }

  /**
   * A record for listing: a corrupt value is reported and skipped, never fails the whole list. With
   * `atSeq`, only if that write is still the key's latest.
   */
  async #readQuietly(workId: string, atSeq?: number): Promise<WorkItem | undefined> {
    const entry = await this.#kv.get(workId);
    if (entry?.operation !== "PUT") return undefined;
    if (atSeq !== undefined && entry.revision !== atSeq) return undefined;
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
