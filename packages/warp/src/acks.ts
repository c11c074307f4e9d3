import {
  type BucketSpec,
  casUpdate,
  ensureBucket,
  type Fabric,
  forgetRevision,
  jsonCodec,
  type KV,
  type Logger,
  readAll,
} from "@loominal/fabric";
import {
  buckets,
  type DirectMessage,
  keys,
  LoominalError,
  MESSAGE_ID_RE,
  type MessageAck,
  messageAckSchema,
} from "@loominal/protocol";
import type { Identity } from "./identity.js";

const codec = jsonCodec(messageAckSchema);
const EXCERPT_CHARS = 200;
const PULL_TIMEOUT_MS = 2_000;

export const ACK_STATUS_DEFAULT_LIMIT = 20;
export const ACK_STATUS_MAX_LIMIT = 100;

/** The acknowledgement bucket of a project: one record per message, gone with the message's inbox age. */
export function messageAcksBucketSpec(projectId: string, inboxMaxAgeMs: number): BucketSpec {
  return { name: buckets.messageAcks(projectId), history: 1, ttlMs: inboxMaxAgeMs };
}

/** An acknowledgement record as its sender sees it. */
export interface AckStatus extends MessageAck {
  acknowledged: boolean;
}

export interface AckStatusPage {
  /** Newest first. */
  messages: AckStatus[];
  count: number;
  /** Of all your recorded messages (not only this page), how many still wait for their acknowledgement. */
  unacknowledged: number;
}

export interface MessageAcksOptions {
  fabric: Fabric;
  identity: Identity;
  inboxMaxAgeMs: number;
  logger: Logger;
}

/**
 * Acknowledgements of direct messages sent with `ackRequired`: KV `loom-acks-<p>`, key
 * `<senderId>.<messageId>`. The sender writes the record (pending) before publishing the message; only
 * the recipient may mark it acknowledged; only the sender lists its own.
 */
export class MessageAcks {
  #fabric: Fabric;
  #identity: Identity;
  #spec: BucketSpec;
  #logger: Logger;

  constructor(options: MessageAcksOptions) {
    this.#fabric = options.fabric;
    this.#identity = options.identity;
    this.#spec = messageAcksBucketSpec(options.identity.projectId, options.inboxMaxAgeMs);
    this.#logger = options.logger;
  }

  #kv(): Promise<KV> {
    return ensureBucket(this.#fabric, this.#spec);
  }

  /** Records a message about to be sent as waiting for its acknowledgement. */
  async expect(message: DirectMessage, toHandle: string): Promise<void> {
    const messageId = message.messageId;
    if (messageId === undefined) throw new Error("a message that needs an acknowledgement needs a messageId");
    const record: MessageAck = {
      messageId,
      projectId: message.projectId,
      from: message.from,
      to: message.to,
      toHandle,
      ...(message.threadId !== undefined ? { threadId: message.threadId } : {}),
      excerpt: excerpt(message.message),
      sentAt: message.sentAt,
    };
    const kv = await this.#kv();
    await kv.create(keys.messageAck(message.from, messageId), codec.encode(record));
  }

  /** Removes the record of a message that could not be sent. */
  async forget(messageId: string): Promise<void> {
    const kv = await this.#kv();
    const key = keys.messageAck(this.#identity.agentId, messageId);
    await kv.purge(key);
    forgetRevision(kv, key);
  }

  /**
   * Acknowledges a message addressed to this agent. Acknowledging twice answers with the first time.
   * `not_found` when no acknowledgement is expected for that id from this agent.
   */
  async acknowledge(messageId: string): Promise<AckStatus> {
    if (typeof messageId !== "string" || !MESSAGE_ID_RE.test(messageId))
      throw new LoominalError(
        "invalid_input",
        "messageId must be 32 lower-case hex characters, as warp_messages_read_direct returned it",
      );
    const me = this.#identity.agentId;
    const found = (await this.#scan(`*.${messageId}`)).find((r) => r.value.messageId === messageId);
    if (!found || found.value.to !== me || found.value.projectId !== this.#identity.projectId)
      throw new LoominalError(
        "not_found",
        `no acknowledgement is expected from you for message ${messageId}: only messages sent to you with ackRequired can be acknowledged`,
        { details: { messageId } },
      );
    const kv = await this.#kv();
    const r = await casUpdate(kv, found.key, codec, (cur) =>
      cur && cur.ackedAt === undefined ? { ...cur, ackedAt: new Date().toISOString() } : undefined,
    );
    const value = r.value ?? found.value;
    return { ...value, acknowledged: value.ackedAt !== undefined };
  }

  /** This agent's messages sent with `ackRequired`, newest first: all, only those still pending, or one. */
  async sent(
    options: { messageId?: string; pendingOnly?: boolean; limit?: number } = {},
  ): Promise<AckStatusPage> {
    const limit = options.limit ?? ACK_STATUS_DEFAULT_LIMIT;
    if (!Number.isInteger(limit) || limit < 1 || limit > ACK_STATUS_MAX_LIMIT)
      throw new LoominalError("invalid_input", `limit must be an integer from 1 to ${ACK_STATUS_MAX_LIMIT}`);
    const me = this.#identity.agentId;
    if (options.messageId !== undefined) {
      if (!MESSAGE_ID_RE.test(options.messageId))
        throw new LoominalError("invalid_input", "messageId must be 32 lower-case hex characters");
      const kv = await this.#kv();
      const e = await kv.get(keys.messageAck(me, options.messageId));
      const r = e?.operation === "PUT" ? codec.safeDecode(e.value, e.key) : undefined;
      if (!r?.ok)
        throw new LoominalError(
          "not_found",
          `you sent no message ${options.messageId} with ackRequired (or it is older than the inbox keeps messages)`,
        );
      const one = { ...r.value, acknowledged: r.value.ackedAt !== undefined };
      return { messages: [one], count: 1, unacknowledged: one.acknowledged ? 0 : 1 };
    }
    const all = (await this.#scan(`${me}.>`))
      .map((r) => ({ ...r.value, acknowledged: r.value.ackedAt !== undefined }))
      .filter((r) => r.from === me)
      .sort((a, b) => (a.sentAt < b.sentAt ? 1 : a.sentAt > b.sentAt ? -1 : 0));
    const unacknowledged = all.filter((r) => !r.acknowledged).length;
    const chosen = (options.pendingOnly === false ? all : all.filter((r) => !r.acknowledged)).slice(0, limit);
    return { messages: chosen, count: chosen.length, unacknowledged };
  }

  async #scan(keyFilter: string): Promise<Array<{ key: string; value: MessageAck }>> {
    await this.#kv();
    const prefix = `$KV.${this.#spec.name}.`;
    const pulled = await readAll(this.#fabric, `KV_${this.#spec.name}`, {
      filterSubject: `${prefix}${keyFilter}`,
      // One value per key (history 1), so all of the stream is the latest of each key.
      start: { from: "all" },
      idleMs: 10_000,
      pullTimeoutMs: PULL_TIMEOUT_MS,
    });
    // A key rewritten while the read ran arrives twice: keep its latest message.
    const latest = new Map<string, (typeof pulled.messages)[number]>();
    for (const m of pulled.messages) latest.set(m.subject, m);
    const out: Array<{ key: string; value: MessageAck }> = [];
    for (const m of latest.values()) {
      const op = m.headers?.get("KV-Operation");
      if (op === "DEL" || op === "PURGE") continue;
      const key = m.subject.slice(prefix.length);
      const r = codec.safeDecode(m.data, `${this.#spec.name}/${key}`);
      if (!r.ok) {
        this.#logger.warn({ err: r.error.message }, "skipping an invalid acknowledgement record");
        continue;
      }
      // Only a record filed under its own sender and id is believed.
      if (key !== keys.messageAck(r.value.from, r.value.messageId)) continue;
      out.push({ key, value: r.value });
    }
    return out;
  }
}

function excerpt(text: string): string {
  const flat = text.replace(/\s+/g, " ").trim();
  return flat.length > EXCERPT_CHARS ? `${flat.slice(0, EXCERPT_CHARS - 1)}…` : flat;
}
