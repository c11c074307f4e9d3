import { ensureStream, type Fabric, jsonCodec, type Logger, type StreamSpec } from "@loominal/fabric";
import {
  assertNameToken,
  type ChannelConfig,
  type ChannelMessage,
  canRead,
  channelMessageSchema,
  LoominalError,
  MESSAGE_MAX_CHARS,
  randomId,
  type Scope,
  scopeSchema,
  streams,
  subjects,
} from "@loominal/protocol";
import { AckPolicy, DeliverPolicy, type JetStreamManager } from "@nats-io/jetstream";
import { UnknownChannelError } from "./errors.js";
import type { Identity } from "./identity.js";
import { type PulledMessage, pullBatch } from "./pull.js";

const codec = jsonCodec(channelMessageSchema);
const encoder = new TextEncoder();
const NS_PER_MS = 1_000_000;
/** JetStream's default duplicate window; it may not exceed a stream's max age. */
const DEFAULT_DUPLICATE_WINDOW_MS = 120_000;
/** A read consumer idle this long is removed by the server. */
const READ_CONSUMER_IDLE_MS = 60_000;
/** A cached read consumer is reused only if used this recently (well inside the server's idle limit). */
const READ_CONSUMER_REUSE_MS = 30_000;
const PULL_TIMEOUT_MS = 5_000;

export const CHANNEL_READ_DEFAULT_LIMIT = 20;
export const CHANNEL_READ_MAX_LIMIT = 200;

/** A channel as configured, with where it lives in NATS. */
export interface ChannelInfo extends ChannelConfig {
  subject: string;
  stream: string;
}

export interface SentChannelMessage {
  channel: string;
  /** Stream sequence of the message; pass `seq + 1` as a read cursor to start after it. */
  seq: number;
  scope: Scope;
  sentAt: string;
}

export interface ReadChannelMessage {
  seq: number;
  senderId: string;
  senderHandle: string;
  scope: Scope;
  message: string;
  sentAt: string;
}

export interface ChannelPage {
  channel: string;
  /** Oldest first. Messages the reader's scope does not allow are left out. */
  messages: ReadChannelMessage[];
  /** The stream sequence to pass as `cursor` to read the messages after this page. */
  nextCursor: number;
  /** Whether more messages were already stored after this page when it was read. */
  hasMore: boolean;
  /** Stored records that failed validation and were skipped. */
  skippedInvalid: number;
}

export interface ChannelStatus extends ChannelInfo {
  messages: number;
  bytes: number;
  firstSeq: number;
  lastSeq: number;
  /** When the newest message was stored, or null when the channel is empty. */
  lastMessageAt: string | null;
}

interface ReadConsumer {
  name: string;
  /** The stream sequence it will deliver next. */
  nextSeq: number;
  usedAt: number;
}

export interface ChannelsOptions {
  fabric: Fabric;
  identity: Identity;
  channels: readonly ChannelConfig[];
  logger: Logger;
}

/**
 * Channels: project-wide conversations configured in `.loominal.json`.
 *
 * Each channel has its own stream (`loom_<p>_chan_<channel>`) because JetStream applies max msgs/bytes/age
 * per stream, and channels keep different histories. Reads enforce scopes: a reader sees a message only if
 * `canRead(scope, sender, reader)`. A page is read with one ephemeral pull consumer and one pull request,
 * whatever its size; a reader that follows a channel with the cursor it was given reuses that consumer.
 */
export class Channels {
  #fabric: Fabric;
  #identity: Identity;
  #logger: Logger;
  #byName = new Map<string, ChannelInfo>();
  #ensured = new Map<string, Promise<unknown>>();
  #readers = new Map<string, ReadConsumer>();

  constructor(options: ChannelsOptions) {
    this.#fabric = options.fabric;
    this.#identity = options.identity;
    this.#logger = options.logger;
    const projectId = options.identity.projectId;
    for (const c of options.channels) {
      this.#byName.set(c.name, {
        ...c,
        subject: subjects.channel(projectId, c.name),
        stream: streams.channel(projectId, c.name),
      });
    }
  }

  /** The configured channels, in configuration order. */
  list(): ChannelInfo[] {
    return [...this.#byName.values()];
  }

  /** The configuration of one channel; InvalidNameError or UnknownChannelError when there is none. */
  info(channel: string): ChannelInfo {
    assertNameToken(channel, "channel");
    const info = this.#byName.get(channel);
    if (!info) throw new UnknownChannelError(channel, [...this.#byName.keys()]);
    return info;
  }

  /** Creates the channel's stream if needed (or updates its limits to the configured ones). Cached. */
  ensure(channel: string): Promise<unknown> {
    const info = this.info(channel);
    let p = this.#ensured.get(channel);
    if (!p) {
      p = ensureStream(this.#fabric, channelStreamSpec(info), "update");
      this.#ensured.set(channel, p);
      p.catch(() => this.#ensured.delete(channel));
    }
    return p;
  }

  /** Publishes a message to a channel and waits for JetStream to store it. */
  async send(channel: string, message: string, scope: Scope = "team"): Promise<SentChannelMessage> {
    const info = this.info(channel);
    if (typeof message !== "string" || message.length === 0 || message.length > MESSAGE_MAX_CHARS)
      throw new LoominalError("invalid_input", `message must be 1–${MESSAGE_MAX_CHARS} characters`);
    if (!scopeSchema.safeParse(scope).success)
      throw new LoominalError(
        "invalid_input",
        `scope must be one of private, personal, team, public; got ${String(scope)}`,
      );
    await this.ensure(channel);
    const id = this.#identity;
    const record: ChannelMessage = {
      channel,
      projectId: id.projectId,
      senderId: id.agentId,
      senderHandle: id.handle,
      userId: id.userId,
      scope,
      message,
      sentAt: new Date().toISOString(),
    };
    const ack = await this.#fabric.js.publish(info.subject, encoder.encode(JSON.stringify(record)));
    return { channel, seq: ack.seq, scope, sentAt: record.sentAt };
  }

  /**
   * Reads one page of a channel, oldest first. Without a cursor: the newest `limit` messages. With a
   * cursor (a `nextCursor` from an earlier page): up to `limit` messages from that stream sequence on.
   */
  async read(channel: string, options: { limit?: number; cursor?: number } = {}): Promise<ChannelPage> {
    const info = this.info(channel);
    const limit = options.limit ?? CHANNEL_READ_DEFAULT_LIMIT;
    if (!Number.isInteger(limit) || limit < 1 || limit > CHANNEL_READ_MAX_LIMIT)
      throw new LoominalError(
        "invalid_input",
        `limit must be an integer from 1 to ${CHANNEL_READ_MAX_LIMIT}`,
      );
    if (options.cursor !== undefined && (!Number.isInteger(options.cursor) || options.cursor < 1))
      throw new LoominalError(
        "invalid_input",
        "cursor must be a positive integer (a nextCursor from an earlier read)",
      );
    await this.ensure(channel);
    const jsm = await this.#fabric.jsm();

    let start = options.cursor;
    if (start === undefined) {
      const si = await jsm.streams.info(info.stream);
      if (si.state.messages === 0) {
        return {
          channel,
          messages: [],
          nextCursor: si.state.last_seq + 1,
          hasMore: false,
          skippedInvalid: 0,
        };
      }
      start = Math.max(si.state.first_seq, si.state.last_seq - limit + 1);
    }

    const pulled = await this.#pullPage(jsm, info, start, limit);
    const messages: ReadChannelMessage[] = [];
    let skippedInvalid = 0;
    const reader = {
      projectId: this.#identity.projectId,
      agentId: this.#identity.agentId,
      userId: this.#identity.userId,
    };
    for (const m of pulled.messages) {
      const r = codec.safeDecode(m.data, `${info.stream}#${m.streamSeq}`);
      if (!r.ok) {
        skippedInvalid++;
        this.#logger.warn({ err: r.error.message }, "skipping an invalid channel message");
        continue;
      }
      const rec = r.value;
      if (rec.channel !== channel || rec.projectId !== this.#identity.projectId) {
        skippedInvalid++;
        continue;
      }
      if (
        !canRead(rec.scope, { projectId: rec.projectId, agentId: rec.senderId, userId: rec.userId }, reader)
      )
        continue;
      messages.push({
        seq: m.streamSeq,
        senderId: rec.senderId,
        senderHandle: rec.senderHandle,
        scope: rec.scope,
        message: rec.message,
        sentAt: rec.sentAt,
      });
    }
    return { channel, messages, nextCursor: pulled.nextSeq, hasMore: pulled.hasMore, skippedInvalid };
  }

  /** Pulls up to `limit` raw messages from `start` on, reusing a read consumer already positioned there. */
  async #pullPage(
    jsm: JetStreamManager,
    info: ChannelInfo,
    start: number,
    limit: number,
  ): Promise<{ messages: PulledMessage[]; nextSeq: number; hasMore: boolean }> {
    const nc = this.#fabric.nc;
    const cached = this.#readers.get(info.name);
    if (cached && cached.nextSeq === start && Date.now() - cached.usedAt < READ_CONSUMER_REUSE_MS) {
      // Taken out while in use, so two concurrent reads never pull from the same consumer.
      this.#readers.delete(info.name);
      try {
        const messages = await pullBatch(nc, info.stream, cached.name, limit, PULL_TIMEOUT_MS);
        return this.#afterPull(info, cached.name, start, messages);
      } catch (err) {
        // The server removed it, or it failed: fall back to a fresh consumer.
        this.#logger.debug({ err: String(err) }, "cached read consumer unusable; creating a new one");
      }
    }
    const name = `read_${randomId()}`;
    const ci = await jsm.consumers.add(info.stream, {
      name,
      ack_policy: AckPolicy.None,
      deliver_policy: DeliverPolicy.StartSequence,
      opt_start_seq: start,
      inactive_threshold: READ_CONSUMER_IDLE_MS * NS_PER_MS,
      mem_storage: true,
      num_replicas: 1,
    });
    if (ci.num_pending === 0) {
      this.#keepReader(info, name, start, cached);
      return { messages: [], nextSeq: start, hasMore: false };
    }
    const messages = await pullBatch(nc, info.stream, name, Math.min(limit, ci.num_pending), PULL_TIMEOUT_MS);
    return this.#afterPull(info, name, start, messages, cached);
  }

  #afterPull(
    info: ChannelInfo,
    name: string,
    start: number,
    messages: PulledMessage[],
    replaced?: ReadConsumer,
  ): { messages: PulledMessage[]; nextSeq: number; hasMore: boolean } {
    const last = messages[messages.length - 1];
    const nextSeq = last ? last.streamSeq + 1 : start;
    this.#keepReader(info, name, nextSeq, replaced);
    return { messages, nextSeq, hasMore: last ? last.pending > 0 : false };
  }

  #keepReader(info: ChannelInfo, name: string, nextSeq: number, replaced?: ReadConsumer): void {
    const previous = this.#readers.get(info.name) ?? replaced;
    if (previous && previous.name !== name) this.#dropConsumer(info.stream, previous.name);
    this.#readers.set(info.name, { name, nextSeq, usedAt: Date.now() });
  }

  #dropConsumer(stream: string, name: string): void {
    try {
      // Fire and forget: the server would remove it after the idle limit anyway.
      this.#fabric.nc.publish(`$JS.API.CONSUMER.DELETE.${stream}.${name}`);
    } catch {
      // Not connected: the idle limit removes it.
    }
  }

  /** Message counts and limits of one channel, or of every configured channel. */
  async status(channel?: string): Promise<ChannelStatus[]> {
    const infos = channel === undefined ? this.list() : [this.info(channel)];
    const jsm = await this.#fabric.jsm();
    return Promise.all(
      infos.map(async (info) => {
        await this.ensure(info.name);
        const si = await jsm.streams.info(info.stream);
        const s = si.state;
        const empty = s.messages === 0;
        return {
          ...info,
          messages: s.messages,
          bytes: s.bytes,
          firstSeq: s.first_seq,
          lastSeq: s.last_seq,
          lastMessageAt: empty ? null : new Date(s.last_ts).toISOString(),
        };
      }),
    );
  }

  /** Forgets cached read consumers (the server removes them when idle). */
  close(): void {
    for (const [channel, r] of this.#readers) {
      const info = this.#byName.get(channel);
      if (info) this.#dropConsumer(info.stream, r.name);
    }
    this.#readers.clear();
  }
}

/** The stream of one channel. */
export function channelStreamSpec(info: ChannelInfo): StreamSpec {
  return {
    name: info.stream,
    subjects: [info.subject],
    retention: "limits",
    storage: "file",
    maxMsgs: info.maxMessages,
    maxBytes: info.maxBytes,
    maxAgeMs: info.maxAgeMs,
    discard: "old",
    duplicateWindowMs: Math.min(DEFAULT_DUPLICATE_WINDOW_MS, info.maxAgeMs),
    allowDirect: true,
  };
}
