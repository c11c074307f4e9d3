import type { Logger } from "@loominal/fabric";
import { jsonCodec } from "@loominal/fabric";
import { type MemoryRecord, memoryRecordSchema } from "@loominal/protocol";
import { type ConsumerMessages, DeliverPolicy, type JetStreamClient, type JsMsg } from "@nats-io/jetstream";
import { recallSlot } from "./categories.js";

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
const KV_OPERATION = "KV-Operation";
const MARKER_REASON = "Nats-Marker-Reason";

export interface MemoryViewOptions {
  js: JetStreamClient;
  bucket: string;
  /** A key filter such as `a.<agentId>.>`: the view holds only keys under it. */
  prefix: string;
  /** Bucket TTL in ms (0: none). Entries older than this are treated as gone: the server drops them without a marker. */
  ttlMs: number;
  logger: Logger;
}

/**
 * An in-process copy of every memory under one key prefix of one bucket, kept fresh by an ordered
 * consumer on `$KV.<bucket>.<prefix>` that first delivers the last value of each key and then every
 * change. Recall reads this copy instead of issuing one get per key, so its cost is proportional to the
 * memories under the prefix (the reader's own), not to the bucket.
 *
 * Writes made through the same store are applied at once (read-your-writes); writes by other processes
 * arrive through the consumer, normally within a few milliseconds.
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

  get size(): number {
    let n = 0;
    for (const e of this.#entries.values()) if (e.record) n++;
    return n;
  }

  async #start(): Promise<void> {
    const { js, bucket, prefix } = this.#options;
    const consumer = await js.consumers.get(`KV_${bucket}`, {
      filter_subjects: `$KV.${bucket}.${prefix}`,
      deliver_policy: DeliverPolicy.LastPerSubject,
    });
    const info = await consumer.info(true);
    let resolvePrimed: () => void = () => undefined;
    const primed = new Promise<void>((resolve) => {
      resolvePrimed = resolve;
    });
    if (info.num_pending === 0) resolvePrimed();
    this.#messages = await consumer.consume({
      max_messages: 1_000,
      callback: (m) => {
        this.#onMessage(m);
        if (m.info.pending === 0) resolvePrimed();
      },
    });
    void this.#messages.closed().then(
      (err) => {
        if (!this.#stopping) this.#failed = err ?? new Error("memory view consumer closed");
        resolvePrimed();
      },
      (err: unknown) => {
        if (!this.#stopping) this.#failed = err;
        resolvePrimed();
      },
    );
    await primed;
    if (this.#failed !== undefined) throw this.#failed;
  }

  #onMessage(m: JsMsg): void {
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
    this.#put(key, decoded.value, revision, Math.floor(Number(m.info.timestampNanos) / 1_000_000));
  }

  #put(key: string, record: MemoryRecord, revision: number, writtenAtMs: number): void {
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

  /** Expiry time of an entry in ms, or undefined when the bucket has no TTL. */
  expiresAtMs(entry: CachedMemory): number | undefined {
    return this.#options.ttlMs > 0 ? entry.writtenAtMs + this.#options.ttlMs : undefined;
  }

  async stop(): Promise<void> {
    this.#stopping = true;
    this.#messages?.stop();
  }
}
