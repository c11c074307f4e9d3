import { AckPolicy, DeliverPolicy } from "@nats-io/jetstream";
import { createInbox, type Msg, type MsgHdrs } from "@nats-io/transport-node";
import type { Fabric } from "./connection.js";

const NS_PER_MS = 1_000_000;

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

/** What one pull returned: the messages, and how many arrived without a reply subject that could be read. */
export interface PullResult {
  messages: PulledMessage[];
  /**
   * Messages whose reply subject is not a JetStream ack subject, so their stream sequence is unknown.
   * Each is logged (subject, reply) and counted in `pullStats`; callers that track sequences must not
   * move past a pull that had any.
   */
  unparsed: number;
}

interface Stats {
  unparsed: number;
}
const stats = new WeakMap<Fabric, Stats>();

/** Messages this connection pulled and could not place (their reply subject did not parse), since it opened. */
export function pullStats(fabric: Fabric): Readonly<Stats> {
  return stats.get(fabric) ?? { unparsed: 0 };
}

/**
 * Parses a JetStream ack subject. Two layouts exist:
 * `$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>` and, on newer servers or with a
 * JetStream domain, `$JS.ACK.<domain>.<account>.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>.<token>`.
 */
export function parseAckSubject(
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
  if (!Number.isSafeInteger(delivered) || !Number.isSafeInteger(sseq) || sseq < 1) return undefined;
  return {
    deliveryCount: delivered,
    streamSeq: sseq,
    storedAtMs: Number.isFinite(tsNs) ? Math.floor(tsNs / NS_PER_MS) : 0,
    pending: Number.isFinite(pending) ? pending : 0,
  };
}

/**
 * Pulls up to `batch` messages from a pull consumer in one request and returns as soon as the server
 * has sent what it has (`no_wait`): one round trip however many messages come back. nats.js `fetch()`
 * waits at least a second when fewer than `batch` messages are available, which is why this exists.
 * The request goes to the connection's JetStream API prefix (`fabric.apiPrefix`: domains and imported
 * APIs included).
 */
export function pull(
  fabric: Fabric,
  stream: string,
  consumer: string,
  batch: number,
  timeoutMs: number,
): Promise<PullResult> {
  const nc = fabric.nc;
  const inbox = createInbox(fabric.inboxPrefix);
  const out: PulledMessage[] = [];
  let unparsed = 0;
  return new Promise((resolve, reject) => {
    let settled = false;
    const finish = (err?: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      sub.unsubscribe();
      if (err) reject(err);
      else resolve({ messages: out, unparsed });
    };
    const timer = setTimeout(() => {
      // The server answered with fewer messages than asked and no status: keep what came.
      if (out.length + unparsed > 0) finish();
      else finish(new PullTimeoutError(`pull from ${stream}/${consumer} timed out after ${timeoutMs} ms`));
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
        if (!info) {
          unparsed++;
          const s = stats.get(fabric) ?? { unparsed: 0 };
          s.unparsed++;
          stats.set(fabric, s);
          fabric.logger.warn(
            { stream, consumer, subject: msg.subject, reply: msg.reply ?? "" },
            "pulled a message whose reply subject is not a JetStream ack subject; its sequence is unknown",
          );
        } else {
          out.push({
            data: msg.data,
            subject: msg.subject,
            reply: msg.reply ?? "",
            headers: msg.headers,
            ...info,
          });
        }
        if (out.length + unparsed >= batch) finish();
      },
    });
    nc.publish(
      `${fabric.apiPrefix}.CONSUMER.MSG.NEXT.${stream}.${consumer}`,
      JSON.stringify({ batch, no_wait: true }),
      { reply: inbox },
    );
  });
}

/** Like `pull`, for callers that only need the messages (unparsed ones are still logged and counted). */
export async function pullBatch(
  fabric: Fabric,
  stream: string,
  consumer: string,
  batch: number,
  timeoutMs: number,
): Promise<PulledMessage[]> {
  return (await pull(fabric, stream, consumer, batch, timeoutMs)).messages;
}

/** Where a read consumer starts. */
export type ReadStart = { from: "sequence"; seq: number } | { from: "lastPerSubject" } | { from: "all" };

export interface ReadConsumerOptions {
  /** Only messages on this subject (wildcards allowed); all of the stream's when absent. */
  filterSubject?: string;
  start: ReadStart;
  /** The server removes the consumer after this long unused, should its owner forget to (ms). */
  idleMs: number;
}

/** A temporary consumer for reading: no acks, in memory, one replica; the server drops it when idle. */
export interface ReadConsumer {
  name: string;
  /** Sequence of the first message it will deliver (the server moves a start outside the stream inside). */
  firstSeq: number;
  /** Messages it will deliver. */
  pending: number;
}

let readerCounter = 0;

/** Creates a read consumer on `stream` (see ReadConsumer). */
export async function createReadConsumer(
  fabric: Fabric,
  stream: string,
  options: ReadConsumerOptions,
): Promise<ReadConsumer> {
  const jsm = await fabric.jsm();
  const name = `read_${process.pid.toString(36)}_${Date.now().toString(36)}_${(readerCounter++).toString(36)}`;
  const start = options.start;
  const ci = await jsm.consumers.add(stream, {
    name,
    ack_policy: AckPolicy.None,
    ...(start.from === "sequence"
      ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: start.seq }
      : start.from === "lastPerSubject"
        ? { deliver_policy: DeliverPolicy.LastPerSubject }
        : { deliver_policy: DeliverPolicy.All }),
    ...(options.filterSubject !== undefined ? { filter_subject: options.filterSubject } : {}),
    inactive_threshold: options.idleMs * NS_PER_MS,
    mem_storage: true,
    num_replicas: 1,
  });
  return { name, firstSeq: ci.delivered.stream_seq + 1, pending: ci.num_pending };
}

/** Deletes a consumer without waiting for the answer (the server drops it when idle anyway). */
export function dropConsumer(fabric: Fabric, stream: string, name: string): void {
  try {
    fabric.nc.publish(`${fabric.apiPrefix}.CONSUMER.DELETE.${stream}.${name}`);
  } catch {
    // Not connected: the consumer's inactive threshold removes it.
  }
}

export interface ReadAllOptions extends ReadConsumerOptions {
  /** Messages one pull request asks for (default 1,000). */
  batch?: number;
  /** How long one pull request may take (default 5,000 ms). */
  pullTimeoutMs?: number;
}

/** A pull request nothing answered within its timeout. */
export class PullTimeoutError extends Error {
  override name = "PullTimeoutError";
}

/** A read that must start over: its consumer stopped answering pulls while it still had messages. */
class StalledRead extends Error {}

/**
 * Reads every message a temporary consumer delivers (what matched when it was created), a batch per
 * request, then deletes the consumer: "create a consumer, pull until nothing is pending, delete it".
 *
 * On nats-server 2.9 a no-wait pull can go unanswered when the message the consumer would deliver next
 * was removed meanwhile (a KV key rewritten in a bucket keeping one value per key): the read then starts
 * over with a new consumer, up to 3 times, instead of failing after the pull timeout.
 */
export async function readAll(fabric: Fabric, stream: string, options: ReadAllOptions): Promise<PullResult> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await readAllOnce(fabric, stream, options);
    } catch (err) {
      if (!(err instanceof StalledRead) || attempt >= 3) throw err instanceof StalledRead ? err.cause : err;
    }
  }
}

async function readAllOnce(fabric: Fabric, stream: string, options: ReadAllOptions): Promise<PullResult> {
  const consumer = await createReadConsumer(fabric, stream, options);
  const batchSize = options.batch ?? 1_000;
  const messages: PulledMessage[] = [];
  let unparsed = 0;
  const snapshot = options.start.from === "lastPerSubject";
  try {
    let remaining = consumer.pending;
    while (remaining > 0) {
      let r: PullResult;
      try {
        r = await pull(
          fabric,
          stream,
          consumer.name,
          Math.min(remaining, batchSize),
          options.pullTimeoutMs ?? 5_000,
        );
      } catch (err) {
        throw err instanceof PullTimeoutError && fabric.isConnected
          ? new StalledRead("stalled pull", { cause: err })
          : err;
      }
      unparsed += r.unparsed;
      messages.push(...r.messages);
      if (r.messages.length === 0) break;
      const last = r.messages[r.messages.length - 1];
      remaining = last ? last.pending : 0;
      // The messages pending when the consumer was made are the newest of each subject; what comes after
      // them was written during the read, so a snapshot of the subjects stops there.
      if (snapshot) remaining = Math.min(remaining, consumer.pending - messages.length);
    }
  } finally {
    dropConsumer(fabric, stream, consumer.name);
  }
  return { messages: snapshot ? latestPerSubject(messages) : messages, unparsed };
}

/**
 * Keeps the newest message of each subject, in stream order. A `lastPerSubject` consumer starts with one
 * message per subject but then goes on delivering what is written while it is read: a key written between
 * two pulls (an agent's heartbeat during a slow registry scan) came back twice or three times. `readAll`
 * stops at the messages pending when its consumer was made, and keeps one per subject should any repeat.
 */
function latestPerSubject(messages: PulledMessage[]): PulledMessage[] {
  const newest = new Map<string, PulledMessage>();
  for (const m of messages) {
    const seen = newest.get(m.subject);
    if (!seen || m.streamSeq > seen.streamSeq) newest.set(m.subject, m);
  }
  if (newest.size === messages.length) return messages;
  return [...newest.values()].sort((a, b) => a.streamSeq - b.streamSeq);
}
