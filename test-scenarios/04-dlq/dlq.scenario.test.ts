import type { WorkEvent } from "@loominal/protocol";
import { eventually, uniqueProjectId } from "@loominal/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ClaimerProcess, openWorkQueue } from "../lib/claimers.js";
import { NATS_MODES, ScenarioNats } from "../lib/nats.js";

describe.each(NATS_MODES)("04 dead-letter queue (%s NATS)", (mode) => {
  const projectId = uniqueProjectId("dlq");
  let nats: ScenarioNats;
  const claimers: ClaimerProcess[] = [];

  beforeAll(async () => {
    nats = await ScenarioNats.start(mode, [
      { name: "driver", projectId },
      { name: "claimer", projectId },
    ]);
  });
  afterAll(async () => {
    for (const c of claimers) await c.kill();
    await nats?.stop();
  });

  it("an item failing 3 times lands in the DLQ, is retried from it and completes", async () => {
    const driver = await openWorkQueue(nats.url, projectId, undefined, nats.auth("driver"));
    try {
      const events: WorkEvent[] = [];
      const watch = await driver.work.watchEvents((e) => {
        events.push(e);
      });
      const item = await driver.work.offer({
        taskId: "cursed",
        description: "fails until fixed",
        capability: "scenario",
      });

      // A claimer that fails every item (retryable), in its own process.
      const failing = new ClaimerProcess({
        ...nats.env("claimer"),
        PROJECT_ID: projectId,
        MODE: "fail",
        MAX_ATTEMPTS: "3",
      });
      claimers.push(failing);
      await eventually(() => expect(failing.of("failed").length).toBe(3), { timeoutMs: 30_000 });
      expect(failing.of("failed").map((l) => [l.attempt, l.status])).toEqual([
        [1, "pending"],
        [2, "pending"],
        [3, "dead"],
      ]);
      await failing.stop();
      expect(failing.of("claimed").length).toBe(3);

      const dead = await driver.work.get(item.workId);
      expect(dead).toMatchObject({ status: "dead", attempts: 3 });
      expect(dead?.dead?.reason).toContain("failure on attempt 3");
      const letters = await driver.work.dlqList({ capability: "scenario" });
      expect(letters.letters.map((l) => l.workId)).toEqual([item.workId]);
      expect((await driver.work.status("scenario")).capabilities[0]).toMatchObject({ queued: 0, dead: 1 });

      // Retried from the DLQ (the bug is "fixed"): a healthy claimer completes it.
      await driver.work.dlqRetry(item.workId, { resetAttempts: true });
      expect((await driver.work.dlqList({})).letters).toEqual([]);
      const healthy = new ClaimerProcess({ ...nats.env("claimer"), PROJECT_ID: projectId, MODE: "complete" });
      claimers.push(healthy);
      await eventually(() => expect(healthy.of("completed").map((l) => l.workId)).toEqual([item.workId]), {
        timeoutMs: 30_000,
      });
      await healthy.stop();
      expect(await driver.work.get(item.workId)).toMatchObject({
        status: "completed",
        attempts: 1,
        completedBy: healthy.agentId,
      });

      await eventually(() => expect(events.some((e) => e.type === "completed")).toBe(true));
      expect(events.map((e) => e.type)).toEqual([
        "offered",
        "claimed",
        "failed",
        "claimed",
        "failed",
        "claimed",
        "failed",
        "dead",
        "retried",
        "claimed",
        "completed",
      ]);
      await watch.stop();
    } finally {
      await driver.close();
    }
  });
});
