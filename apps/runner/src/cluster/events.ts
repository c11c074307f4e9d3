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
