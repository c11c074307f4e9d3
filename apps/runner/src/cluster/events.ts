import { type Fabric, jsonCodec } from "@loominal/fabric";
import { streams, subjects } from "@loominal/protocol";
import { DeliverPolicy, JetStreamApiError } from "@nats-io/jetstream";
import { headers } from "@nats-io/transport-node";
import { type RunEvent, runEventSchema, TERMINAL_EVENTS } from "./records.js";

const codec = jsonCodec(runEventSchema);

/** JetStream API error: no message found (get by subject). */
const JS_NO_MESSAGE = 10037;
/** JetStream API error: wrong last sequence (expected last subject sequence). */
const JS_WRONG_LAST_SEQ = 10071;

/**
 * The events of every run, on stream runner_events, one subject per run. The replica executing a run
 * is its only writer while it runs and numbers the events 1, 2, 3…; the message id `<runId>:<seq>` makes
 * a retried publish a duplicate rather than a second event. Anyone else (the reaper, a cancel for a dead
 * owner) appends after the last one with an expected-last-sequence check.
 */
export class EventLog {
  #fabric: Fabric;

  constructor(fabric: Fabric) {
    this.#fabric = fabric;
  }

  /** The writer of one run's events, for the replica executing it (see RunEventWriter). */
  writer(runId: string): RunEventWriter {
    return new RunEventWriter(this.#fabric, runId);
  }

  async publish(runId: string, seq: number, type: string, data: Record<string, unknown>): Promise<RunEvent> {
    const event: RunEvent = { run_id: runId, seq, type, at: new Date().toISOString(), data };
    await this.#fabric.js.publish(subjects.runnerEvents(runId), codec.encode(event), {
      msgID: `${runId}:${seq}`,
    });
    return event;
  }

  /** Appends an event after the run's last one (for writers other than the executing replica). */
  async append(runId: string, type: string, data: Record<string, unknown>): Promise<RunEvent | undefined> {
    for (let attempt = 0; attempt < 5; attempt++) {
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
        await this.#fabric.js.publish(subjects.runnerEvents(runId), codec.encode(event), {
          msgID: `${runId}:${event.seq}`,
          headers: h,
        });
        return event;
      } catch (err) {
        if (!(err instanceof JetStreamApiError && err.code === JS_WRONG_LAST_SEQ)) throw err;
      }
    }
    return undefined;
  }

  async last(runId: string): Promise<{ event: RunEvent; streamSeq: number } | undefined> {
    const jsm = await this.#fabric.jsm();
    try {
      const m = await jsm.streams.getMessage(streams.runnerEvents(), {
        last_by_subj: subjects.runnerEvents(runId),
      });
      if (!m) return undefined;
      return { event: codec.decode(m.data, `event of run ${runId}`), streamSeq: m.seq };
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
        const e = parsed.value;
        if (e.seq > after) yield e;
        if (TERMINAL_EVENTS.has(e.type)) return;
      }
    } finally {
      signal.removeEventListener("abort", stop);
      await messages.close().catch(() => undefined);
    }
  }
}

/** Events a run may have published and not yet confirmed stored before the writer checks (bounds memory). */
const CONFIRM_EVERY = 64;

/**
 * The executing replica's writer of one run's events. An event is a plain publish on the run's subject
 * (with its message id), not a JetStream request: the run does not wait a round trip per event, and NATS
 * carries no acknowledgement for each. On one connection the server takes them in order. `confirm()` —
 * called before the run's end is written, and every CONFIRM_EVERY events — asks the stream how many
 * messages the run's subject holds; when fewer than published (a publish lost with a connection, or
 * dropped by a stream changing leader), it reads which are stored and publishes the missing ones again,
 * each acknowledged this time. So a run's end is never recorded before its events are stored. A missing
 * event stored late comes after the ones stored meanwhile (followers see it out of order).
 */
export class RunEventWriter {
  readonly runId: string;
  #fabric: Fabric;
  #subject: string;
  #unconfirmed: Array<{ seq: number; data: Uint8Array }> = [];
  #last = 0;

  constructor(fabric: Fabric, runId: string) {
    this.#fabric = fabric;
    this.runId = runId;
    this.#subject = subjects.runnerEvents(runId);
  }

  /**
   * Publishes the event numbered `seq` (1, 2, 3… in order; a retry may repeat the last). `acked`: as a
   * JetStream request, resolved once stored (the terminal event, after `confirm()`).
   */
  async publish(seq: number, type: string, data: Record<string, unknown>, acked = false): Promise<RunEvent> {
    const event: RunEvent = { run_id: this.runId, seq, type, at: new Date().toISOString(), data };
    const bytes = codec.encode(event);
    if (acked) {
      await this.confirm();
      await this.#fabric.js.publish(this.#subject, bytes, { msgID: `${this.runId}:${seq}` });
      this.#last = Math.max(this.#last, seq);
      return event;
    }
    const h = headers();
    h.set("Nats-Msg-Id", `${this.runId}:${seq}`);
    this.#fabric.nc.publish(this.#subject, bytes, { headers: h });
    if (seq > this.#last) {
      this.#last = seq;
      this.#unconfirmed.push({ seq, data: bytes });
    }
    if (this.#unconfirmed.length >= CONFIRM_EVERY) await this.confirm();
    return event;
  }

  /** Resolves once every event published so far is stored (publishing again what is missing). */
  async confirm(): Promise<void> {
    if (this.#unconfirmed.length === 0) return;
    const jsm = await this.#fabric.jsm();
    const info = await jsm.streams.info(streams.runnerEvents(), { subjects_filter: this.#subject });
    const stored = info.state.subjects?.[this.#subject] ?? 0;
    if (stored < this.#last) {
      const have = await this.#storedSeqs(stored);
      for (const e of this.#unconfirmed) {
        if (have.has(e.seq)) continue;
        await this.#fabric.js.publish(this.#subject, e.data, { msgID: `${this.runId}:${e.seq}` });
      }
    }
    this.#unconfirmed = [];
  }

  /** The seqs of the run's events the stream holds (only after a loss: reads them all). */
  async #storedSeqs(count: number): Promise<Set<number>> {
    const out = new Set<number>();
    if (count === 0) return out;
    const consumer = await this.#fabric.js.consumers.get(streams.runnerEvents(), {
      filter_subjects: this.#subject,
      deliver_policy: DeliverPolicy.All,
    });
    const batch = await consumer.fetch({ max_messages: count, expires: 5_000 });
    for await (const m of batch) {
      const parsed = codec.safeDecode(m.data, `event of run ${this.runId}`);
      if (parsed.ok) out.add(parsed.value.seq);
      if (m.info.pending === 0) break;
    }
    return out;
  }
}
