import {
  type BucketSpec,
  ConfigMismatchError,
  ensureBucket,
  ensureStream,
  type Fabric,
  isCasConflict,
  jsonCodec,
  KeyedSerialQueue,
  type KV,
  type Logger,
  NatsPermissionError,
  readAll,
  type StreamSpec,
  streamInfo,
  streamVanished,
} from "@loominal/fabric";
import {
  assertAgentId,
  assertNameToken,
  buckets,
  DEFAULT_MESSAGE_TYPE,
  type DirectMessage,
  directMessageSchema,
  type InboxLedger,
  inboxLedgerSchema,
  keys,
  LoominalError,
  MESSAGE_MAX_CHARS,
  METADATA_MAX_CHARS,
  type MessagePriority,
  randomId,
  streams,
  subjects,
  type WarpConfig,
} from "@loominal/protocol";
import type { MessageAcks } from "./acks.js";
import type { Identity } from "./identity.js";
import type { Registry } from "./registry.js";
import { checkThreadOptions, type ThreadOptions, threadView } from "./threads.js";

const codec = jsonCodec(directMessageSchema);
const ledgerCodec = jsonCodec(inboxLedgerSchema);
const encoder = new TextEncoder();
const PULL_TIMEOUT_MS = 5_000;
/** Messages one pull request asks for; an inbox read repeats it until it has seen the whole subject. */
const PULL_BATCH = 1_000;
/** A read consumer the process forgot to delete is removed by the server after this long. */
const READ_CONSUMER_IDLE_MS = 30_000;
const LEDGER_ATTEMPTS = 16;

/**
 * The ledger bucket: no TTL (a ledger that expired while its agent still had read messages in the
 * stream would hand them out again), one value per key.
 */
export const INBOX_LEDGER_BUCKET: BucketSpec = { name: buckets.inboxLedger(), history: 1 };

export const DIRECT_READ_DEFAULT_LIMIT = 20;
export const DIRECT_READ_MAX_LIMIT = 100;

export type InboxSettings = WarpConfig["inbox"];

export interface SentDirectMessage {
  messageId: string;
  /** The thread it was sent in (its own messageId when it starts one). */
  threadId: string;
  ackRequired: boolean;
  to: string;
  /** The recipient's project (whose inbox stream holds the message). */
  projectId: string;
  seq: number;
  messageType: string;
  priority: MessagePriority;
  sentAt: string;
}

export interface ReadDirectMessage {
  seq: number;
  from: string;
  fromHandle: string;
  messageType: string;
  message: string;
  metadata?: Record<string, unknown>;
  /** Present when the sender marked it urgent. */
  priority?: MessagePriority;
  sentAt: string;
  messageId?: string;
  threadId?: string;
  replyTo?: string;
  ackRequired?: boolean;
}

export interface DirectReadResult {
  /** Oldest first; each is returned by exactly one read. */
  messages: ReadDirectMessage[];
  /** Messages still waiting in the inbox after this read (those the filter or limit left). */
  remaining: number;
  /** Stored records that failed validation; they are removed so they cannot block the inbox. */
  skippedInvalid: number;
  /**
   * Messages an earlier read saw waiting that the inbox's retention removed unread since then (the
   * oldest go first once an agent has `maxMessagesPerAgent` waiting, and any older than `maxAgeMs`).
   * Messages that arrived and were removed between two reads are not seen, so cannot be counted: `full`
   * says when that can happen.
   */
  dropped: number;
  /** The inbox holds `maxMessagesPerAgent` messages: the next one sent pushes out the oldest. Read sooner. */
  full: boolean;
}

export interface DirectReadFilter {
  limit?: number;
  messageType?: string;
  fromAgentId?: string;
  /** Only messages of this thread. */
  threadId?: string;
}

export interface InboxOptions {
  fabric: Fabric;
  identity: Identity;
  registry: Registry;
  settings: InboxSettings;
  logger: Logger;
  acks: MessageAcks;
}

/**
 * Direct messages between agents: stream `loom_<p>_inbox` of the recipient's project, subject
 * `loom.<p>.inbox.<agentId>`, and a read ledger per agent (KV `loom-inbox-ledger`, key `<p>.<agentId>`).
 *
 * Nothing consumes an inbox in the background, and reading never changes the stream. A read pulls every
 * message of the agent's subject above its ledger floor in one request (an ephemeral consumer), picks the
 * unread ones that match the filter, and records exactly those in the ledger by compare-and-set before
 * returning them. So a filtered read never consumes what it did not return, and a message recorded once
 * can never be returned again, whether readers race, crash or NATS restarts between reads.
 */
export class Inbox {
  #fabric: Fabric;
  #identity: Identity;
  #registry: Registry;
  #settings: InboxSettings;
  #logger: Logger;
  #acks: MessageAcks;
  /** Inbox streams of other projects this process has sent to. */
  #otherInboxes = new Map<string, Promise<void>>();
  /** The ledger as this process last wrote or read it; a stale one costs one conflict and a re-read. */
  #ledger: { revision: number; value: InboxLedger } | undefined;
  /** Reads of this inbox run one at a time. */
  #reads = new KeyedSerialQueue<"read">();

  constructor(options: InboxOptions) {
    this.#fabric = options.fabric;
    this.#identity = options.identity;
    this.#registry = options.registry;
    this.#settings = options.settings;
    this.#logger = options.logger;
    this.#acks = options.acks;
  }

  get stream(): string {
    return streams.inbox(this.#identity.projectId);
  }

  /** Creates the project's inbox stream if needed (or updates its limits). Fabric remembers it per connection. */
  ensure(): Promise<unknown> {
    return ensureStream(this.#fabric, inboxStreamSpec(this.#identity.projectId, this.#settings), "update");
  }

  /**
   * Sends a direct message to a registered agent the sender may see: one of this project, or one of
   * another project whose registration scope allows it (`public`, or `personal` of the same user; see
   * `Registry.getInfo`). The message goes to the recipient's inbox in the recipient's project.
   */
  async send(
    toAgentId: string,
    message: string,
    options: {
      messageType?: string;
      metadata?: Record<string, unknown>;
      projectId?: string;
      /** `urgent`: the recipient's next `loominal hook` run shows it before anything else. */
      priority?: MessagePriority;
      /** The recipient must acknowledge it (`warp_messages_ack`); until then the sender sees it pending. */
      ackRequired?: boolean;
    } & ThreadOptions = {},
  ): Promise<SentDirectMessage> {
    assertAgentId(toAgentId);
    const thread = checkThreadOptions(options);
    const messageType = assertNameToken(options.messageType ?? DEFAULT_MESSAGE_TYPE, "name");
    if (typeof message !== "string" || message.length === 0 || message.length > MESSAGE_MAX_CHARS)
      throw new LoominalError("invalid_input", `message must be 1–${MESSAGE_MAX_CHARS} characters`);
    if (options.metadata !== undefined) {
      const size = JSON.stringify(options.metadata).length;
      if (size > METADATA_MAX_CHARS)
        throw new LoominalError(
          "invalid_input",
          `metadata is ${size} characters of JSON; the limit is ${METADATA_MAX_CHARS}`,
        );
    }
    // Refuses unknown recipients (and those whose scope hides them) instead of filling a dead inbox.
    const recipient = await this.#registry.getInfo(
      toAgentId,
      options.projectId !== undefined ? { projectId: options.projectId } : {},
    );
    const projectId = recipient.projectId;
    const id = this.#identity;
    const ackRequired = options.ackRequired === true;
    if (ackRequired && projectId !== id.projectId)
      throw new LoominalError(
        "invalid_input",
        `ackRequired works within your project; ${toAgentId} is in project ${projectId}. Send without ackRequired and ask for a reply instead`,
      );
    const messageId = randomId();
    const record: DirectMessage = {
      ...(options.priority === "urgent" ? { priority: "urgent" as const } : {}),
      from: id.agentId,
      fromHandle: id.handle,
      to: toAgentId,
      // The project of the inbox it is stored in, which its reader checks.
      projectId,
      messageType,
      message,
      ...(options.metadata !== undefined ? { metadata: options.metadata } : {}),
      sentAt: new Date().toISOString(),
      messageId,
      ...thread,
      ...(ackRequired ? { ackRequired: true } : {}),
    };
    // The pending acknowledgement exists before the message, so the recipient can always acknowledge it.
    if (ackRequired) await this.#acks.expect(record, recipient.handle);
    const publish = async () => {
      await this.#ensureInboxOf(projectId);
      return this.#fabric.js.publish(
        subjects.inbox(projectId, toAgentId),
        encoder.encode(JSON.stringify(record)),
      );
    };
    let ack: Awaited<ReturnType<typeof publish>>;
    try {
      try {
        ack = await publish();
      } catch (err) {
        // The inbox stream vanished (deleted, or a server that lost its store): create it again, once.
        if (!(await streamVanished(this.#fabric, streams.inbox(projectId), err))) throw err;
        this.#otherInboxes.delete(projectId);
        ack = await publish();
      }
    } catch (err) {
      if (ackRequired) await this.#acks.forget(messageId).catch(() => undefined);
      throw err;
    }
    return {
      messageId,
      threadId: thread.threadId ?? messageId,
      ackRequired,
      to: toAgentId,
      projectId,
      seq: ack.seq,
      messageType,
      priority: options.priority ?? "normal",
      sentAt: record.sentAt,
    };
  }

  /**
   * The inbox stream of the recipient's project. Another project's stream is created (with this
   * process's inbox limits) only when it does not exist yet, and never changed: its own agents apply
   * their project's limits when they use it.
   */
  #ensureInboxOf(projectId: string): Promise<unknown> {
    if (projectId === this.#identity.projectId) return this.ensure();
    let p = this.#otherInboxes.get(projectId);
    if (!p) {
      const spec = inboxStreamSpec(projectId, this.#settings);
      const made = (async () => {
        try {
          if (await streamInfo(await this.#fabric.jsm(), spec.name)) return;
        } catch (err) {
          // Under the generated NATS permissions another project's streams are publish-only: the
          // publish itself reports a missing stream (no stream answers it).
          if (err instanceof NatsPermissionError) return;
          throw err;
        }
        try {
          await ensureStream(this.#fabric, spec, "error");
        } catch (err) {
          // Created meanwhile by its own project, with that project's limits: use it as it is.
          if (!(err instanceof ConfigMismatchError)) throw err;
        }
      })();
      p = made;
      this.#otherInboxes.set(projectId, made);
      made.catch(() => this.#otherInboxes.delete(projectId));
    }
    return p;
  }

  /** Reads (and consumes) up to `limit` waiting messages that match the filter, oldest first. */
  read(filter: DirectReadFilter = {}): Promise<DirectReadResult> {
    const limit = filter.limit ?? DIRECT_READ_DEFAULT_LIMIT;
    if (!Number.isInteger(limit) || limit < 1 || limit > DIRECT_READ_MAX_LIMIT)
      return Promise.reject(
        new LoominalError("invalid_input", `limit must be an integer from 1 to ${DIRECT_READ_MAX_LIMIT}`),
      );
    try {
      if (filter.messageType !== undefined) assertNameToken(filter.messageType, "name");
      if (filter.fromAgentId !== undefined) assertAgentId(filter.fromAgentId);
      if (filter.threadId !== undefined) checkThreadOptions({ threadId: filter.threadId });
    } catch (err) {
      return Promise.reject(err);
    }
    return this.#reads.run("read", () => this.#read(limit, filter));
  }

  async #read(limit: number, filter: DirectReadFilter): Promise<DirectReadResult> {
    try {
      return await this.#readOnce(limit, filter);
    } catch (err) {
      // The inbox stream or the ledger bucket vanished: create what is missing and read once more.
      const stream = await streamVanished(this.#fabric, this.stream, err);
      const ledger = await streamVanished(this.#fabric, `KV_${INBOX_LEDGER_BUCKET.name}`, err);
      if (!stream && !ledger) throw err;
      this.#ledger = undefined;
      return this.#readOnce(limit, filter);
    }
  }

  async #readOnce(limit: number, filter: DirectReadFilter): Promise<DirectReadResult> {
    await this.ensure();
    // Read fresh (not the ensured copy): its creation time tells whether the ledger's sequences still apply.
    const info = await (await this.#fabric.jsm()).streams.info(this.stream);
    const kv = await this.#ledgerKv();
    const key = keys.inboxLedger(this.#identity.projectId, this.#identity.agentId);
    let ledger = this.#ledger ?? (await this.#loadLedger(kv, key));
    ledger = this.#ofStream(ledger, info.created, info.state.last_seq);
    const { messages: pulled, skippedInvalid, unparsed } = await this.#pullFrom(ledger.value.floor + 1);

    const full = pulled.length + skippedInvalid >= this.#settings.maxMessagesPerAgent;
    const highest = pulled.reduce((max, m) => Math.max(max, m.seq), 0);
    for (let attempt = 0; attempt < LEDGER_ATTEMPTS; attempt++) {
      const consumed = new Set(ledger.value.consumed);
      const unread = pulled.filter((m) => m.seq > ledger.value.floor && !consumed.has(m.seq));
      const lastSeen = ledger.value.lastSeen ?? 0;
      const stillWaiting = unread.filter((m) => m.seq <= lastSeen).length;
      const dropped = Math.max(0, (ledger.value.waiting ?? 0) - stillWaiting);
      const chosen: ReadDirectMessage[] = [];
      for (const m of unread) {
        if (chosen.length >= limit) break;
        if (filter.messageType !== undefined && m.messageType !== filter.messageType) continue;
        if (filter.fromAgentId !== undefined && m.from !== filter.fromAgentId) continue;
        if (filter.threadId !== undefined && m.threadId !== filter.threadId) continue;
        chosen.push(m);
      }
      const seen = { lastSeen: Math.max(lastSeen, highest), waiting: unread.length - chosen.length };
      const news = seen.lastSeen !== lastSeen || seen.waiting !== (ledger.value.waiting ?? 0);
      if (chosen.length === 0 && !news) {
        return { messages: [], remaining: unread.length, skippedInvalid, dropped, full };
      }
      for (const m of chosen) consumed.add(m.seq);
      const next: InboxLedger = {
        ...compactLedger(
          ledger.value.floor,
          consumed,
          pulled.map((m) => m.seq),
          unparsed,
        ),
        stream: info.created,
        ...seen,
      };
      try {
        const data = ledgerCodec.encode(next);
        const revision =
          ledger.revision === 0 ? await kv.create(key, data) : await kv.update(key, data, ledger.revision);
        this.#ledger = { revision, value: next };
        if (dropped > 0)
          this.#logger.warn(
            { dropped, maxMessagesPerAgent: this.#settings.maxMessagesPerAgent },
            "direct messages were removed unread by the inbox's retention",
          );
        return {
          messages: chosen,
          remaining: unread.length - chosen.length,
          skippedInvalid,
          dropped,
          full,
        };
      } catch (err) {
        this.#ledger = undefined;
        if (!isCasConflict(err)) throw err;
        // Someone else recorded reads meanwhile: choose again against what they recorded.
        ledger = this.#ofStream(await this.#loadLedger(kv, key), info.created, info.state.last_seq);
      }
    }
    throw new LoominalError("conflict", "the inbox ledger kept changing during this read; read again");
  }

  /**
   * The newest `maxScan` messages still stored in this agent's inbox, read or not, oldest first, without
   * consuming anything (for search). Costs one pull per 1,000 messages of the agent's subject.
   */
  async scan(maxScan: number): Promise<{ messages: ReadDirectMessage[]; scanned: number; stored: number }> {
    await this.ensure();
    const { messages } = await this.#pullFrom(1);
    const newest = maxScan > 0 ? messages.slice(-maxScan) : [];
    return { messages: newest, scanned: newest.length, stored: messages.length };
  }

  /**
   * The ledger as it applies to the stream created at `created`: one written for an earlier stream of
   * the same name (or, for a ledger that does not say, one whose floor is past the stream's last
   * sequence) starts over, since the new stream numbers its messages from 1.
   */
  #ofStream(
    ledger: { revision: number; value: InboxLedger },
    created: string,
    lastSeq: number,
  ): { revision: number; value: InboxLedger } {
    const other =
      ledger.value.stream !== undefined ? ledger.value.stream !== created : ledger.value.floor > lastSeq;
    if (!other) return ledger;
    if (ledger.value.floor > 0 || ledger.value.consumed.length > 0)
      this.#logger.warn(
        { stream: this.stream, floor: ledger.value.floor },
        "the inbox stream was created again; the read ledger starts over",
      );
    return { revision: ledger.revision, value: { floor: 0, consumed: [], stream: created } };
  }

  #ledgerKv(): Promise<KV> {
    return ensureBucket(this.#fabric, INBOX_LEDGER_BUCKET);
  }

  async #loadLedger(kv: KV, key: string): Promise<{ revision: number; value: InboxLedger }> {
    const e = await kv.get(key);
    if (!e) return { revision: 0, value: { floor: 0, consumed: [] } };
    if (e.operation !== "PUT") return { revision: e.revision, value: { floor: 0, consumed: [] } };
    const r = ledgerCodec.safeDecode(e.value, `${INBOX_LEDGER_BUCKET.name}/${key}`);
    if (!r.ok) {
      // A broken ledger would block the inbox forever; starting over may repeat messages but loses none.
      this.#logger.error({ err: r.error.message }, "inbox ledger is invalid; starting it over");
      return { revision: e.revision, value: { floor: 0, consumed: [] } };
    }
    return { revision: e.revision, value: r.value };
  }

  /**
   * Every message of this agent's subject from `startSeq` on, oldest first, with one ephemeral consumer
   * and one pull request per `maxMessagesPerAgent` messages (the most the subject can hold).
   */
  async #pullFrom(
    startSeq: number,
  ): Promise<{ messages: ReadDirectMessage[]; skippedInvalid: number; unparsed: number }> {
    const id = this.#identity;
    const pulled = await readAll(this.#fabric, this.stream, {
      filterSubject: subjects.inbox(id.projectId, id.agentId),
      start: { from: "sequence", seq: startSeq },
      idleMs: READ_CONSUMER_IDLE_MS,
      batch: PULL_BATCH,
      pullTimeoutMs: PULL_TIMEOUT_MS,
    });
    const messages: ReadDirectMessage[] = [];
    let skippedInvalid = 0;
    for (const m of pulled.messages) {
      const r = codec.safeDecode(m.data, `${this.stream}#${m.streamSeq}`);
      if (!r.ok || r.value.to !== id.agentId || r.value.projectId !== id.projectId) {
        skippedInvalid++;
        this.#logger.warn(
          { seq: m.streamSeq, err: r.ok ? "addressed to another agent" : r.error.message },
          "skipping an invalid direct message",
        );
        continue;
      }
      const rec = r.value;
      messages.push({
        seq: m.streamSeq,
        from: rec.from,
        fromHandle: rec.fromHandle,
        messageType: rec.messageType,
        message: rec.message,
        ...(rec.metadata !== undefined ? { metadata: rec.metadata } : {}),
        ...(rec.priority === "urgent" ? { priority: rec.priority } : {}),
        sentAt: rec.sentAt,
        ...threadView(rec),
        ...(rec.ackRequired ? { ackRequired: true } : {}),
      });
    }
    return { messages, skippedInvalid, unparsed: pulled.unparsed };
  }
}

/**
 * The ledger after a read. `seen` are the sequences of every message of the subject above `floor` that
 * still exists (the pull returns all of them). The floor moves up to just below the first unread one, so
 * `consumed` only ever holds reads above an older unread message: at most what the inbox can hold.
 */
export function compactLedger(
  floor: number,
  consumed: Set<number>,
  seen: number[],
  unparsed = 0,
): InboxLedger {
  // A pulled message whose sequence could not be read may lie anywhere above the floor: keep the floor
  // where it is (the returned messages are recorded in `consumed`) so that a later read still sees it.
  if (unparsed > 0) return { floor, consumed: [...consumed].filter((s) => s > floor).sort((a, b) => a - b) };
  const sorted = [...seen].filter((s) => s > floor).sort((a, b) => a - b);
  let newFloor = floor;
  let allRead = true;
  for (const s of sorted) {
    if (!consumed.has(s)) {
      allRead = false;
      // Nothing of this subject between the old floor and `s` exists unread: it was read or is gone.
      newFloor = Math.max(floor, s - 1);
      break;
    }
  }
  if (allRead) newFloor = Math.max(floor, sorted[sorted.length - 1] ?? floor);
  return { floor: newFloor, consumed: [...consumed].filter((s) => s > newFloor).sort((a, b) => a - b) };
}

/** The project's inbox stream: each agent's subject keeps at most `maxMessagesPerAgent` messages. */
export function inboxStreamSpec(projectId: string, settings: InboxSettings): StreamSpec {
  return {
    name: streams.inbox(projectId),
    subjects: [subjects.inboxAll(projectId)],
    retention: "limits",
    storage: "file",
    maxMsgsPerSubject: settings.maxMessagesPerAgent,
    maxAgeMs: settings.maxAgeMs,
    discard: "old",
    duplicateWindowMs: Math.min(120_000, settings.maxAgeMs),
  };
}
