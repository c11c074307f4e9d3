import type { WorkEvent } from "@loominal/protocol";
import { eventually, NatsServer, uniqueProjectId } from "@loominal/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ClaimerProcess, openWorkQueue } from "../lib/claimers.js";

let nats: NatsServer;
const claimers: ClaimerProcess[] = [];

beforeAll(async () => {
  nats = await NatsServer.start();
});
afterAll(async () => {
  for (const c of claimers) await c.kill();
  await nats?.stop();
});

describe("03 claimer killed", () => {
  it("an item whose claimer is SIGKILLed mid-item is redelivered and completed by another claimer", async () => {
    const projectId = uniqueProjectId("killed");
    const driver = await openWorkQueue(nats.url, projectId);
    try {
      const events: WorkEvent[] = [];
      const watch = await driver.work.watchEvents((e) => {
        events.push(e);
      });
      const item = await driver.work.offer({
        taskId: "fragile",
        description: "survives its claimer",
        capability: "scenario",
      });

      // The first claimer takes the item and keeps extending its claim (well past the 2 s ack wait)…
      const doomed = new ClaimerProcess({
        NATS_URL: nats.url,
        PROJECT_ID: projectId,
        MODE: "hang",
        PROGRESS_MS: "300",
      });
      claimers.push(doomed);
      await eventually(() => expect(doomed.of("claimed").map((l) => l.workId)).toEqual([item.workId]), {
        timeoutMs: 20_000,
      });
      await eventually(
        () => expect(events.filter((e) => e.type === "progress").length).toBeGreaterThanOrEqual(8),
        {
          timeoutMs: 20_000,
        },
      );
      const held = await driver.work.get(item.workId);
      expect(held?.claim?.agentId).toBe(doomed.agentId);

      // …and is killed mid-item. A second claimer, already waiting, gets the item once the claim lapses.
      const rescuer = new ClaimerProcess({ NATS_URL: nats.url, PROJECT_ID: projectId, MODE: "complete" });
      claimers.push(rescuer);
      await eventually(() => expect(rescuer.of("started").length).toBe(1), { timeoutMs: 20_000 });
      expect(rescuer.of("claimed")).toEqual([]);
      await doomed.kill();

      await eventually(() => expect(rescuer.of("completed").map((l) => l.workId)).toEqual([item.workId]), {
        timeoutMs: 30_000,
      });
      const done = await driver.work.get(item.workId);
      expect(done).toMatchObject({ status: "completed", completedBy: rescuer.agentId, attempts: 2 });
      expect(done?.claim?.claimId).not.toBe(held?.claim?.claimId);
      expect(rescuer.of("claimed")[0]?.attempt).toBe(2);

      await eventually(() => expect(events.some((e) => e.type === "completed")).toBe(true));
      const sequence = events.map((e) => e.type).filter((t) => t !== "progress");
      expect(sequence).toEqual(["offered", "claimed", "expired", "claimed", "completed"]);
      expect(events.filter((e) => e.type === "claimed").map((e) => e.agentId)).toEqual([
        doomed.agentId,
        rescuer.agentId,
      ]);
      await watch.stop();
      await rescuer.stop();
    } finally {
      await driver.close();
    }
  });
});
