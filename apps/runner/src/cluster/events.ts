import { type Fabric, jsonCodec } from "@loominal/fabric";
import { streams, subjects } from "@loominal/protocol";
import { DeliverPolicy, JetStreamApiError } from "@nats-io/jetstream";
import { headers } from "@nats-io/transport-node";
import { type RunEvent, runEventMessageSchema, runEventsOf, TERMINAL_EVENTS } from "./records.js";

const codec = jsonCodec(runEventMessageSchema);
const utf8 = new TextEncoder();

/** JetStream API error: no message found (get by subject). */
const JS_NO_MESSAGE = 10037;
/** JetStream API error: wrong last sequence (expected last subject sequence). */
const JS_WRONG_LAST_SEQ = 10071;

/**
 * The events of every run, on stream runner_events, one subject per run. The replica executing a run
 * is its only writer while it runs and numbers the events 1, 2, 3…; it sends events emitted back to back
 * as one message `{"events":[…]}` (consecutive seqs), a lone event as the event itself. The message id
 * `<runId>:<first seq>` makes a retried publish a duplicate rather than a second message. Anyone else (the
 * reaper, a cancel for a dead owner) appends one event after the last one with an expected-last-sequence
 * check. Readers take both kinds of message (a replica of an older version writes single events only).
 */
export class EventLog {
  #fabric: Fabric;
  #streamReplicas: number;
  /** Bumped whenever the connection stops being connected: a publish before a bump may have been lost. */
  #epoch = 0;

  /** `streamReplicas`: replicas of the runner_events stream (RUNNER_NATS_REPLICAS). */
  constructor(fabric: Fabric, streamReplicas = 1) {
    this.#fabric = fabric;
    this.#streamReplicas = streamReplicas;
    fabric.onStateChange((state) => {
      if (state !== "connected") this.#epoch++;
    });
  }

  get epoch(): number {
    return this.#epoch;
  }

  /** The writer of one run's events, for the replica executing it (see RunEventWriter). */
  writer(runId: string): RunEventWriter {
    return new RunEventWriter(this.#fabric, runId, { log: this, streamReplicas: this.#streamReplicas });
  }

  async publish(runId: string, seq: number, type: string, data: Record<string, unknown>): Promise<RunEvent> {
    const event: RunEvent = { run_id: runId, seq, type, at: new Date().toISOString(), data };
    await this.#fabric.js.publish(subjects.runnerEvents(runId), codec.encode(event), {
      msgID: `${runId}:${seq}`,
    });
    return event;
  }

  /**
   * Appends an event after the run's last one (for writers other than the executing replica). Its message
   * id is its own (`<runId>:<seq>:append`): the executing replica may still be publishing events it numbered
   * itself, and an append sharing the id of one of them would be taken for a duplicate and never stored
   * (a cancelled run whose `done` went missing kept its followers waiting). A duplicate answer all the same
   * counts as a lost race: the last event is read again.
   */
  async append(runId: string, type: string, data: Record<string, unknown>): Promise<RunEvent | undefined> {
    for (let attempt = 0; attempt < 10; attempt++) {
      const last = await this.last(runId);
      if (last && TERMINAL_EVENTS.has(last.event.type)) return undefined;
      const event: RunEvent = {
        run_id: runId,
        seq: (last?.event.seq ?? 0) + 1,
        type,
        at: new Date().toISOString(),
        data,
      };
      const h = headers();
      h.set("Nats-Expected-Last-Subject-Sequence", String(last?.streamSeq ?? 0));
      try {
        const ack = await this.#fabric.js.publish(subjects.runnerEvents(runId), codec.encode(event), {
          msgID: `${runId}:${event.seq}:append`,
          headers: h,
        });
        if (!ack.duplicate) return event;
      } catch (err) {
        if (!(err instanceof JetStreamApiError && err.code === JS_WRONG_LAST_SEQ)) throw err;
      }
    }
    return undefined;
  }

  /** The run's last event (the last of its last message) and that message's stream sequence. */
  async last(runId: string): Promise<{ event: RunEvent; streamSeq: number } | undefined> {
    const jsm = await this.#fabric.jsm();
    try {
      const m = await jsm.streams.getMessage(streams.runnerEvents(), {
        last_by_subj: subjects.runnerEvents(runId),
      });
      if (!m) return undefined;
      const events = runEventsOf(codec.decode(m.data, `event of run ${runId}`));
      return { event: events[events.length - 1] as RunEvent, streamSeq: m.seq };
    } catch (err) {
      if (err instanceof JetStreamApiError && err.code === JS_NO_MESSAGE) return undefined;
      throw err;
    }
  }

  /**
   * The run's events with seq > after, then every new one, until a terminal event (done or error) or
   * the signal aborts. Reads through an ordered consumer, so nothing published meanwhile is missed.
   */
  async *follow(runId: string, after: number, signal: AbortSignal): AsyncGenerator<RunEvent> {
    const consumer = await this.#fabric.js.consumers.get(streams.runnerEvents(), {
      filter_subjects: subjects.runnerEvents(runId),
      deliver_policy: DeliverPolicy.All,
    });
    const messages = await consumer.consume({ max_messages: 256 });
    const stop = () => void messages.stop();
    signal.addEventListener("abort", stop, { once: true });
    try {
      for await (const m of messages) {
        const parsed = codec.safeDecode(m.data, `event of run ${runId}`);
        if (!parsed.ok) continue;
        for (const e of runEventsOf(parsed.value)) {
          if (e.seq > after) yield e;
          if (TERMINAL_EVENTS.has(e.type)) return;
        }
      }
    } finally {
      signal.removeEventListener("abort", stop);
      await messages.close().catch(() => undefined);
    }
  }
}

/** Events a run may have published and not yet confirmed stored before the writer checks (bounds memory). */
const CONFIRM_EVERY = 64;
/** A batch is sent once it holds this many events… */
const BATCH_MAX_EVENTS = 32;
/** …or before an event would take its JSON past this many characters (a larger event goes alone). */
const BATCH_MAX_CHARS = 64 * 1024;

interface SentMessage {
  /** The seq of its first event: the message id is `<runId>:<first>`. */
  first: number;
  data: Uint8Array;
}

/**
 * The executing replica's writer of one run's events. Events emitted before the next turn of the event
 * loop (a usage and the tool calls after it, the results of parallel tools) are sent together, as one
 * message `{"events":[…]}`, once that turn comes (or once BATCH_MAX_EVENTS / BATCH_MAX_CHARS are
 * reached); a lone event is sent as itself. The message id is `<runId>:<first seq>`. A message is a
 * plain publish on the run's subject, not a JetStream request: the run does not wait a round trip, and
 * NATS carries no acknowledgement for each. On one connection the server takes them in order.
 * `confirm()` — called before the run's end is written, and every CONFIRM_EVERY events — sends what is
 * buffered and checks it is all stored. On a one-replica stream, with the connection up since the oldest
 * unconfirmed message was sent, the last event stored on the run's subject being the last one sent proves
 * the rest (one direct get; the stream takes one connection's messages in order, and only a dropped
 * connection loses some). Otherwise (that check failed, a reconnect happened, a send failed, or a
 * replicated stream, whose leader may change and drop messages), it asks the stream how many messages the
 * run's subject holds; when fewer than sent, it reads which are stored and publishes the missing ones
 * again — the same bytes and message id — each acknowledged this time. So a run's end is never recorded
 * before its events are stored. A missing message stored late comes after the ones stored meanwhile
 * (followers see its events out of order).
 */
export class RunEventWriter {
  readonly runId: string;
  #fabric: Fabric;
  #subject: string;
  /** Events not yet sent (JSON each), seqs `#last - #buffer.length + 1 … #last`. */
  #buffer: string[] = [];
  #bufferChars = 0;
  #flushScheduled = false;
  /** Messages sent and not yet confirmed stored. */
  #unconfirmed: SentMessage[] = [];
  #unconfirmedEvents = 0;
  /** Messages this writer sent on the run's subject (the stream should hold as many). */
  #sent = 0;
  /** The last seq taken (buffered, sent or stored). */
  #last = 0;
  /** A send threw: confirm() counts what the stream holds. */
  #sendFailed = false;
  #log: EventLog | undefined;
  #streamReplicas: number;
  /** The connection epoch when the oldest unconfirmed message was sent. */
  #epochOfFirst = 0;

  constructor(fabric: Fabric, runId: string, options: { log?: EventLog; streamReplicas?: number } = {}) {
    this.#fabric = fabric;
    this.runId = runId;
    this.#subject = subjects.runnerEvents(runId);
    this.#log = options.log;
    this.#streamReplicas = options.streamReplicas ?? 1;
  }

  /**
   * Takes the event numbered `seq` (1, 2, 3… in order; a retry may repeat the last, which is then not
   * sent again) and sends it with the others emitted in this turn. `acked`: sent alone as a JetStream
   * request, resolved once stored, after `confirm()` (the terminal event).
   */
  async publish(seq: number, type: string, data: Record<string, unknown>, acked = false): Promise<RunEvent> {
    const event: RunEvent = { run_id: this.runId, seq, type, at: new Date().toISOString(), data };
    if (acked) {
      await this.confirm();
      await this.#fabric.js.publish(this.#subject, codec.encode(event), { msgID: `${this.runId}:${seq}` });
      if (seq > this.#last) {
        this.#last = seq;
        this.#sent++;
      }
      return event;
    }
    if (seq <= this.#last) return event;
    const json = JSON.stringify(event);
    if (this.#buffer.length > 0 && this.#bufferChars + json.length > BATCH_MAX_CHARS) this.#flush();
    this.#buffer.push(json);
    this.#bufferChars += json.length + 1;
    this.#last = seq;
    if (this.#buffer.length >= BATCH_MAX_EVENTS) this.#flush();
    else if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      setImmediate(() => this.#flush());
    }
    if (this.#unconfirmedEvents + this.#buffer.length >= CONFIRM_EVERY) await this.confirm();
    return event;
  }

  /** Sends the buffered events as one message (never throws: a failed send is found by confirm()). */
  #flush(): void {
    this.#flushScheduled = false;
    const n = this.#buffer.length;
    if (n === 0) return;
    const first = this.#last - n + 1;
    const data = utf8.encode(
      n === 1 ? (this.#buffer[0] as string) : `{"events":[${this.#buffer.join(",")}]}`,
    );
    this.#buffer = [];
    this.#bufferChars = 0;
    if (this.#unconfirmed.length === 0) this.#epochOfFirst = this.#log?.epoch ?? 0;
    this.#unconfirmed.push({ first, data });
    this.#unconfirmedEvents += n;
    this.#sent++;
    const h = headers();
    h.set("Nats-Msg-Id", `${this.runId}:${first}`);
    try {
      this.#fabric.nc.publish(this.#subject, data, { headers: h });
    } catch {
      this.#sendFailed = true;
    }
  }

  /** Resolves once every event taken so far is stored (publishing again what is missing). */
  async confirm(): Promise<void> {
    this.#flush();
    if (this.#unconfirmed.length === 0) return;
    const jsm = await this.#fabric.jsm();
    if (
      this.#log !== undefined &&
      this.#streamReplicas === 1 &&
      !this.#sendFailed &&
      this.#epochOfFirst === this.#log.epoch &&
      this.#fabric.isConnected
    ) {
      const last = await this.#lastStoredSeq(jsm);
      if (last >= this.#last && this.#epochOfFirst === this.#log.epoch) {
        this.#confirmed();
        return;
      }
    }
    const info = await jsm.streams.info(streams.runnerEvents(), { subjects_filter: this.#subject });
    const stored = info.state.subjects?.[this.#subject] ?? 0;
    if (stored < this.#sent) {
      const have = await this.#storedFirstSeqs(stored);
      for (const m of this.#unconfirmed) {
        if (have.has(m.first)) continue;
        await this.#fabric.js.publish(this.#subject, m.data, { msgID: `${this.runId}:${m.first}` });
      }
    }
    this.#confirmed();
  }

  #confirmed(): void {
    this.#unconfirmed = [];
    this.#unconfirmedEvents = 0;
    this.#sendFailed = false;
  }

  async #lastStoredSeq(jsm: Awaited<ReturnType<Fabric["jsm"]>>): Promise<number> {
    try {
      const m = await jsm.direct.getMessage(streams.runnerEvents(), { last_by_subj: this.#subject });
      if (!m) return 0;
      const parsed = codec.safeDecode(m.data, `event of run ${this.runId}`);
      return parsed.ok ? (runEventsOf(parsed.value).at(-1)?.seq ?? 0) : 0;
    } catch (err) {
      if (err instanceof JetStreamApiError && err.code === JS_NO_MESSAGE) return 0;
      throw err;
    }
  }

  /** The first seqs of the run's messages the stream holds (only after a loss: reads them all). */
  async #storedFirstSeqs(count: number): Promise<Set<number>> {
    const out = new Set<number>();
    if (count === 0) return out;
    const consumer = await this.#fabric.js.consumers.get(streams.runnerEvents(), {
      filter_subjects: this.#subject,
      deliver_policy: DeliverPolicy.All,
    });
    const batch = await consumer.fetch({ max_messages: count, expires: 5_000 });
    for await (const m of batch) {
      const parsed = codec.safeDecode(m.data, `event of run ${this.runId}`);
      if (parsed.ok) out.add((runEventsOf(parsed.value)[0] as RunEvent).seq);
      if (m.info.pending === 0) break;
    }
    return out;
  }
}
