import { performance } from "node:perf_hooks";
import { ConfigError, randomId } from "@loominal/protocol";
import type { KV, KvEntry } from "@nats-io/kv";
import { z } from "zod";
import { bucketName, isCasConflict } from "./cas.js";
import { jsonCodec } from "./codec.js";
import type { Fabric } from "./connection.js";
import { LeaseHeldError } from "./errors.js";
import type { Logger } from "./logger.js";
import { type BucketSpec, ensureBucket } from "./streams.js";

const leaseRecordSchema = z.object({
  holder: z.string(),
  /** Random per acquisition: tells this holder's own writes from anyone else's. */
  token: z.string().optional(),
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
  return ensureBucket(fabric, leaseBucketSpec(name, ttlMs));
}

/** The configuration of a lease bucket (for provisioning it ahead of use). */
export function leaseBucketSpec(name: string, ttlMs: number): BucketSpec {
  return { name, history: 1, ttlMs };
}

export interface LeaseOptions {
  /** Who holds it (shown to others in LeaseHeldError). */
  holder: string;
  /** How often the holder rewrites the key; a third of the TTL is typical. Must be under `ttlMs - safetyMarginMs`. */
  renewIntervalMs: number;
  /** The bucket's TTL in ms. Read from the bucket (one request) when absent. */
  ttlMs?: number;
  /**
   * The holder stops considering itself the holder `safetyMarginMs` before the key can expire, counted from
   * the start of its last successful write, so it stops acting before anyone else can acquire.
   * Default: a fifth of the TTL. It must cover timer lateness and clock-rate differences.
   */
  safetyMarginMs?: number;
  logger?: Logger;
}

type LeaseState = "held" | "lost" | "released";

/**
 * A singleton lock: a key created in a TTL bucket, rewritten by compare-and-set while held, deleted on
 * release. If the holder dies the key ages out of the bucket and the next `tryAcquire` wins it.
 *
 * The holder believes it holds the lease only until `ttlMs - safetyMarginMs` after the start of its last
 * successful write; the key cannot expire on the server before `ttlMs` after that write. So a holder cut
 * off from NATS reports the loss (`held` false, `onLost`, `signal` aborted) before another can take over.
 * One renewal runs at a time, and a renewal that finds the key rewritten with this holder's own token (an
 * earlier renewal that landed after its answer was lost) is not a loss.
 */
export class Lease {
  readonly name: string;
  readonly holder: string;
  readonly ttlMs: number;
  readonly safetyMarginMs: number;
  #kv: KV;
  #token: string;
  #revision: number;
  #acquiredAt: string;
  #state: LeaseState = "held";
  #lostReason: string | undefined;
  /** performance.now() after which this holder no longer claims the lease. */
  #validUntil: number;
  #renewTimer: NodeJS.Timeout | undefined;
  #deadlineTimer: NodeJS.Timeout | undefined;
  #inFlight: Promise<boolean> | undefined;
  #abort = new AbortController();
  #lostListeners = new Set<(reason: string) => void>();
  #logger: Logger | undefined;

  private constructor(
    kv: KV,
    name: string,
    init: {
      revision: number;
      token: string;
      acquiredAt: string;
      sentAt: number;
      ttlMs: number;
      marginMs: number;
    },
    options: LeaseOptions,
  ) {
    this.#kv = kv;
    this.name = name;
    this.holder = options.holder;
    this.ttlMs = init.ttlMs;
    this.safetyMarginMs = init.marginMs;
    this.#token = init.token;
    this.#revision = init.revision;
    this.#acquiredAt = init.acquiredAt;
    this.#logger = options.logger;
    this.#validUntil = init.sentAt + this.ttlMs - this.safetyMarginMs;
    this.#armDeadline();
    this.#renewTimer = setInterval(() => void this.renew(), options.renewIntervalMs);
    this.#renewTimer.unref();
  }

  /** Takes the lease if nobody holds it; returns undefined when someone does. */
  static async tryAcquire(kv: KV, name: string, options: LeaseOptions): Promise<Lease | undefined> {
    const ttlMs = options.ttlMs ?? (await kv.status()).ttl;
    const marginMs = options.safetyMarginMs ?? Math.floor(ttlMs / 5);
    checkTiming(bucketName(kv), ttlMs, marginMs, options.renewIntervalMs);
    const token = randomId();
    const now = new Date().toISOString();
    const sentAt = performance.now();
    try {
      const revision = await kv.create(
        name,
        codec.encode({ holder: options.holder, token, acquiredAt: now, renewedAt: now }),
      );
      return new Lease(kv, name, { revision, token, acquiredAt: now, sentAt, ttlMs, marginMs }, options);
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

  /** Whether this holder may act as the lease holder now: held, and renewed recently enough. */
  get held(): boolean {
    if (this.#state !== "held") return false;
    if (performance.now() < this.#validUntil) return true;
    // The deadline passed while the event loop was busy; report it as soon as possible.
    queueMicrotask(() => this.#checkDeadline());
    return false;
  }

  /** Aborted when the lease is lost or released: hand it to the work only the holder may do. */
  get signal(): AbortSignal {
    return this.#abort.signal;
  }

  /**
   * Called once when the lease is lost: another holder took the key, or no renewal succeeded for
   * `ttlMs - safetyMarginMs`. Not called on release. A listener added after the loss is called at once.
   */
  onLost(listener: (reason: string) => void): () => void {
    if (this.#state === "lost") {
      const reason = this.#lostReason ?? "lost";
      queueMicrotask(() => listener(reason));
      return () => undefined;
    }
    this.#lostListeners.add(listener);
    return () => this.#lostListeners.delete(listener);
  }

  /**
   * Rewrites the key so its TTL starts again; resolves with `held` afterwards. A renewal already in flight
   * is joined, never doubled. A failure to reach NATS is not a loss by itself: the deadline decides.
   */
  renew(): Promise<boolean> {
    if (this.#state !== "held") return Promise.resolve(false);
    if (!this.#inFlight) {
      const run = this.#renewOnce();
      this.#inFlight = run;
      void run.finally(() => {
        if (this.#inFlight === run) this.#inFlight = undefined;
      });
    }
    return this.#inFlight;
  }

  /** Stops renewing and deletes the key if it is still this holder's. Safe to call twice, or after a loss. */
  async release(): Promise<void> {
    if (this.#state === "released") return;
    this.#state = "released";
    this.#stopTimers();
    this.#abort.abort(new Error(`lease ${this.name} released`));
    // Let a renewal in flight settle so the revision we delete against is current.
    await this.#inFlight?.catch(() => undefined);
    try {
      await this.#kv.delete(this.name, { previousSeq: this.#revision });
    } catch (err) {
      if (!isCasConflict(err)) throw err;
      const entry = await this.#kv.get(this.name);
      if (entry && this.#isOurs(entry)) {
        await this.#kv.delete(this.name, { previousSeq: entry.revision }).catch((e: unknown) => {
          if (!isCasConflict(e)) throw e;
        });
      }
    }
  }

  async #renewOnce(): Promise<boolean> {
    const sentAt = performance.now();
    const data = codec.encode({
      holder: this.holder,
      token: this.#token,
      acquiredAt: this.#acquiredAt,
      renewedAt: new Date().toISOString(),
    });
    try {
      this.#renewed(await this.#kv.update(this.name, data, this.#revision), sentAt);
      return this.held;
    } catch (err) {
      if (!isCasConflict(err)) return this.#renewFailed(err);
    }
    // The key changed under us. Still ours (an earlier write landed late)? Then write on top of it.
    try {
      const entry = await this.#kv.get(this.name);
      if (entry && this.#isOurs(entry)) {
        this.#renewed(await this.#kv.update(this.name, data, entry.revision), sentAt);
        return this.held;
      }
    } catch (err) {
      if (!isCasConflict(err)) return this.#renewFailed(err);
    }
    this.#lose("the key expired or another holder took it");
    return false;
  }

  #renewFailed(err: unknown): boolean {
    this.#logger?.warn({ lease: this.name, err: String(err) }, "lease renewal failed; will retry");
    this.#checkDeadline();
    return this.held;
  }

  #renewed(revision: number, sentAt: number): void {
    this.#revision = revision;
    if (this.#state === "lost") {
      // Rewritten after we declared the loss: give the key up now rather than make others wait a TTL.
      this.#kv.delete(this.name, { previousSeq: revision }).catch(() => undefined);
      return;
    }
    if (this.#state !== "held") return;
    this.#validUntil = Math.max(this.#validUntil, sentAt + this.ttlMs - this.safetyMarginMs);
    this.#armDeadline();
  }

  #isOurs(entry: KvEntry): boolean {
    if (entry.operation !== "PUT") return false;
    const r = codec.safeDecode(entry.value, `${bucketName(this.#kv)}/${this.name}`);
    return r.ok && r.value.token === this.#token;
  }

  #armDeadline(): void {
    clearTimeout(this.#deadlineTimer);
    this.#deadlineTimer = setTimeout(
      () => this.#checkDeadline(),
      Math.max(0, this.#validUntil - performance.now()),
    );
    this.#deadlineTimer.unref();
  }

  #checkDeadline(): void {
    if (this.#state !== "held") return;
    const now = performance.now();
    if (now < this.#validUntil) {
      this.#armDeadline();
      return;
    }
    this.#lose(
      `no renewal succeeded for ${this.ttlMs - this.safetyMarginMs} ms (TTL ${this.ttlMs} ms less a ${this.safetyMarginMs} ms margin); another holder may take it`,
    );
  }

  #lose(reason: string): void {
    if (this.#state !== "held") return;
    this.#state = "lost";
    this.#lostReason = reason;
    this.#stopTimers();
    this.#logger?.warn({ lease: this.name, reason }, "lease lost");
    this.#abort.abort(new Error(`lease ${this.name} lost: ${reason}`));
    for (const l of this.#lostListeners) l(reason);
    this.#lostListeners.clear();
  }

  #stopTimers(): void {
    clearInterval(this.#renewTimer);
    clearTimeout(this.#deadlineTimer);
  }
}

function checkTiming(bucket: string, ttlMs: number, marginMs: number, renewIntervalMs: number): void {
  if (!(ttlMs > 0))
    throw new ConfigError(
      `lease bucket ${bucket} has no TTL, so its leases would never expire; open it with leaseBucket(fabric, name, ttlMs)`,
    );
  if (!(marginMs > 0 && marginMs < ttlMs))
    throw new ConfigError(`lease safetyMarginMs ${marginMs} must be between 0 and the TTL (${ttlMs} ms)`);
  if (!(renewIntervalMs > 0 && renewIntervalMs < ttlMs - marginMs))
    throw new ConfigError(
      `lease renewIntervalMs ${renewIntervalMs} must be under the TTL less the margin (${ttlMs - marginMs} ms), so renewals land before the holder gives up; a third of the TTL is typical`,
    );
}
