import { createHash } from "node:crypto";
import {
  createReadConsumer,
  dropConsumer,
  ensureStream,
  type Fabric,
  type JetStreamManager,
  jsonCodec,
  type Logger,
  type PulledMessage,
  pullBatch,
  readAll,
  type StreamSpec,
  type StreamState,
  streamVanished,
} from "@loominal/fabric";
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
import { UnknownChannelError } from "./errors.js";
import type { Identity } from "./identity.js";
import { checkThreadOptions, type ThreadOptions, threadView } from "./threads.js";

const codec = jsonCodec(channelMessageSchema);
const encoder = new TextEncoder();
/** JetStream's default duplicate window; it may not exceed a stream's max age. */
const DEFAULT_DUPLICATE_WINDOW_MS = 120_000;
/** A read consumer idle this long is removed by the server. */
const READ_CONSUMER_IDLE_MS = 60_000;
/** A cached read consumer is reused only if used this recently (well inside the server's idle limit). */
const READ_CONSUMER_REUSE_MS = 30_000;
const PULL_TIMEOUT_MS = 5_000;
/** Messages of a channel a thread read looks at, newest first (its cost bound). */
export const THREAD_SCAN_MAX = 2_000;
/** Windows a newest-page read searches for messages visible to its reader before it gives up. */
export const NEWEST_MAX_WINDOWS = 10;
/** Largest older window (raw messages) one pull of a newest-page read asks for. */
const MAX_WINDOW = 1_000;
/** Consumers a newest-page read may create to find the stream's end before it takes what it has. */
const NEWEST_MAX_POSITIONING = 3;
/** Newest pages holding more message text than this are not kept for the next read. */
const PAGE_CACHE_MAX_CHARS = 1_000_000;

/** How many messages beyond `limit` the newest window may hold before its start is moved up. */
function windowSlack(limit: number): number {
  return Math.max(limit, 32);
}

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
  /** A message with the same idempotency key was stored already; `seq` is that message's. */
  duplicate: boolean;
  messageId: string;
  /** The thread it was sent in (its own messageId when it starts one). */
  threadId: string;
}

export interface ReadChannelMessage {
  seq: number;
  senderId: string;
  senderHandle: string;
  scope: Scope;
  message: string;
  sentAt: string;
  messageId?: string;
  threadId?: string;
  replyTo?: string;
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

/** Where a read window starts in the stream, and whether nothing older is stored. */
interface ReadWindow {
  /** The first stream sequence the window's consumer delivers (the server moves it into the stream). */
  firstSeq: number;
  reachedFirst: boolean;
}

/** The newest page as last read, and the stream state it was read at. */
interface CachedPage {
  limit: number;
  firstSeq: number;
  lastSeq: number;
  /** Messages stored in the stream at the time. */
  count: number;
  messages: ReadChannelMessage[];
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
  #readers = new Map<string, ReadConsumer>();
  /** The last stream sequence this process saw per channel: where a newest-page read guesses the end is. */
  #tails = new Map<string, number>();
  /** The newest page each channel had when this process last read it. */
  #pages = new Map<string, CachedPage>();

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

  /**
   * Creates the channel's stream if needed (or updates its limits to the configured ones). Fabric
   * remembers what this connection ensured and checks again after a reconnect (the server may have lost
   * its store), so calling it before every operation costs nothing.
   */
  ensure(channel: string): Promise<unknown> {
    return ensureStream(this.#fabric, channelStreamSpec(this.info(channel)), "update");
  }

  /**
   * Publishes a message to a channel and waits for JetStream to store it. With an `idempotencyKey`, the
   * message carries `Nats-Msg-Id: <agentId>:<key>`, so a retry within the stream's duplicate window (one
   * whose first attempt was stored although its answer was lost) is not stored twice.
   */
  async send(
    channel: string,
    message: string,
    scope: Scope = "team",
    options: { idempotencyKey?: string } & ThreadOptions = {},
  ): Promise<SentChannelMessage> {
    const info = this.info(channel);
    const thread = checkThreadOptions(options);
    if (typeof message !== "string" || message.length === 0 || message.length > MESSAGE_MAX_CHARS)
      throw new LoominalError("invalid_input", `message must be 1–${MESSAGE_MAX_CHARS} characters`);
    if (!scopeSchema.safeParse(scope).success)
      throw new LoominalError(
        "invalid_input",
        `scope must be one of private, personal, team, public; got ${String(scope)}`,
      );
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
      // A retry with the same idempotency key gets the same messageId as the copy that was stored.
      messageId:
        options.idempotencyKey === undefined
          ? randomId()
          : createHash("sha256").update(`${id.agentId}:${options.idempotencyKey}`).digest("hex").slice(0, 32),
      ...thread,
    };
    const key = options.idempotencyKey;
    if (key !== undefined && !/^[A-Za-z0-9_-]{1,64}$/.test(key))
      throw new LoominalError("invalid_input", "idempotencyKey must be 1–64 letters, digits, '_' or '-'");
    const ack = await this.#recovering(info, async () => {
      await this.ensure(channel);
      return this.#fabric.js.publish(
        info.subject,
        encoder.encode(JSON.stringify(record)),
        key === undefined ? undefined : { msgID: `${id.agentId}:${key}` },
      );
    });
    this.#noteTail(channel, ack.seq);
    const messageId = record.messageId ?? "";
    return {
      channel,
      seq: ack.seq,
      scope,
      sentAt: record.sentAt,
      duplicate: ack.duplicate === true,
      messageId,
      threadId: thread.threadId ?? messageId,
    };
  }

  /**
   * Reads one page of a channel, oldest first. Without a cursor: the newest `limit` messages the reader
   * may see (older windows of the stream are searched when the newest one is mostly messages hidden by
   * scope, up to `NEWEST_MAX_WINDOWS` windows). With a cursor (a `nextCursor` from an earlier page): up to
   * `limit` messages from that stream sequence on.
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
    const cursor = options.cursor;
    return this.#recovering(info, async () => {
      await this.ensure(channel);
      const jsm = await this.#fabric.jsm();
      if (cursor === undefined) return this.#readNewest(jsm, info, limit);
      const pulled = await this.#pullPage(jsm, info, cursor, limit);
      this.#noteTail(info.name, pulled.nextSeq - 1);
      const { messages, skippedInvalid } = this.#visible(info, pulled.messages);
      return { channel, messages, nextCursor: pulled.nextSeq, hasMore: pulled.hasMore, skippedInvalid };
    });
  }

  /**
   * The messages of one thread the reader may see, oldest first: the newest `limit` of them among the
   * newest `maxScan` messages of the channel (a bounded cost, stated as `scanned`).
   */
  async readThread(
    channel: string,
    threadId: string,
    options: { limit?: number; maxScan?: number } = {},
  ): Promise<ChannelPage & { scanned: number }> {
    checkThreadOptions({ threadId });
    const limit = options.limit ?? CHANNEL_READ_DEFAULT_LIMIT;
    if (!Number.isInteger(limit) || limit < 1 || limit > CHANNEL_READ_MAX_LIMIT)
      throw new LoominalError(
        "invalid_input",
        `limit must be an integer from 1 to ${CHANNEL_READ_MAX_LIMIT}`,
      );
    const scan = await this.scanNewest(channel, options.maxScan ?? THREAD_SCAN_MAX);
    const inThread = scan.messages.filter((m) => m.threadId === threadId);
    return {
      channel,
      messages: inThread.slice(-limit),
      nextCursor: scan.nextCursor,
      hasMore: false,
      skippedInvalid: scan.skippedInvalid,
      scanned: scan.scanned,
    };
  }

  /**
   * The newest `maxScan` messages of a channel (at most), those the reader may see, oldest first, with
   * how many stored messages were looked at. One temporary consumer and `maxScan / 1000` pulls.
   */
  async scanNewest(
    channel: string,
    maxScan: number,
  ): Promise<{
    messages: ReadChannelMessage[];
    scanned: number;
    nextCursor: number;
    skippedInvalid: number;
    /** The first sequence looked at, and the first one stored: older messages were left when they differ. */
    firstSeq: number;
    storedFirstSeq: number;
  }> {
    const info = this.info(channel);
    if (!Number.isInteger(maxScan) || maxScan < 1)
      throw new LoominalError("invalid_input", "maxScan must be a positive integer");
    return this.#recovering(info, async () => {
      await this.ensure(channel);
      const state = (await (await this.#fabric.jsm()).streams.info(info.stream)).state;
      const bounds = { storedFirstSeq: state.first_seq };
      if (state.messages === 0)
        return {
          messages: [],
          scanned: 0,
          nextCursor: state.last_seq + 1,
          skippedInvalid: 0,
          firstSeq: state.first_seq,
          ...bounds,
        };
      const start = Math.max(state.first_seq, state.last_seq - maxScan + 1);
      const pulled = await readAll(this.#fabric, info.stream, {
        start: { from: "sequence", seq: start },
        idleMs: READ_CONSUMER_IDLE_MS,
        pullTimeoutMs: PULL_TIMEOUT_MS,
      });
      const raw = pulled.messages.filter((m) => m.streamSeq <= state.last_seq);
      const { messages, skippedInvalid } = this.#visible(info, raw);
      return {
        messages,
        scanned: raw.length,
        nextCursor: state.last_seq + 1,
        skippedInvalid,
        firstSeq: start,
        ...bounds,
      };
    });
  }

  /**
   * Runs `op`; if it failed because the channel's stream vanished (deleted, or a server that lost its
   * store), forgets what this process knew of it (the cached newest page and its consumer, the last
   * sequence), creates it again and retries once.
   */
  async #recovering<T>(info: ChannelInfo, op: () => Promise<T>): Promise<T> {
    try {
      return await op();
    } catch (err) {
      if (!(await streamVanished(this.#fabric, info.stream, err))) throw err;
      this.#pages.delete(info.name);
      this.#tails.delete(info.name);
      this.#readers.delete(info.name);
      return op();
    }
  }

  /**
   * The newest `limit` visible messages.
   *
   * When this process read the newest page of the channel before, one stream-info request says whether
   * that page is still the answer: the same first and last sequence and message count mean nothing was
   * added or removed. If messages were only appended, the read consumer left at the old end pulls just
   * those (two round trips). Otherwise the newest window is found with a consumer created at a guessed
   * start (the end this process saw last): the server clamps the start into the stream and reports how
   * many messages follow, which tells whether the window is the tail, so that costs two round trips while
   * the guess holds and three when it must be corrected. When the reader's scope hides part of the
   * window, older windows (doubling in size) are read until the page is full, the stream's first message
   * is reached, or `NEWEST_MAX_WINDOWS` windows were read.
   */
  async #readNewest(jsm: JetStreamManager, info: ChannelInfo, limit: number): Promise<ChannelPage> {
    let state: StreamState | undefined;
    const cached = this.#pages.get(info.name);
    if (cached && cached.limit >= limit) {
      state = (await jsm.streams.info(info.stream)).state;
      const page = await this.#fromCachedPage(jsm, info, cached, state, limit);
      if (page) return page;
      this.#tails.set(info.name, state.last_seq);
    }
    this.#pages.delete(info.name);
    // Read alongside the first consumer creation (no extra wait): the state the new page is cached at.
    const stateNow: Promise<StreamState | undefined> = state
      ? Promise.resolve(state)
      : jsm.streams.info(info.stream).then(
          (si) => si.state,
          () => undefined,
        );
    const page = await this.#readNewestWindows(jsm, info, limit);
    const at = await stateNow;
    if (at && !page.hasMore && page.nextCursor - 1 === at.last_seq)
      this.#cachePage(info, limit, at, page.messages);
    return page;
  }

  /**
   * The newest page from a cached one, if since it was read the stream only gained a few messages at its
   * end and lost some at its start.
   */
  async #fromCachedPage(
    jsm: JetStreamManager,
    info: ChannelInfo,
    cached: CachedPage,
    state: StreamState,
    limit: number,
  ): Promise<ChannelPage | undefined> {
    const added = state.last_seq - cached.lastSeq;
    const trimmed = state.first_seq - cached.firstSeq;
    // Messages appended at the end, and the oldest dropped by the channel's limits, change nothing else:
    // the counts add up exactly. Dropped ones are counted exactly only if the stream had no holes (the
    // only holes are messages an operator deleted).
    const appendedOrTrimmed =
      added >= 0 &&
      trimmed >= 0 &&
      (trimmed === 0 || cached.count === cached.lastSeq - cached.firstSeq + 1) &&
      state.messages === cached.count + added - trimmed;
    if (!appendedOrTrimmed || added > limit + windowSlack(limit)) return undefined;
    const kept = cached.messages.filter((m) => m.seq >= state.first_seq);
    if (added === 0) {
      if (kept.length < cached.messages.length) this.#cachePage(info, cached.limit, state, kept);
      return {
        channel: info.name,
        messages: kept.slice(-limit),
        nextCursor: cached.lastSeq + 1,
        hasMore: false,
        skippedInvalid: 0,
      };
    }
    const pulled = await this.#pullPage(jsm, info, cached.lastSeq + 1, added, state.last_seq);
    this.#noteTail(info.name, pulled.nextSeq - 1);
    const fresh = this.#visible(info, pulled.messages);
    const messages = [...kept, ...fresh.messages].slice(-cached.limit);
    if (!pulled.hasMore && pulled.nextSeq - 1 === state.last_seq)
      this.#cachePage(info, cached.limit, state, messages);
    else this.#pages.delete(info.name);
    return {
      channel: info.name,
      messages: messages.slice(-limit),
      nextCursor: pulled.nextSeq,
      hasMore: pulled.hasMore,
      skippedInvalid: fresh.skippedInvalid,
    };
  }

  #cachePage(info: ChannelInfo, limit: number, state: StreamState, messages: ReadChannelMessage[]): void {
    // A message removed while the page was read must not outlive it in the cache.
    const kept = messages.filter((m) => m.seq >= state.first_seq);
    let chars = 0;
    for (const m of kept) chars += m.message.length;
    if (chars > PAGE_CACHE_MAX_CHARS) {
      this.#pages.delete(info.name);
      return;
    }
    this.#pages.set(info.name, {
      limit,
      firstSeq: state.first_seq,
      lastSeq: state.last_seq,
      count: state.messages,
      messages: kept,
    });
  }

  /** Reads the newest window, and older ones while the page is not full (see `#readNewest`). */
  async #readNewestWindows(jsm: JetStreamManager, info: ChannelInfo, limit: number): Promise<ChannelPage> {
    const newest = await this.#positionNewest(jsm, info, limit);
    if (newest.pending === 0) {
      this.#keepReader(info, newest.name, newest.firstSeq);
      this.#tails.set(info.name, newest.firstSeq - 1);
      return {
        channel: info.name,
        messages: [],
        nextCursor: newest.firstSeq,
        hasMore: false,
        skippedInvalid: 0,
      };
    }
    const raw = await pullBatch(
      this.#fabric,
      info.stream,
      newest.name,
      Math.min(newest.pending, limit + windowSlack(limit)),
      PULL_TIMEOUT_MS,
    );
    const page = this.#afterPull(info, newest.name, newest.firstSeq, raw);
    this.#tails.set(info.name, page.nextSeq - 1);
    let { messages, skippedInvalid } = this.#visible(info, raw);

    let reachedFirst = newest.reachedFirst;
    let end = newest.firstSeq - 1;
    let size = limit;
    for (let windows = 1; messages.length < limit && !reachedFirst && end >= 1; windows++) {
      if (windows >= NEWEST_MAX_WINDOWS) {
        this.#logger.debug(
          { channel: info.name, windows, olderThan: end + 1 },
          "newest page not filled: the windows read hold too few messages visible to this reader",
        );
        break;
      }
      size = Math.min(size * 2, MAX_WINDOW);
      const older = await this.#readWindow(jsm, info, Math.max(1, end - size + 1), end);
      const visible = this.#visible(info, older.messages);
      messages = [...visible.messages, ...messages];
      skippedInvalid += visible.skippedInvalid;
      reachedFirst = older.reachedFirst;
      end = older.firstSeq - 1;
    }
    return {
      channel: info.name,
      messages: messages.length > limit ? messages.slice(messages.length - limit) : messages,
      nextCursor: page.nextSeq,
      hasMore: page.hasMore,
      skippedInvalid,
    };
  }

  /**
   * Creates the read consumer of the newest window: at most `limit + windowSlack(limit)` messages that
   * end at the stream's last one. Corrects a wrong guess (the stream grew, shrank or was recreated) from
   * what the server answered, a bounded number of times.
   */
  async #positionNewest(
    jsm: JetStreamManager,
    info: ChannelInfo,
    limit: number,
  ): Promise<ReadWindow & { name: string; pending: number }> {
    const tail = this.#tails.get(info.name);
    let start = tail === undefined ? 1 : Math.max(1, tail - limit + 1);
    for (let attempt = 1; ; attempt++) {
      const c = await this.#createReader(jsm, info, start);
      const reachedFirst = start <= 1 || c.firstSeq > start;
      if (attempt < NEWEST_MAX_POSITIONING) {
        if (c.pending === 0 && !reachedFirst) {
          // The stream ends before the guess (it was recreated): its last message is firstSeq - 1.
          this.#dropConsumer(info.stream, c.name);
          start = Math.max(1, c.firstSeq - limit);
          continue;
        }
        if (c.pending > limit + windowSlack(limit)) {
          // The stream grew since the guess: its last message is about firstSeq + pending - 1.
          this.#dropConsumer(info.stream, c.name);
          start = c.firstSeq + c.pending - limit;
          continue;
        }
      }
      return { ...c, reachedFirst };
    }
  }

  /** Reads the stored messages from `start` to `end` with a consumer used once. */
  async #readWindow(
    jsm: JetStreamManager,
    info: ChannelInfo,
    start: number,
    end: number,
  ): Promise<ReadWindow & { messages: PulledMessage[] }> {
    const c = await this.#createReader(jsm, info, start);
    const reachedFirst = start <= 1 || c.firstSeq > start;
    try {
      const wanted = Math.min(c.pending, end - c.firstSeq + 1);
      if (wanted <= 0) return { firstSeq: c.firstSeq, reachedFirst, messages: [] };
      const raw = await pullBatch(this.#fabric, info.stream, c.name, wanted, PULL_TIMEOUT_MS);
      // Deleted messages inside the window make the batch run past its end.
      return { firstSeq: c.firstSeq, reachedFirst, messages: raw.filter((m) => m.streamSeq <= end) };
    } finally {
      this.#dropConsumer(info.stream, c.name);
    }
  }

  /**
   * An ephemeral read consumer from `start` on. The server moves a start before the stream's first
   * message up to it, and one past the end back to just after the last, and says how many follow.
   */
  async #createReader(
    _jsm: JetStreamManager,
    info: ChannelInfo,
    start: number,
  ): Promise<{ name: string; firstSeq: number; pending: number }> {
    return createReadConsumer(this.#fabric, info.stream, {
      start: { from: "sequence", seq: start },
      idleMs: READ_CONSUMER_IDLE_MS,
    });
  }

  /** Decodes pulled messages and keeps those this reader may see. */
  #visible(
    info: ChannelInfo,
    pulled: readonly PulledMessage[],
  ): { messages: ReadChannelMessage[]; skippedInvalid: number } {
    const id = this.#identity;
    const reader = { projectId: id.projectId, agentId: id.agentId, userId: id.userId };
    const messages: ReadChannelMessage[] = [];
    let skippedInvalid = 0;
    for (const m of pulled) {
      const r = codec.safeDecode(m.data, `${info.stream}#${m.streamSeq}`);
      if (!r.ok) {
        skippedInvalid++;
        this.#logger.warn({ err: r.error.message }, "skipping an invalid channel message");
        continue;
      }
      const rec = r.value;
      if (rec.channel !== info.name || rec.projectId !== id.projectId) {
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
        ...threadView(rec),
      });
    }
    return { messages, skippedInvalid };
  }

  /** Remembers the highest stream sequence seen, the starting guess of the next newest-page read. */
  #noteTail(channel: string, seq: number): void {
    if (seq > (this.#tails.get(channel) ?? 0)) this.#tails.set(channel, seq);
  }

  /**
   * Pulls up to `limit` raw messages from `start` on, reusing a read consumer already positioned there.
   *
   * The server tells an existing consumer about a newly stored message asynchronously, after it has
   * acknowledged the publish, so a reused consumer may answer "no messages" (or stop early) although the
   * stream already holds more. A short answer from a reused consumer is therefore checked against the
   * stream's last sequence (`storedLast` when the caller just read it, else one stream-info request), and
   * when the stream holds more the page is read with a fresh consumer, whose pending count the server
   * computes from the store when it creates it.
   */
  async #pullPage(
    jsm: JetStreamManager,
    info: ChannelInfo,
    start: number,
    limit: number,
    storedLast?: number,
  ): Promise<{ messages: PulledMessage[]; nextSeq: number; hasMore: boolean }> {
    const cached = this.#readers.get(info.name);
    if (cached && cached.nextSeq === start && Date.now() - cached.usedAt < READ_CONSUMER_REUSE_MS) {
      // Taken out while in use, so two concurrent reads never pull from the same consumer.
      this.#readers.delete(info.name);
      try {
        const messages = await pullBatch(this.#fabric, info.stream, cached.name, limit, PULL_TIMEOUT_MS);
        if (messages.length >= limit) return this.#afterPull(info, cached.name, start, messages);
        const last = storedLast ?? (await jsm.streams.info(info.stream)).state.last_seq;
        const delivered = messages[messages.length - 1]?.streamSeq ?? start - 1;
        if (delivered >= last) return this.#afterPull(info, cached.name, start, messages);
        this.#logger.debug(
          { channel: info.name, delivered, storedLast: last },
          "reused read consumer had not seen the newest messages yet; reading with a fresh one",
        );
      } catch (err) {
        // The server removed it, or it failed: fall back to a fresh consumer.
        this.#logger.debug({ err: String(err) }, "cached read consumer unusable; creating a new one");
      }
    }
    const c = await this.#createReader(jsm, info, start);
    if (c.pending === 0) {
      // Nothing from `start` on; a cursor past the end is answered with where the stream ends.
      this.#keepReader(info, c.name, c.firstSeq, cached);
      return { messages: [], nextSeq: c.firstSeq, hasMore: false };
    }
    const messages = await pullBatch(
      this.#fabric,
      info.stream,
      c.name,
      Math.min(limit, c.pending),
      PULL_TIMEOUT_MS,
    );
    return this.#afterPull(info, c.name, start, messages, cached);
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
    // Fire and forget: the server would remove it after the idle limit anyway.
    dropConsumer(this.#fabric, stream, name);
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
        this.#tails.set(info.name, s.last_seq);
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
    this.#pages.clear();
    this.#tails.clear();
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
