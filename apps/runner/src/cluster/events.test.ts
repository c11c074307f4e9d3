import { Fabric } from "@loominal/fabric";
import { randomId, streams, subjects } from "@loominal/protocol";
import { eventually, NatsServer } from "@loominal/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadRunnerConfig } from "../env.js";
import { EventLog } from "./events.js";
import type { RunEvent } from "./records.js";
import { openStores } from "./stores.js";

let server: NatsServer;
let fabric: Fabric;
let log: EventLog;

beforeAll(async () => {
  server = await NatsServer.start();
  fabric = await Fabric.connect({ nats: { servers: [server.url] } });
  await openStores(fabric, loadRunnerConfig({}));
  log = new EventLog(fabric);
});
afterAll(async () => {
  await fabric.close();
  await server.stop();
});

/** Every event of the run the stream holds, in stream order. */
async function stored(runId: string): Promise<Array<{ seq: number; type: string }>> {
  const out: Array<{ seq: number; type: string }> = [];
  for await (const e of log.follow(runId, 0, AbortSignal.timeout(5_000)))
    out.push({ seq: e.seq, type: e.type });
  return out;
}

/** The next turn of the event loop: events emitted before it go in one message. */
const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

/** How many messages the stream holds on the run's subject. */
async function messages(runId: string): Promise<number> {
  const jsm = await fabric.jsm();
  const info = await jsm.streams.info(streams.runnerEvents(), {
    subjects_filter: subjects.runnerEvents(runId),
  });
  return info.state.subjects?.[subjects.runnerEvents(runId)] ?? 0;
}

/** Every event of the run, whole, in stream order. */
async function storedEvents(runId: string, after = 0): Promise<RunEvent[]> {
  const out: RunEvent[] = [];
  for await (const e of log.follow(runId, after, AbortSignal.timeout(5_000))) out.push(e);
  return out;
}

/** Drops (never sends) the replica's publishes on the run's subject whose message id is one of `ids`. */
function dropPublishes(replica: Fabric, ids: string[]): string[] {
  const nc = replica.nc;
  const send = nc.publish.bind(nc);
  const dropped: string[] = [];
  nc.publish = (subject, data, options) => {
    const id = options?.headers?.get("Nats-Msg-Id") ?? "";
    if (ids.includes(id) && !dropped.includes(id)) {
      dropped.push(id);
      return;
    }
    send(subject, data, options);
  };
  return dropped;
}

describe("RunEventWriter", () => {
  it("publishes without a round trip per event; confirm() stores again what NATS lost, before the end", async () => {
    // A second connection stands for the replica; the loss is injected in its client (one publish never sent).
    const replica = await Fabric.connect({ nats: { servers: [server.url] } });
    try {
      const runId = randomId();
      // As on a replicated stream (or after a reconnect): confirm() counts what the stream holds.
      const w = new EventLog(replica, 3).writer(runId);
      const nc = replica.nc;
      const send = nc.publish.bind(nc);
      let dropped = 0;
      nc.publish = (subject, data, options) => {
        if (
          subject.endsWith(runId) &&
          dropped === 0 &&
          options?.headers?.get("Nats-Msg-Id") === `${runId}:3`
        ) {
          dropped++;
          return;
        }
        send(subject, data, options);
      };
      // One event per turn of the event loop: each goes alone, as its own message.
      for (let seq = 1; seq <= 5; seq++) {
        await w.publish(seq, "text", { n: seq });
        await nextTurn();
      }
      // A retried publish of the last event is the same event, not a sixth.
      await w.publish(5, "text", { n: 5 });
      await nextTurn();
      expect(dropped).toBe(1);
      await w.confirm();
      await w.publish(6, "done", { status: "completed" }, true);
      const events = await stored(runId);
      // Event 3 was stored late, after the ones the stream already held; nothing twice, nothing missing.
      expect(events.map((e) => e.seq).sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 6]);
      expect(events.map((e) => e.seq)).toEqual([1, 2, 4, 5, 3, 6]);
      expect(events.at(-1)?.type).toBe("done");
    } finally {
      await replica.close();
    }
  });

  it("a run of more events than are kept unconfirmed stores every one, in order", async () => {
    const runId = randomId();
    const w = log.writer(runId);
    for (let seq = 1; seq <= 130; seq++) await w.publish(seq, "text", { n: seq });
    await w.publish(131, "done", { status: "completed" }, true);
    const events = await stored(runId);
    expect(events.map((e) => e.seq)).toEqual(Array.from({ length: 131 }, (_, i) => i + 1));
  });

  it("sends events emitted in one turn as one message, read back one by one, identical and in order", async () => {
    const runId = randomId();
    const w = log.writer(runId);
    const sent: RunEvent[] = [];
    sent.push(await w.publish(1, "started", { agent: "a" }));
    await nextTurn();
    // A usage and the tool calls after it, back to back; then the tools' results, together.
    sent.push(await w.publish(2, "usage", { input_tokens: 3, output_tokens: 4 }));
    for (let i = 0; i < 3; i++) sent.push(await w.publish(3 + i, "tool_call", { id: `c${i}`, input: { i } }));
    await nextTurn();
    for (let i = 0; i < 3; i++)
      sent.push(await w.publish(6 + i, "tool_result", { id: `c${i}`, output: "ok" }));
    await w.confirm();
    sent.push(await w.publish(9, "done", { status: "completed" }, true));
    // started | usage, 3 tool calls | 3 results | done.
    expect(await messages(runId)).toBe(4);
    expect(await storedEvents(runId)).toEqual(sent);
    // `after` counts events, also inside a batch.
    expect((await storedEvents(runId, 3)).map((e) => e.seq)).toEqual([4, 5, 6, 7, 8, 9]);
    const last = await log.last(runId);
    expect(last?.event).toEqual(sent.at(-1));
  });

  it("a lost batch is published again by confirm(): the same events, its message id, nothing twice", async () => {
    const replica = await Fabric.connect({ nats: { servers: [server.url] } });
    try {
      for (const streamReplicas of [1, 3]) {
        const runId = randomId();
        const w = new EventLog(replica, streamReplicas).writer(runId);
        // The middle batch (events 3–5) and the last one (6–7) never reach NATS.
        const dropped = dropPublishes(replica, [`${runId}:3`, `${runId}:6`]);
        const sent: RunEvent[] = [];
        let seq = 0;
        for (const size of [2, 3, 2]) {
          for (let i = 0; i < size; i++) sent.push(await w.publish(++seq, "text", { n: seq }));
          await nextTurn();
        }
        expect(dropped).toEqual([`${runId}:3`, `${runId}:6`]);
        // The first batch went out on the replica's connection; the count is read on another one.
        await eventually(async () => expect(await messages(runId)).toBe(1));
        await w.confirm();
        expect(await messages(runId)).toBe(3);
        // Published again, each batch is stored whole and once (a second confirm changes nothing).
        await w.confirm();
        sent.push(await w.publish(8, "done", { status: "completed" }, true));
        expect(await messages(runId)).toBe(4);
        expect(await storedEvents(runId)).toEqual(sent);
      }
    } finally {
      await replica.close();
    }
  });

  it("append is stored even when the executing replica used the message id its seq would have", async () => {
    // The executing replica numbers its events itself; an append racing it may pick a seq the replica has
    // just published. Stand-in: the stream already holds a message with the id `<runId>:2`.
    const runId = randomId();
    const w = log.writer(runId);
    await w.publish(1, "started", { agent: "a" });
    await w.confirm();
    await fabric.js.publish(subjects.runnerEvents(randomId()), new TextEncoder().encode("{}"), {
      msgID: `${runId}:2`,
    });
    const done = await log.append(runId, "done", { status: "cancelled" });
    expect(done).toMatchObject({ seq: 2, type: "done" });
    expect((await storedEvents(runId)).map((e) => [e.seq, e.type])).toEqual([
      [1, "started"],
      [2, "done"],
    ]);
  });

  it("append after a batch takes the next seq, after the batch's last event", async () => {
    const runId = randomId();
    const w = log.writer(runId);
    for (let seq = 1; seq <= 4; seq++) await w.publish(seq, "text", { n: seq });
    await w.confirm();
    expect(await messages(runId)).toBe(1);
    expect((await log.last(runId))?.event.seq).toBe(4);
    const appended = await log.append(runId, "done", { status: "cancelled", stop_reason: "cancelled" });
    expect(appended?.seq).toBe(5);
    expect((await storedEvents(runId)).map((e) => [e.seq, e.type])).toEqual([
      [1, "text"],
      [2, "text"],
      [3, "text"],
      [4, "text"],
      [5, "done"],
    ]);
    // After the terminal event nothing more is appended.
    expect(await log.append(runId, "error", {})).toBeUndefined();
  });

  it("reads single-event messages (as older replicas write them) and batches alike; skips a malformed one", async () => {
    const runId = randomId();
    const subject = subjects.runnerEvents(runId);
    const event = (seq: number, type: string): RunEvent => ({
      run_id: runId,
      seq,
      type,
      at: new Date().toISOString(),
      data: { n: seq },
    });
    const publish = (body: unknown, id: string) =>
      fabric.js.publish(subject, JSON.stringify(body), { msgID: `${runId}:${id}` });
    const all = [event(1, "started"), event(2, "text"), event(3, "usage"), event(4, "text")];
    await publish(all[0], "1");
    await publish({ events: [all[1], all[2]] }, "2");
    await publish({ events: [] }, "bad-1");
    await publish({ events: [{ seq: "x" }] }, "bad-2");
    await publish(all[3], "4");
    expect((await log.last(runId))?.event).toEqual(all[3]);
    const appended = await log.append(runId, "done", { status: "completed" });
    expect(appended?.seq).toBe(5);
    const read = await storedEvents(runId);
    expect(read.slice(0, 4)).toEqual(all);
    expect(read.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5]);
  });
});
