import { createInbox, type Msg, type MsgHdrs, type NatsConnection } from "@nats-io/transport-node";

/** One message delivered by a pull request, with the delivery facts JetStream puts in its reply subject. */
export interface PulledMessage {
  data: Uint8Array;
  subject: string;
  /** Where to send `+ACK` / `-NAK` (empty for consumers without acks). */
  reply: string;
  streamSeq: number;
  /** When the stream stored it, in milliseconds since the epoch. */
  storedAtMs: number;
  /** How many times it has been delivered (1 on the first delivery). */
  deliveryCount: number;
  /** Messages still pending for the consumer after this one. */
  pending: number;
  headers: MsgHdrs | undefined;
}

/**
 * Parses a JetStream ack subject. Two layouts exist:
 * `$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>` and, on newer servers,
 * `$JS.ACK.<domain>.<account>.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>.<token>`.
 */
function parseAckSubject(
  reply: string,
): { deliveryCount: number; streamSeq: number; storedAtMs: number; pending: number } | undefined {
  const t = reply.split(".");
  if (t[0] !== "$JS" || t[1] !== "ACK") return undefined;
  const base = t.length === 9 ? 2 : t.length >= 11 ? 4 : -1;
  if (base < 0) return undefined;
  const delivered = Number(t[base + 2]);
  const sseq = Number(t[base + 3]);
  const tsNs = Number(t[base + 5]);
  const pending = Number(t[base + 6]);
  if (!Number.isFinite(delivered) || !Number.isFinite(sseq)) return undefined;
  return {
    deliveryCount: delivered,
    streamSeq: sseq,
    storedAtMs: Number.isFinite(tsNs) ? Math.floor(tsNs / 1e6) : 0,
    pending: Number.isFinite(pending) ? pending : 0,
  };
}

/**
 * Pulls up to `batch` messages from a pull consumer in one request and returns as soon as the server
 * has sent what it has (`no_wait`): one round trip however many messages come back. nats.js `fetch()`
 * waits at least a second when fewer than `batch` messages are available, which is why this exists.
 */
export function pullBatch(
  nc: NatsConnection,
  stream: string,
  consumer: string,
  batch: number,
  timeoutMs: number,
): Promise<PulledMessage[]> {
  // The connection's own inbox prefix: under the generated NATS permissions a user may subscribe only
  // below its own prefix, never to the shared `_INBOX.>`.
  const inbox = createInbox((nc as { options?: { inboxPrefix?: string } }).options?.inboxPrefix ?? "");
  const out: PulledMessage[] = [];
  return new Promise((resolve, reject) => {
    let settled = false;
    const finish = (err?: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      sub.unsubscribe();
      if (err) reject(err);
      else resolve(out);
    };
    const timer = setTimeout(() => {
      // The server answered with fewer messages than asked and no status: keep what came.
      if (out.length > 0) finish();
      else finish(new Error(`pull from ${stream}/${consumer} timed out after ${timeoutMs} ms`));
    }, timeoutMs);
    const sub = nc.subscribe(inbox, {
      callback: (err: Error | null, msg: Msg) => {
        if (err) return finish(err);
        const code = msg.headers?.code ?? 0;
        if (code !== 0 && msg.data.length === 0) {
          // 404 no messages, 408 request expired, 409 leadership change / limits: the pull is over.
          if (code === 404 || code === 408 || code === 409) return finish();
          if (code === 503) return finish(new Error(`consumer ${stream}/${consumer} does not exist`));
          return;
        }
        const info = parseAckSubject(msg.reply ?? "");
        if (!info) return;
        out.push({
          data: msg.data,
          subject: msg.subject,
          reply: msg.reply ?? "",
          headers: msg.headers,
          ...info,
        });
        if (out.length >= batch) finish();
      },
    });
    nc.publish(`$JS.API.CONSUMER.MSG.NEXT.${stream}.${consumer}`, JSON.stringify({ batch, no_wait: true }), {
      reply: inbox,
    });
  });
}
