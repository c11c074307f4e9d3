import type { KV } from "@nats-io/kv";
import { z } from "zod";
import { bucketName, isCasConflict } from "./cas.js";
import { jsonCodec } from "./codec.js";
import type { Fabric } from "./connection.js";
import { LeaseHeldError } from "./errors.js";
import type { Logger } from "./logger.js";
import { ensureBucket } from "./streams.js";

const leaseRecordSchema = z.object({
  holder: z.string(),
  acquiredAt: z.string(),
  renewedAt: z.string(),
});
export type LeaseRecord = z.infer<typeof leaseRecordSchema>;
const codec = jsonCodec(leaseRecordSchema);

/**
 * Opens (creating if needed) a bucket for leases that expire `ttlMs` after their last renewal.
 * The TTL belongs to the bucket because nats-server 2.9 ignores per-key TTL: use one bucket per TTL.
 */
export function leaseBucket(fabric: Fabric, name: string, ttlMs: number): Promise<KV> {
  return ensureBucket(fabric, { name, history: 1, ttlMs });
}

export interface LeaseOptions {
  /** Who holds it (shown to others in LeaseHeldError). */
  holder: string;
  /** How often the holder rewrites the key; must be well under the bucket TTL (a third is typical). */
  renewIntervalMs: number;
  logger?: Logger;
}

/**
 * A singleton lock: a key created in a TTL bucket, rewritten by compare-and-set while held, deleted
 * on release. If the holder dies the key ages out of the bucket and the next `tryAcquire` wins it.
 */
export class Lease {
  readonly name: string;
  readonly holder: string;
  #kv: KV;
  #revision: number;
  #timer: NodeJS.Timeout | undefined;
  #held = true;
  #lostListeners = new Set<(reason: string) => void>();
  #logger: Logger | undefined;
  #acquiredAt: string;

  private constructor(kv: KV, name: string, revision: number, options: LeaseOptions, acquiredAt: string) {
    this.#kv = kv;
    this.name = name;
    this.holder = options.holder;
    this.#revision = revision;
    this.#logger = options.logger;
    this.#acquiredAt = acquiredAt;
    this.#timer = setInterval(() => void this.renew(), options.renewIntervalMs);
    this.#timer.unref();
  }

  /** Takes the lease if nobody holds it; returns undefined when someone does. */
  static async tryAcquire(kv: KV, name: string, options: LeaseOptions): Promise<Lease | undefined> {
    const now = new Date().toISOString();
    try {
      const revision = await kv.create(
        name,
        codec.encode({ holder: options.holder, acquiredAt: now, renewedAt: now }),
      );
      return new Lease(kv, name, revision, options, now);
    } catch (err) {
      if (isCasConflict(err)) return undefined;
      throw err;
    }
  }

  /** Takes the lease or throws LeaseHeldError naming the current holder. */
  static async acquire(kv: KV, name: string, options: LeaseOptions): Promise<Lease> {
    const lease = await Lease.tryAcquire(kv, name, options);
    if (lease) return lease;
    throw new LeaseHeldError(name, await Lease.holderOf(kv, name));
  }

  /** Who holds the lease now, if anyone. */
  static async holderOf(kv: KV, name: string): Promise<string | undefined> {
    const entry = await kv.get(name);
    if (entry?.operation !== "PUT") return undefined;
    const r = codec.safeDecode(entry.value, `${bucketName(kv)}/${name}`);
    return r.ok ? r.value.holder : undefined;
  }

  get held(): boolean {
    return this.#held;
  }

  /** Called once if the lease is lost (renewal found someone else's key, or the key gone). */
  onLost(listener: (reason: string) => void): () => void {
    this.#lostListeners.add(listener);
    return () => this.#lostListeners.delete(listener);
  }

  /** Rewrites the key so its TTL starts again. Returns false when the lease was lost. */
  async renew(): Promise<boolean> {
    if (!this.#held) return false;
    const now = new Date().toISOString();
    try {
      this.#revision = await this.#kv.update(
        this.name,
        codec.encode({ holder: this.holder, acquiredAt: this.#acquiredAt, renewedAt: now }),
        this.#revision,
      );
      return true;
    } catch (err) {
      if (isCasConflict(err)) {
        this.#lose("the key changed under us: the lease expired and another holder took it");
        return false;
      }
      // NATS unreachable: keep trying; if it stays away past the TTL, the next renewal reports the loss.
      this.#logger?.warn({ lease: this.name, err: String(err) }, "lease renewal failed; will retry");
      return true;
    }
  }

  /** Stops renewing and deletes the key if it is still ours. */
  async release(): Promise<void> {
    if (!this.#held) return;
    this.#held = false;
    clearInterval(this.#timer);
    try {
      await this.#kv.delete(this.name, { previousSeq: this.#revision });
    } catch (err) {
      if (!isCasConflict(err)) throw err;
    }
  }

  #lose(reason: string): void {
    if (!this.#held) return;
    this.#held = false;
    clearInterval(this.#timer);
    this.#logger?.warn({ lease: this.name, reason }, "lease lost");
    for (const l of this.#lostListeners) l(reason);
  }
}
