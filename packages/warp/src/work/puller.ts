import {
  type Consumer,
  type ConsumerMessages,
  type JsMsg,
  type JsonCodec,
  jsonCodec,
  type Logger,
} from "@loominal/fabric";
import { type WorkOfferMessage, workOfferMessageSchema } from "@loominal/protocol";

const codec: JsonCodec<WorkOfferMessage> = jsonCodec(workOfferMessageSchema);

/** Decodes an offer message; `offer` is undefined (and `problem` says why) when it is invalid. */
export function decodeOffer(msg: JsMsg): { offer: WorkOfferMessage | undefined; problem?: string } {
  const r = codec.safeDecode(msg.data, msg.subject);
  return r.ok ? { offer: r.value } : { offer: undefined, problem: r.error.message };
}

/** nats.js refuses pull requests that expire sooner than this. */
const MIN_PULL_EXPIRES_MS = 1_000;
const MAX_PULL_EXPIRES_MS = 30_000;
/** A worker that claimed within this window keeps its buffer topped up between claims. */
const REFILL_WHILE_ACTIVE_MS = 5_000;

/** An offer message as delivered, decoded once. `offer` is undefined when the payload is invalid. */
export interface DeliveredOffer {
  msg: JsMsg;
  offer: WorkOfferMessage | undefined;
  problem?: string;
  receivedAt: number;
}

interface Waiter {
  resolve: (d: DeliveredOffer | undefined) => void;
  deadline: number;
  timer: NodeJS.Timeout;
}

export interface OfferPullerOptions {
  /**
   * Messages to hold ready for the next claims. 1 (the default) holds none beyond the claim being
   * made: whatever a pull brings after its claimer gave up is handed straight back (nak). Workers that
   * claim in a loop set more, so a claim rarely waits for a round trip.
   */
  prefetch: number;
  /** Buffered messages older than this are handed back, long before the server would redeliver them. */
  staleAfterMs: number;
  logger: Logger;
  /** Told of each failed pull (the consumer or its stream may be gone). */
  onPullError?: (err: unknown) => void;
}

/**
 * Pulls offers from one durable consumer for the claims of one process. One pull request is in flight
 * at a time. Arriving messages are gathered for the rest of the event-loop turn, so a claim takes the
 * highest-priority offer of everything it can see at once: what one pull brought together and what
 * waits in the prefetch buffer. Waiting claims are served in the order they started.
 */
export class OfferPuller {
  #consumer: Consumer;
  #opts: OfferPullerOptions;
  /** Highest priority first; offers of one priority in the order they arrived. */
  #buffer: DeliveredOffer[] = [];
  /** When the oldest buffered offer arrived, or earlier (takes do not move it on). */
  #oldestAt = 0;
  #waiters: Waiter[] = [];
  #pulling = false;
  #closed = false;
  #current: ConsumerMessages | undefined;
  #lastTakeAt = 0;
  #sweeper: NodeJS.Timeout | undefined;
  #flushScheduled = false;

  constructor(consumer: Consumer, opts: OfferPullerOptions) {
    this.#consumer = consumer;
    this.#opts = opts;
    if (opts.prefetch > 1) {
      this.#sweeper = setInterval(() => this.#returnStale(), Math.max(50, Math.floor(opts.staleAfterMs / 2)));
      this.#sweeper.unref();
    }
  }

  /** Whether this puller was closed (a claim waiting on it got undefined). */
  get closed(): boolean {
    return this.#closed;
  }

  /** The next offer, or undefined when none arrived within `timeoutMs`. */
  take(timeoutMs: number): Promise<DeliveredOffer | undefined> {
    this.#lastTakeAt = Date.now();
    this.#returnStale();
    const ready = this.#takeBuffered();
    if (ready || this.#closed) {
      this.#kick();
      return Promise.resolve(ready);
    }
    if (timeoutMs <= 0) return Promise.resolve(undefined);
    return new Promise((resolve) => {
      const waiter: Waiter = {
        resolve,
        deadline: Date.now() + timeoutMs,
        timer: setTimeout(() => {
          const i = this.#waiters.indexOf(waiter);
          if (i >= 0) this.#waiters.splice(i, 1);
          resolve(undefined);
        }, timeoutMs),
      };
      this.#waiters.push(waiter);
      this.#kick();
    });
  }

  /** Stops pulling and hands every buffered (unclaimed) message back to the queue. */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#sweeper) clearInterval(this.#sweeper);
    for (const w of this.#waiters.splice(0)) {
      clearTimeout(w.timer);
      w.resolve(undefined);
    }
    this.#current?.stop();
    for (const d of this.#buffer.splice(0)) d.msg.nak();
  }

  #takeBuffered(): DeliveredOffer | undefined {
    return this.#buffer.shift();
  }

  /** Buffers an offer behind those of its priority and higher (at the end, when all share one priority). */
  #insert(d: DeliveredOffer): void {
    const b = this.#buffer;
    if (b.length === 0 || d.receivedAt < this.#oldestAt) this.#oldestAt = d.receivedAt;
    const p = priorityOf(d);
    let i = b.length;
    while (i > 0) {
      const prev = b[i - 1];
      if (!prev || priorityOf(prev) >= p) break;
      i--;
    }
    if (i === b.length) b.push(d);
    else b.splice(i, 0, d);
  }

  #wantsMore(): boolean {
    if (this.#closed) return false;
    if (this.#waiters.length > 0) return true;
    return (
      this.#opts.prefetch > 1 &&
      this.#buffer.length < Math.ceil(this.#opts.prefetch / 2) &&
      Date.now() - this.#lastTakeAt < REFILL_WHILE_ACTIVE_MS
    );
  }

  #kick(): void {
    if (!this.#pulling && this.#wantsMore()) void this.#pullLoop();
  }

  async #pullLoop(): Promise<void> {
    this.#pulling = true;
    let failures = 0;
    try {
      while (this.#wantsMore()) {
        const want = Math.max(this.#waiters.length, this.#opts.prefetch) - this.#buffer.length;
        if (want <= 0) break;
        const now = Date.now();
        const longest = this.#waiters.reduce((m, w) => Math.max(m, w.deadline - now), 0);
        const expires = Math.min(MAX_PULL_EXPIRES_MS, Math.max(MIN_PULL_EXPIRES_MS, longest));
        try {
          const messages = await this.#consumer.fetch(fetchOptions(want, expires, this.#onMessage));
          this.#current = messages;
          const err = await messages.closed();
          if (err) throw err;
          failures = 0;
        } catch (err) {
          failures++;
          this.#opts.logger.debug({ err: String(err) }, "work pull failed; retrying");
          this.#opts.onPullError?.(err);
          await new Promise((r) => setTimeout(r, Math.min(2_000, 100 * 2 ** Math.min(failures, 5))));
        } finally {
          this.#current = undefined;
        }
        if (this.#opts.prefetch <= 1 && this.#waiters.length === 0) {
          // Nobody waits any more: what arrived late goes back at once for other claimers.
          for (const d of this.#buffer.splice(0)) d.msg.nak();
        }
      }
    } finally {
      this.#pulling = false;
    }
    if (this.#closed) for (const d of this.#buffer.splice(0)) d.msg.nak();
  }

  /** Called by the client for each message a fetch brings, as it arrives. */
  #onMessage = (msg: JsMsg): void => this.#deliver(msg);

  #deliver(msg: JsMsg): void {
    const r = codec.safeDecode(msg.data, msg.subject);
    const d: DeliveredOffer = r.ok
      ? { msg, offer: r.value, receivedAt: Date.now() }
      : { msg, offer: undefined, problem: r.error.message, receivedAt: Date.now() };
    if (this.#closed) {
      msg.nak();
      return;
    }
    this.#insert(d);
    if (this.#waiters.length > 0 && !this.#flushScheduled) {
      this.#flushScheduled = true;
      setImmediate(() => this.#flush());
    }
  }

  /** Hands the best buffered offers to waiting claims. */
  #flush(): void {
    this.#flushScheduled = false;
    while (this.#waiters.length > 0 && this.#buffer.length > 0) {
      const waiter = this.#waiters.shift();
      const d = this.#takeBuffered();
      if (!waiter || !d) break;
      clearTimeout(waiter.timer);
      waiter.resolve(d);
    }
  }

  /** Hands back buffered messages that waited too long, so their ack timers never run out unclaimed. */
  #returnStale(): void {
    const cutoff = Date.now() - this.#opts.staleAfterMs;
    // When the oldest offer is fresh, all are (the usual case, per take).
    if (this.#buffer.length === 0 || this.#oldestAt >= cutoff) return;
    const keep: DeliveredOffer[] = [];
    let oldest = Number.POSITIVE_INFINITY;
    for (const d of this.#buffer) {
      if (d.receivedAt < cutoff) d.msg.nak();
      else {
        keep.push(d);
        if (d.receivedAt < oldest) oldest = d.receivedAt;
      }
    }
    this.#buffer = keep;
    this.#oldestAt = oldest;
  }
}

/**
 * A fetch whose messages go to `callback` as they arrive, not through an async iterator (a promise and a
 * microtask less per message). nats.js takes `callback` for fetch as it does for consume, though its
 * FetchOptions type does not list it; when the fetch ends, `closed()` resolves (with the error, if any).
 */
function fetchOptions(maxMessages: number, expires: number, callback: (msg: JsMsg) => void): FetchOptions {
  const options = { max_messages: maxMessages, expires, callback };
  return options;
}

type FetchOptions = NonNullable<Parameters<Consumer["fetch"]>[0]>;

function priorityOf(d: DeliveredOffer): number {
  // An undecodable message sorts first so it is dealt with (terminated) at once.
  return d.offer ? d.offer.item.priority : 11;
}
