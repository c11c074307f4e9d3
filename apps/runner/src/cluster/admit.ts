import { consumers, streams } from "@loominal/protocol";
import { createInbox, type Msg, type NatsConnection, type Subscription } from "@nats-io/transport-node";

/** How long the server keeps a pull open waiting for requests or free slots (ms). */
const PULL_EXPIRES_MS = 300;

/**
 * How long past its expiry a pull whose end the server has not reported counts as ended (ms). nats-server
 * 2.9 does not always send the 408 that ends an expired pull (seen under load on pulls that had received
 * some requests), and waiting for it held this replica's admissions for seconds while requests sat in the
 * stream.
 */
const PULL_GRACE_MS = 100;

/** A run request delivered to this replica; settle it with exactly one of ack, nak or term. */
export interface AdmitMsg {
  data: Uint8Array;
  /** The ack subject (`$JS.ACK.…`): anyone may acknowledge through it, the reaper included. */
  reply: string;
  ack(): void;
  nak(delayMs?: number): void;
  /** Extends the ack deadline while the run goes on. */
  working(): void;
  term(): void;
}

interface OpenPull {
  batch: number;
  received: number;
  finish(err?: Error): void;
}

/**
 * Pulls run requests from the admission consumer for one replica. Every pull is answered on one inbox
 * subscription that lives as long as the puller (`<inbox>.<n>` per pull), so a request the server delivers
 * after this side has stopped waiting for that pull is still handed over — never dropped into an inbox
 * nobody listens on, where it would hold a global slot until the ack wait ran out. The server never hands
 * out more unacknowledged requests than the consumer's max_ack_pending (the cluster cap) across replicas.
 */
export class AdmissionPuller {
  #nc: NatsConnection;
  #onMessage: (m: AdmitMsg) => void;
  #expiresMs: number;
  #waitMs: number;
  #inbox = createInbox();
  #sub: Subscription;
  #next = 0;
  /** Pulls not yet ended, by their inbox subject, oldest first. */
  #open = new Map<string, OpenPull>();
  #subject = `$JS.API.CONSUMER.MSG.NEXT.${streams.runnerAdmit()}.${consumers.runnerAdmit()}`;

  constructor(
    nc: NatsConnection,
    onMessage: (m: AdmitMsg) => void,
    options: { expiresMs?: number; waitMs?: number; subject?: string } = {},
  ) {
    this.#nc = nc;
    this.#onMessage = onMessage;
    this.#expiresMs = options.expiresMs ?? PULL_EXPIRES_MS;
    // How long this side waits for the server to end a pull (a test makes it shorter than the expiry).
    this.#waitMs = options.waitMs ?? this.#expiresMs + PULL_GRACE_MS;
    if (options.subject) this.#subject = options.subject;
    this.#sub = nc.subscribe(`${this.#inbox}.*`, {
      callback: (err, msg) => {
        if (err) {
          for (const p of [...this.#open.values()]) p.finish(err);
          return;
        }
        this.#deliver(msg);
      },
    });
  }

  /** Pulls open at the server as far as this side knows. */
  get open(): number {
    return this.#open.size;
  }

  /**
   * Asks for up to `batch` run requests; each goes to `onMessage` as it arrives. Resolves with how many came
   * for this pull once the server has ended it (408 expired, 404 nothing waiting, 409 max ack pending),
   * the batch is full, or the expiry and a grace have passed without the server's word.
   */
  pull(batch: number): Promise<number> {
    const reply = `${this.#inbox}.${++this.#next}`;
    return new Promise((resolve, reject) => {
      const p: OpenPull = {
        batch,
        received: 0,
        finish: (err) => {
          if (this.#open.get(reply) !== p) return;
          this.#open.delete(reply);
          clearTimeout(timer);
          if (err && p.received === 0) reject(err);
          else resolve(p.received);
        },
      };
      const timer = setTimeout(() => p.finish(), this.#waitMs);
      this.#open.set(reply, p);
      try {
        this.#nc.publish(this.#subject, JSON.stringify({ batch, expires: this.#expiresMs * 1_000_000 }), {
          reply,
        });
      } catch (err) {
        p.finish(err as Error);
      }
    });
  }

  #latest(): OpenPull | undefined {
    let last: OpenPull | undefined;
    for (const p of this.#open.values()) last = p;
    return last;
  }

  /**
   * Stops listening. Called once no pull is wanted any more: waits until the server can no longer deliver
   * on the pulls this side asked for (their expiry and the grace), so none is left without a listener.
   */
  async close(): Promise<void> {
    await new Promise((r) => setTimeout(r, this.#open.size > 0 ? this.#expiresMs + PULL_GRACE_MS : 0));
    for (const p of [...this.#open.values()]) p.finish();
    this.#sub.unsubscribe();
  }

  #deliver(msg: Msg): void {
    const code = msg.headers?.code ?? 0;
    if (code !== 0 && msg.data.length === 0) {
      // 404 nothing waiting, 408 expired, 409 max ack pending reached: this pull is over. A status comes on
      // the pull's own inbox subject (a run request comes under its stream subject).
      const p = this.#open.get(msg.subject);
      if (code === 503) {
        p?.finish(new Error(`consumer ${streams.runnerAdmit()}/${consumers.runnerAdmit()} does not exist`));
      } else p?.finish();
      return;
    }
    const reply = msg.reply ?? "";
    if (!reply.startsWith("$JS.ACK.")) return;
    this.#onMessage(admitMsg(this.#nc, msg.data, reply));
    // Counted for the newest open pull: a late delivery on an older one only ends it a little early.
    const p = this.#latest();
    if (p && ++p.received >= p.batch) p.finish();
  }
}

function admitMsg(nc: NatsConnection, data: Uint8Array, reply: string): AdmitMsg {
  return {
    data,
    reply,
    ack: () => nc.publish(reply, "+ACK"),
    nak: (delayMs) =>
      nc.publish(reply, delayMs ? `-NAK ${JSON.stringify({ delay: delayMs * 1_000_000 })}` : "-NAK"),
    working: () => nc.publish(reply, "+WPI"),
    term: () => nc.publish(reply, "+TERM"),
  };
}
