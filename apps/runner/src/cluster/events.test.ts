import { Fabric } from "@loominal/fabric";
import { randomId } from "@loominal/protocol";
import { NatsServer } from "@loominal/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadRunnerConfig } from "../env.js";
import { EventLog } from "./events.js";
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

describe("RunEventWriter", () => {
  it("publishes without a round trip per event; confirm() stores again what NATS lost, before the end", async () => {
    // A second connection stands for the replica; the loss is injected in its client (one publish never sent).
    const replica = await Fabric.connect({ nats: { servers: [server.url] } });
    try {
      const runId = randomId();
      const w = new EventLog(replica).writer(runId);
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
      for (let seq = 1; seq <= 5; seq++) await w.publish(seq, "text", { n: seq });
      // A retried publish of the last event is the same event (its message id), not a sixth.
      await w.publish(5, "text", { n: 5 });
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
});
