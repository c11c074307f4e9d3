import { Fabric } from "@loominal/fabric";
import { type RunEvent, randomId, streams, subjects } from "@loominal/protocol";
import { NatsServer } from "@loominal/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RunnerView } from "./runner-view.js";

let server: NatsServer;
let fabric: Fabric;
let view: RunnerView;

beforeAll(async () => {
  server = await NatsServer.start();
  fabric = await Fabric.connect({ nats: { servers: [server.url] } });
  // The Runner creates its stream; the view only reads it.
  const jsm = await fabric.jsm();
  await jsm.streams.add({ name: streams.runnerEvents(), subjects: [subjects.runnerEventsAll()] });
  view = new RunnerView(fabric);
});
afterAll(async () => {
  await fabric.close();
  await server.stop();
});

function event(
  runId: string,
  seq: number,
  type: string,
  data: Record<string, unknown> = { n: seq },
): RunEvent {
  return { run_id: runId, seq, type, at: new Date().toISOString(), data };
}

/** Writes a run's messages as the Runner does: a batch `{"events":[…]}` or a single event (older replicas). */
async function write(runId: string, bodies: unknown[]): Promise<void> {
  for (const [i, body] of bodies.entries())
    await fabric.js.publish(subjects.runnerEvents(runId), JSON.stringify(body), { msgID: `${runId}:m${i}` });
}

async function followed(runId: string): Promise<RunEvent[]> {
  const out: RunEvent[] = [];
  await view.followRunEvents(runId, (e) => out.push(e), AbortSignal.timeout(10_000));
  return out;
}

describe("RunnerView run events", () => {
  it("reads batches and single events alike, one by one in order, to the terminal event", async () => {
    const runId = randomId();
    const all = [
      event(runId, 1, "started", { agent: "a" }),
      event(runId, 2, "usage", { input_tokens: 1, output_tokens: 2 }),
      event(runId, 3, "tool_call", { id: "c1", input: {} }),
      event(runId, 4, "tool_call", { id: "c2", input: {} }),
      event(runId, 5, "tool_result", { id: "c1", output: "x" }),
      event(runId, 6, "tool_result", { id: "c2", output: "y" }),
      event(runId, 7, "done", { status: "completed" }),
    ];
    await write(runId, [
      all[0],
      { events: all.slice(1, 4) },
      { events: [] },
      "not an event",
      { events: all.slice(4, 6) },
      all[6],
    ]);
    expect(await view.runEvents(runId)).toEqual(all);
    expect(await followed(runId)).toEqual(all);
  });

  it("stops following at a terminal event inside a batch", async () => {
    const runId = randomId();
    const all = [event(runId, 1, "text"), event(runId, 2, "error", { status: "failed" })];
    await write(runId, [{ events: all }, event(runId, 3, "text")]);
    expect(await followed(runId)).toEqual(all);
  });
});
