import {
  type ConsumerMessages,
  DeliverPolicy,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
  jsonCodec,
  type Logger,
} from "@loominal/fabric";
import { LoominalError, type MemoryRecord, memoryRecordSchema } from "@loominal/protocol";
import { type BucketRole, keyProblem, recallSlot } from "./categories.js";

/** One memory held in a view, with what the store knows about its KV entry. */
export interface CachedMemory {
  key: string;
  record: MemoryRecord;
  /** KV revision (stream sequence) of the entry. */
  revision: number;
  /** When the entry was written, ms since the epoch; the bucket TTL counts from here. */
  writtenAtMs: number;
  /** `updatedAt` in ms, parsed once for sorting. */
  updatedAtMs: number;
  /** Position in recall order (scope/category, then priority), computed once: recall buckets by it. */
  recallSlot: number;
  /** Lower-cased content and tags, built on the first search. */
  haystack?: string;
}

interface Tombstone {
  key: string;
  record: undefined;
  /** Entries at or below this revision are known to be deleted. */
  revision: number;
}

const codec = jsonCodec(memoryRecordSchema);
/** While loading, how often the view re-reads the last sequence under its prefix when nothing arrives. */
const PRIME_RECHECK_MS = 250;
/** Idle heartbeat of a view's consumer: a view whose bucket vanished notices after about two missed ones. */
const VIEW_HEARTBEAT_MS = 2_000;
const KV_OPERATION = "KV-Operation";
const MARKER_REASON = "Nats-Marker-Reason";

interface DeliveryWaiter {
  revision: number;
  resolve: () => void;
  reject: (err: unknown) => void;
  timer: ReturnType<typeof setTimeout>;
}

export interface MemoryViewOptions {
  js: JetStreamClient;
  jsm: () => Promise<JetStreamManager>;
  bucket: string;
  /** What the bucket holds: a record is kept only when its key is where this role puts it. */
  role: BucketRole;
  /** A key filter such as `a.<agentId>.>`: the view holds only keys under it. */
  prefix: string;
  /** Bucket TTL in ms (0: none). Entries older than this are treated as gone: the server drops them without a marker. */
  ttlMs: number;
  /**
   * Most entries held (absent: no limit). Beyond it the entry received longest ago is dropped, so the
   * view keeps the most recently written memories.
   */
  maxEntries?: number;
  logger: Logger;
}

/**
 * An in-process copy of every memory under one key prefix of one bucket, kept fresh by an ordered
 * consumer on `$KV.<bucket>.<prefix>` that first delivers the last value of each key and then every
 * change. Recall reads this copy instead of issuing one get per key, so its cost is proportional to the
 * memories under the prefix (the reader's own), not to the bucket.
 *
 * Writes made through the same store are applied at once (read-your-writes); writes by other processes
 * arrive through the consumer, normally within a few milliseconds. A record whose body disagrees with
 * its key (see `keyProblem`) is logged and skipped like one that fails validation.
 */
export class MemoryView {
  readonly bucket: string;
  readonly prefix: string;
  #options: MemoryViewOptions;
  #entries = new Map<string, CachedMemory | Tombstone>();
  #messages: ConsumerMessages | undefined;
  #primed: Promise<void> | undefined;
  #stopping = false;
  #failed: unknown;
  #invalid = 0;
  #dropped = 0;
  /** Highest stream sequence the consumer has delivered: every earlier change under the prefix is applied. */
  #delivered = 0;
  #waiters = new Set<DeliveryWaiter>();
  #subjectPrefixLength: number;

  constructor(options: MemoryViewOptions) {
    this.#options = options;
    this.bucket = options.bucket;
    this.prefix = options.prefix;
    this.#subjectPrefixLength = `$KV.${options.bucket}.`.length;
  }

  /** Starts the consumer once; resolves when every current value has been received. */
  start(): Promise<void> {
    this.#primed ??= this.#start();
    return this.#primed;
  }

  /** True when the consumer ended unexpectedly; the store replaces such a view. */
  get failed(): boolean {
    return this.#failed !== undefined;
  }

  /** Records that failed validation and were skipped. */
  get invalidRecords(): number {
    return this.#invalid;
  }

  /** Entries dropped to stay within `maxEntries`. */
  get dropped(): number {
    return this.#dropped;
  }

  /** The entry limit, or undefined when there is none. */
  get maxEntries(): number | undefined {
    return this.#options.maxEntries;
  }

  get size(): number {
    let n = 0;
    for (const e of this.#entries.values()) if (e.record) n++;
    return n;
  }

  /**
   * Loaded means: the consumer has delivered the last message under the prefix that existed once it
   * was created. That sequence is read with a last-by-subject get (wildcards work on 2.9), not taken
   * from the consumer's pending count, which nats-server 2.9 over-counts when a key is overwritten
   * while the consumer is still delivering, leaving it above zero for good. While nothing arrives the
   * sequence is read again, so a message that expired or was replaced meanwhile does not stall loading.
   */
  async #start(): Promise<void> {
    const { js, bucket, prefix } = this.#options;
    const filter = `$KV.${bucket}.${prefix}`;
    const consumer = await js.consumers.get(`KV_${bucket}`, {
      filter_subjects: filter,
      deliver_policy: DeliverPolicy.LastPerSubject,
    });
    let fence = await this.#lastSequence(filter);
    let resolvePrimed: () => void = () => undefined;
    const primed = new Promise<void>((resolve) => {
      resolvePrimed = resolve;
    });
    let loaded = false;
    let recheck: ReturnType<typeof setTimeout> | undefined;
    const done = () => {
      loaded = true;
      clearTimeout(recheck);
      resolvePrimed();
    };
    const scheduleRecheck = () => {
      clearTimeout(recheck);
      recheck = setTimeout(() => {
        this.#lastSequence(filter).then(
          (seq) => {
            if (loaded) return;
            fence = seq;
            if (this.#delivered >= fence) done();
            else scheduleRecheck();
          },
          () => {
            if (!loaded && !this.#stopping && this.#failed === undefined) scheduleRecheck();
          },
        );
      }, PRIME_RECHECK_MS);
    };
    if (fence === 0) done();
    else scheduleRecheck();
    this.#messages = await consumer.consume({
      max_messages: 1_000,
      idle_heartbeat: VIEW_HEARTBEAT_MS,
      callback: (m) => {
        this.#onMessage(m);
        if (!loaded) {
          if (this.#delivered >= fence) done();
          else scheduleRecheck();
        }
      },
    });
    const messages = this.#messages;
    // An ordered consumer re-creates a deleted consumer by itself, but not a deleted bucket: it keeps
    // reporting the stream missing. The view then fails, and the store replaces it (re-creating the bucket).
    void (async () => {
      for await (const s of messages.status()) {
        if (s.type !== "stream_not_found" || this.#stopping) continue;
        this.#failed ??= new Error(`the bucket ${bucket} is gone`);
        this.#rejectWaiters();
        messages.stop();
        done();
        return;
      }
    })().catch(() => undefined);
    void this.#messages.closed().then(
      (err) => {
        if (!this.#stopping) this.#failed = err ?? new Error("memory view consumer closed");
        this.#rejectWaiters();
        done();
      },
      (err: unknown) => {
        if (!this.#stopping) this.#failed = err;
        this.#rejectWaiters();
        done();
      },
    );
    await primed;
    if (this.#failed !== undefined) throw this.#failed;
  }

  /** Stream sequence of the last message under `filter`, 0 when there is none. */
  async #lastSequence(filter: string): Promise<number> {
    const jsm = await this.#options.jsm();
    // A direct get carries the filter in its request subject, which the per-user NATS permissions of
    // the shared buckets allow (a plain message get would read any key, so they refuse it).
    const m = await jsm.direct.getMessage(`KV_${this.bucket}`, { last_by_subj: filter });
    return m?.seq ?? 0;
  }

  #onMessage(m: JsMsg): void {
    this.#apply(m);
    // The consumer is ordered: once sequence N is here, every earlier change under the prefix is too.
    this.#delivered = Math.max(this.#delivered, m.seq);
    for (const w of this.#waiters) {
      if (w.revision <= this.#delivered) {
        clearTimeout(w.timer);
        this.#waiters.delete(w);
        w.resolve();
      }
    }
  }

  #apply(m: JsMsg): void {
    const key = m.subject.slice(this.#subjectPrefixLength);
    const revision = m.seq;
    const op = m.headers?.get(KV_OPERATION) ?? "";
    const marker = m.headers?.get(MARKER_REASON) ?? "";
    const current = this.#entries.get(key);
    // A live entry may be refreshed by the same revision (server timestamp); a tombstone may not.
    if (current && (current.revision > revision || (!current.record && current.revision >= revision))) return;
    if (op === "DEL" || op === "PURGE" || marker !== "") {
      this.#entries.delete(key);
      return;
    }
    const decoded = codec.safeDecode(m.data, `${this.bucket}/${key}`);
    if (!decoded.ok) {
      this.#invalid++;
      this.#options.logger.warn(
        { bucket: this.bucket, key, err: decoded.error.message },
        "skipping invalid memory",
      );
      this.#entries.delete(key);
      return;
    }
    const problem = keyProblem(this.#options.role, key, decoded.value);
    if (problem) {
      this.#invalid++;
      this.#options.logger.warn(
        { bucket: this.bucket, key, err: problem },
        "skipping memory stored at the wrong key",
      );
      this.#entries.delete(key);
      return;
    }
    this.#put(key, decoded.value, revision, Math.floor(Number(m.info.timestampNanos) / 1_000_000));
  }

  #put(key: string, record: MemoryRecord, revision: number, writtenAtMs: number): void {
    // Re-inserting moves the key to the end, so iteration order is the order entries were received.
    this.#entries.delete(key);
    const max = this.#options.maxEntries;
    if (max !== undefined) {
      for (const [oldest, e] of this.#entries) {
        if (this.#entries.size < max) break;
        this.#entries.delete(oldest);
        if (e.record) this.#dropped++;
      }
    }
    this.#entries.set(key, {
      key,
      record,
      revision,
      writtenAtMs,
      updatedAtMs: Date.parse(record.updatedAt),
      recallSlot: recallSlot(record),
    });
  }

  /** Applies a write this process made (revision from the put). Older news from the consumer is then ignored. */
  applyWrite(key: string, record: MemoryRecord, revision: number): void {
    const current = this.#entries.get(key);
    if (current && current.revision >= revision) return;
    this.#put(key, record, revision, Date.now());
  }

  /** Applies a delete this process made of the entry at `revision`. */
  applyDelete(key: string, revision: number): void {
    const current = this.#entries.get(key);
    if (current && current.revision > revision) return;
    this.#entries.set(key, { key, record: undefined, revision });
  }

  /**
   * Every live memory, dropping those past the bucket TTL (the server removes them without telling
   * consumers). Bounded by the number of entries held.
   */
  memories(nowMs: number = Date.now()): CachedMemory[] {
    const ttl = this.#options.ttlMs;
    const out: CachedMemory[] = [];
    for (const [key, e] of this.#entries) {
      if (!e.record) continue;
      if (ttl > 0 && e.writtenAtMs + ttl <= nowMs) {
        this.#entries.delete(key);
        continue;
      }
      out.push(e);
    }
    return out;
  }

  /**
   * Resolves once the consumer has delivered the change at stream sequence `revision` (a write this
   * process made under the prefix), so that every earlier change under the prefix is in the view.
   */
  waitForDelivery(revision: number, timeoutMs: number): Promise<void> {
    if (this.#delivered >= revision) return Promise.resolve();
    if (this.#failed !== undefined || this.#stopping) return Promise.reject(this.#unavailable());
    return new Promise((resolve, reject) => {
      const waiter: DeliveryWaiter = {
        revision,
        resolve,
        reject,
        timer: setTimeout(() => {
          this.#waiters.delete(waiter);
          reject(
            new LoominalError(
              "timeout",
              `the change at revision ${revision} of ${this.bucket} did not arrive within ${timeoutMs} ms`,
            ),
          );
        }, timeoutMs),
      };
      this.#waiters.add(waiter);
    });
  }

  #unavailable(): Error {
    return new LoominalError("nats_unavailable", `the view of ${this.bucket} ${this.prefix} stopped`, {
      cause: this.#failed,
    });
  }

  #rejectWaiters(): void {
    const err = this.#unavailable();
    for (const w of this.#waiters) {
      clearTimeout(w.timer);
      w.reject(err);
    }
    this.#waiters.clear();
  }

  /** Expiry time of an entry in ms, or undefined when the bucket has no TTL. */
  expiresAtMs(entry: CachedMemory): number | undefined {
    return this.#options.ttlMs > 0 ? entry.writtenAtMs + this.#options.ttlMs : undefined;
  }

  async stop(): Promise<void> {
    this.#stopping = true;
    this.#messages?.stop();
    this.#rejectWaiters();
  }
}
