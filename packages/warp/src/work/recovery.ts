import {
  encodeJson,
  ensureStream,
  type Fabric,
  forgetStream,
  isConsumerMissing,
  type Logger,
  mayMeanStreamMissing,
  streamInfo,
  streamVanished,
} from "@loominal/fabric";
import { buckets, streams, subjects, type WorkOfferMessage } from "@loominal/protocol";
import type { WorkSettings } from "./context.js";
import { DeadLetterStore, dlqStreamSpec } from "./dlq.js";
import { type LedgerEntry, WorkLedger } from "./ledger.js";
import { OfferPuller } from "./puller.js";
import { ensureWorkConsumer, workStreamSpec } from "./setup.js";

/** Tries of an offer publish, waiting for the connection between them. */
const OFFER_PUBLISH_ATTEMPTS = 3;

export interface Setup {
  ledger: WorkLedger;
  dlq: DeadLetterStore;
}

export interface QueueResourcesOptions {
  fabric: Fabric;
  projectId: string;
  settings: WorkSettings;
  logger: Logger;
  connectTimeoutMs: number;
  prefetch: number;
  prefetchHoldMs: number;
  /** Whether the queue was closed (a closed queue stops replacing what vanished). */
  closed: () => boolean;
  /** Called when the ledger gave up its storage reserve to let accepted work finish. */
  onReserveReleased: () => void;
}

/**
 * What a work queue runs on — the work and dead-letter streams, the ledger bucket, and a puller per
 * boundary+capability — made on first use, and made again when they vanish (deleted, or a server that
 * lost its store): an operation that failed because one is gone forgets the setup and runs once more.
 */
export class QueueResources {
  #o: QueueResourcesOptions;
  #setup: Promise<Setup> | undefined;
  #pullers = new Map<string, Promise<OfferPuller>>();

  constructor(options: QueueResourcesOptions) {
    this.#o = options;
  }

  /**
   * Runs `run` (see #recovering) and maps its failure through the fabric's one classifier, which turns
   * "not there right now" (JetStream not enabled while the server starts, a request cut off by a
   * disconnect) into nats_unavailable. Promise chains rather than async wrappers: every claim and
   * completion passes through here.
   */
  guard<T>(run: () => Promise<T>): Promise<T> {
    return this.#recovering(run).catch((err: unknown) => {
      throw this.#o.fabric.mapError(err);
    });
  }

  /**
   * Runs `run`; if it failed because the work stream, the dead-letter stream or the ledger bucket is gone
   * (deleted, or a server that lost its store), forgets the setup so the next call creates them again,
   * and runs it once more.
   */
  #recovering<T>(run: () => Promise<T>): Promise<T> {
    return started(run).catch(async (err: unknown) => {
      if (!mayMeanStreamMissing(err) || !this.#o.fabric.isConnected) throw err;
      if (!(await this.forgetVanished(err).catch(() => false))) throw err;
      return run();
    });
  }

  /** Whether one of the queue's streams vanished; if so, its setup and pullers are dropped. */
  async forgetVanished(err: unknown): Promise<boolean> {
    const { fabric, projectId } = this.#o;
    const names = [streams.work(projectId), streams.dlq(projectId), `KV_${buckets.workLedger(projectId)}`];
    const gone = await Promise.all(names.map((n) => streamVanished(fabric, n, err)));
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
    const { fabric, projectId } = this.#o;
    if (this.#o.closed() || !fabric.isConnected) return;
    if (await this.forgetVanished(err).catch(() => false)) return;
    const jsm = await fabric.jsm();
    const missing = await jsm.consumers.info(streams.work(projectId), consumerName).then(
      () => false,
      (e: unknown) => isConsumerMissing(e),
    );
    if (!missing) return;
    const p = this.#pullers.get(key);
    this.#pullers.delete(key);
    p?.then((x) => x.close()).catch(() => undefined);
    if (await streamInfo(jsm, streams.work(projectId)).then((i) => i === undefined)) {
      forgetStream(fabric, streams.work(projectId));
      this.#setup = undefined;
    }
  }

  ready(): Promise<Setup> {
    // Connected and set up: the usual case, on every claim and completion, without an async hop.
    if (this.#setup && this.#o.fabric.isConnected) return this.#setup;
    return this.#readySlow();
  }

  async #readySlow(): Promise<Setup> {
    await this.#o.fabric.ready(this.#o.connectTimeoutMs);
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
    const { fabric, projectId, settings, logger } = this.#o;
    await Promise.all([
      ensureStream(fabric, workStreamSpec(projectId)),
      ensureStream(fabric, dlqStreamSpec(projectId, settings.dlqMaxAgeMs)),
    ]);
    const ledger = await WorkLedger.open(fabric, projectId, logger);
    ledger.onReserveReleased = this.#o.onReserveReleased;
    return { ledger, dlq: new DeadLetterStore(fabric, projectId, logger) };
  }

  puller(boundary: string, capability: string): Promise<OfferPuller> {
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
    const { fabric, projectId, settings, logger } = this.#o;
    const { consumer, name } = await ensureWorkConsumer(
      fabric,
      projectId,
      boundary,
      capability,
      settings.ackWaitMs,
    );
    return new OfferPuller(consumer, {
      prefetch: this.#o.prefetch,
      staleAfterMs: Math.min(this.#o.prefetchHoldMs, Math.floor(settings.ackWaitMs / 2)),
      logger,
      onPullError: (err) =>
        void this.#onPullError(`${boundary}\u0000${capability}`, name, err).catch(() => undefined),
    });
  }

  /**
   * Publishes the offer message of a ledger entry. A publish that fails while NATS is reconnecting is
   * tried again once the connection is back (within `connectTimeoutMs`); the message id makes a
   * publish that did land the first time a duplicate the stream drops.
   */
  async publishOfferDurably(entry: LedgerEntry, itemJson?: string): Promise<void> {
    const { fabric, projectId, logger } = this.#o;
    const { item, revision } = entry;
    const subject = subjects.workOffer(projectId, item.boundary, item.capability);
    const data = offerMessageData(entry, itemJson);
    for (let attempt = 1; ; attempt++) {
      try {
        await fabric.js.publish(subject, data, { msgID: `${item.workId}-${revision}` });
        return;
      } catch (err) {
        if (attempt >= OFFER_PUBLISH_ATTEMPTS) throw err;
        // A work stream that vanished is created again before the next try.
        if (await this.forgetVanished(err).catch(() => false)) await this.ready();
        logger.debug({ workId: item.workId, attempt, err: String(err) }, "offer publish failed; retrying");
        await fabric.ready(this.#o.connectTimeoutMs);
        await new Promise((r) => setTimeout(r, 50 * attempt));
      }
    }
  }

  /** Stops every puller (they hand back offers fetched but not claimed). */
  async close(): Promise<void> {
    const pullers = await Promise.allSettled(this.#pullers.values());
    for (const p of pullers) if (p.status === "fulfilled") await p.value.close();
    this.#pullers.clear();
  }
}

/**
 * The bytes of an entry's offer message. With `itemJson` (the item's JSON, as just written to the ledger)
 * the item is not encoded a second time; the bytes are the same as encoding the whole message.
 */
export function offerMessageData(entry: LedgerEntry, itemJson?: string): Uint8Array {
  const { item, revision } = entry;
  if (itemJson === undefined) {
    const message: WorkOfferMessage = { workId: item.workId, revision, item };
    return encodeJson(message);
  }
  return Buffer.from(
    `{"workId":${JSON.stringify(item.workId)},"revision":${JSON.stringify(revision)},"item":${itemJson}}`,
    "utf8",
  );
}

/** `run()`, with a synchronous throw turned into a rejection. */
function started<T>(run: () => Promise<T>): Promise<T> {
  try {
    return run();
  } catch (err) {
    return Promise.reject(err);
  }
}
