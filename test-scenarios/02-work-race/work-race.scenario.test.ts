import type { WorkEvent } from "@loominal/protocol";
import { eventually, uniqueProjectId } from "@loominal/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ClaimerProcess, openWorkQueue } from "../lib/claimers.js";
import { NATS_MODES, ScenarioNats } from "../lib/nats.js";

const CLAIMERS = 5;

describe.each(NATS_MODES)("02 work race (%s NATS)", (mode) => {
  // The credentialed run proves the permissions; the open one carries the full load.
  const ITEMS = mode === "open" ? 500 : 200;
  const projectId = uniqueProjectId("race");
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

  it("five claimer processes race over the items and each item is completed exactly once", async () => {
    const driver = await openWorkQueue(nats.url, projectId, undefined, nats.auth("driver"));
    try {
      const events: WorkEvent[] = [];
      const watch = await driver.work.watchEvents((e) => {
        events.push(e);
      });
      // Claimers start before the offers so they really race for each one.
      for (let i = 0; i < CLAIMERS; i++) {
        claimers.push(
          new ClaimerProcess({ ...nats.env("claimer"), PROJECT_ID: projectId, LANES: "4", PREFETCH: "1" }),
        );
      }
      await eventually(() => expect(claimers.every((c) => c.of("started").length === 1)).toBe(true), {
        timeoutMs: 20_000,
      });

      const offered = new Set<string>();
      for (let i = 0; i < ITEMS; i += 25) {
        const batch = await Promise.all(
          Array.from({ length: Math.min(25, ITEMS - i) }, (_, j) =>
            driver.work.offer({ taskId: `race-${i + j}`, description: "race item", capability: "scenario" }),
          ),
        );
        for (const item of batch) offered.add(item.workId);
      }
      expect(offered.size).toBe(ITEMS);

      const completions = () => claimers.flatMap((c) => c.of("completed"));
      await eventually(() => expect(completions().length).toBeGreaterThanOrEqual(ITEMS), {
        timeoutMs: 90_000,
        intervalMs: 200,
      });
      for (const c of claimers) await c.stop();

      // Each item reported completed by exactly one claimer, and nothing that was not offered.
      const done = completions().map((l) => l.workId);
      expect(done.length).toBe(ITEMS);
      expect(new Set(done)).toEqual(offered);
      // The work spread over the claimers (a race, not one winner).
      expect(claimers.filter((c) => c.of("completed").length > 0).length).toBeGreaterThan(1);

      // The ledger agrees: every item completed, by the claimer that reported it.
      const byClaimer = new Map(
        claimers.flatMap((c) => c.of("completed").map((l) => [l.workId, c.agentId] as const)),
      );
      for (const workId of offered) {
        const item = await driver.work.get(workId);
        expect(item?.status).toBe("completed");
        expect(item?.completedBy).toBe(byClaimer.get(workId));
      }
      // And the event stream has exactly one completion per item.
      await eventually(() => expect(events.filter((e) => e.type === "completed").length).toBe(ITEMS), {
        timeoutMs: 10_000,
      });
      const completedEvents = events.filter((e) => e.type === "completed").map((e) => e.workId);
      expect(new Set(completedEvents).size).toBe(ITEMS);
      await watch.stop();

      const status = await driver.work.status("scenario");
      expect(status.capabilities[0]).toMatchObject({ queued: 0, inFlight: 0, dead: 0 });
    } finally {
      await driver.close();
    }
  });
});
