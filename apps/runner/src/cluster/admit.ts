import { consumers, streams } from "@loominal/protocol";
import { createInbox, type Msg, type NatsConnection } from "@nats-io/transport-node";

/** How long the server keeps a pull open waiting for requests or free slots (ms). */
const PULL_EXPIRES_MS = 300;

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

/**
 * Asks the admission consumer for up to `batch` run requests, hands each to `onMessage` as it arrives,
 * and resolves with how many came once the server has ended the pull. The server never hands out more unacknowledged
 * requests than the consumer's max_ack_pending (the cluster cap) across all replicas.
 */
export function pullAdmissions(
  nc: NatsConnection,
  batch: number,
  onMessage: (m: AdmitMsg) => void,
  expiresMs = PULL_EXPIRES_MS,
): Promise<number> {
  // The server ends the pull itself (408) after expiresMs; this side listens longer than that, so nothing
  // is ever delivered to an inbox nobody listens on any more, which would hold a global slot until the
  // ack wait ran out. (A no_wait pull is not used: with every slot taken, nats-server 2.9 keeps it
  // waiting past any client timeout.)
  const timeoutMs = expiresMs + 5_000;
  const stream = streams.runnerAdmit();
  const consumer = consumers.runnerAdmit();
  const inbox = createInbox();
  let received = 0;
  return new Promise((resolve, reject) => {
    let settled = false;
    const finish = (err?: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      sub.unsubscribe();
      if (err && received === 0) reject(err);
      else resolve(received);
    };
    const timer = setTimeout(() => finish(new Error("the admission consumer did not answer")), timeoutMs);
    const sub = nc.subscribe(inbox, {
      callback: (err: Error | null, msg: Msg) => {
        if (err) return finish(err);
        const code = msg.headers?.code ?? 0;
        if (code !== 0 && msg.data.length === 0) {
          // 404 nothing waiting, 408 expired, 409 max ack pending reached: this pull is over.
          if (code === 503) return finish(new Error(`consumer ${stream}/${consumer} does not exist`));
          return finish();
        }
        const reply = msg.reply ?? "";
        if (!reply.startsWith("$JS.ACK.")) return;
        received++;
        onMessage(admitMsg(nc, msg.data, reply));
        if (received >= batch) finish();
      },
    });
    nc.publish(
      `$JS.API.CONSUMER.MSG.NEXT.${stream}.${consumer}`,
      JSON.stringify({ batch, expires: expiresMs * 1_000_000 }),
      {
        reply: inbox,
      },
    );
  });
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
