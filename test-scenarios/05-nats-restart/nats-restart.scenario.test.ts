import type { WorkItem } from "@loominal/protocol";
import { eventually, NatsServer, sleep, uniqueProjectId } from "@loominal/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ClaimerProcess, openWorkQueue } from "../lib/claimers.js";

const ITEMS = 300;
const RESTART_AFTER = 120;

let nats: NatsServer;
const claimers: ClaimerProcess[] = [];

beforeAll(async () => {
  nats = await NatsServer.start();
});
afterAll(async () => {
  for (const c of claimers) await c.kill();
  await nats?.stop();
});

describe("05 nats-server restart", () => {
  it("no acknowledged offer is lost when nats-server restarts mid-run", async () => {
    const projectId = uniqueProjectId("restart");
    const driver = await openWorkQueue(nats.url, projectId);
    try {
      for (let i = 0; i < 2; i++) {
        claimers.push(
          new ClaimerProcess({
            NATS_URL: nats.url,
            PROJECT_ID: projectId,
            LANES: "2",
            WORK_MS: "5",
            PREFETCH: "4",
          }),
        );
      }
      await eventually(() => expect(claimers.every((c) => c.of("started").length === 1)).toBe(true), {
        timeoutMs: 20_000,
      });

      // Offer one item at a time. An offer made while the server is away waits for it to come back (or,
      // past its connection timeout, throws: it was not acknowledged and is simply offered again).
      const acknowledged: WorkItem[] = [];
      let failedOffers = 0;
      let offersAcrossRestart = 0;
      let restart: Promise<void> | undefined;
      let restarted = false;
      const deadline = Date.now() + 90_000;
      while (acknowledged.length < ITEMS && Date.now() < deadline) {
        if (acknowledged.length === RESTART_AFTER && !restart)
          restart = nats.restart().then(() => {
            restarted = true;
          });
        const startedBeforeRestartEnded = restart !== undefined && !restarted;
        try {
          acknowledged.push(
            await driver.work.offer({
              taskId: `r-${acknowledged.length}`,
              description: "must survive",
              capability: "scenario",
            }),
          );
          if (startedBeforeRestartEnded) offersAcrossRestart++;
        } catch {
          failedOffers++;
          await sleep(100);
        }
      }
      await restart;
      expect(acknowledged.length).toBe(ITEMS);
      // The restart really happened under load: offers were in flight while the server was away.
      expect(offersAcrossRestart + failedOffers).toBeGreaterThan(0);

      // Every acknowledged offer ends completed in the ledger…
      await eventually(
        async () => {
          const items = await Promise.all(acknowledged.map((i) => driver.work.get(i.workId)));
          const open = items.filter((i) => i?.status !== "completed");
          expect(open.map((i) => `${i?.workId}:${i?.status}`)).toEqual([]);
        },
        { timeoutMs: 60_000, intervalMs: 500 },
      );
      for (const c of claimers) await c.stop();

      // …and no claimer saw its completion of an item accepted twice.
      const done = claimers.flatMap((c) => c.of("completed").map((l) => l.workId));
      expect(done.length).toBe(new Set(done).size);
      for (const item of acknowledged) expect(done).toContain(item.workId);
    } finally {
      await driver.close();
    }
  });
});
