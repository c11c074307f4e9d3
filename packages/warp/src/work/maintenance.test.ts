import { spawn } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { WarpConfig, WorkEvent } from "@loominal/protocol";
import { eventually, uniqueProjectId } from "@loominal/testkit";
import { describe, expect, it } from "vitest";
import type { WorkQueue } from "./index.js";
import { offer, useWorkQueues } from "./work.test-helper.js";

const FIXTURE = join(
  dirname(fileURLToPath(import.meta.url)),
  "..",
  "..",
  "test-fixtures",
  "offer-and-crash.mjs",
);

const work = useWorkQueues();

async function agent(projectId: string, settings: Partial<WarpConfig["work"]> = {}): Promise<WorkQueue> {
  return (await work.agent({ projectId, work: settings })).queue;
}

describe("work maintenance", () => {
  it("dead-letters a claim that lapses on its last attempt without any claim traffic", async () => {
    const projectId = uniqueProjectId();
    const offerer = await agent(projectId, { maxAttempts: 1 });
    const worker = await agent(projectId, { maxAttempts: 1 });
    const item = await offerer.offer(offer("abandoned"));
    expect((await worker.claim({ capability: "typescript", timeoutMs: 2_000 }))?.workId).toBe(item.workId);
    // The only worker stops without completing; nobody claims any more.
    await worker.close();
    const events: WorkEvent[] = [];
    const watch = await offerer.watchEvents((e) => void events.push(e), { workIds: [item.workId] });
    offerer.startMaintenance({ intervalMs: 200 });
    await eventually(async () => expect((await offerer.get(item.workId))?.status).toBe("dead"), {
      timeoutMs: 10_000,
    });
    expect(offerer.maintaining).toBe(true);
    await eventually(async () =>
      expect((await offerer.dlqList({})).letters.map((l) => l.workId)).toEqual([item.workId]),
    );
    expect((await offerer.get(item.workId))?.dead?.reason).toContain("lapsed");
    await eventually(() => expect(events.flatMap((e) => e.type)).toEqual(["expired", "dead"]));
    await watch.stop();
    // The message is gone from the queue.
    await eventually(async () =>
      expect((await offerer.status("typescript")).capabilities[0]).toMatchObject({ queued: 0, inFlight: 0 }),
    );
  });

  it("puts a lapsed claim with attempts left back to pending, and a claimer then takes it", async () => {
    const projectId = uniqueProjectId();
    const offerer = await agent(projectId, { maxAttempts: 3 });
    const worker = await agent(projectId, { maxAttempts: 3 });
    const item = await offerer.offer(offer("resumable"));
    await offerer.offer(offer("waiting behind it"));
    expect((await worker.claim({ capability: "typescript", timeoutMs: 2_000 }))?.workId).toBe(item.workId);
    await worker.close();
    offerer.startMaintenance({ intervalMs: 200 });
    await eventually(
      async () => {
        const now = await offerer.get(item.workId);
        expect(now).toMatchObject({ status: "pending", attempts: 1 });
        expect(now?.claim).toBeUndefined();
        expect(now?.lastTransition?.events).toEqual(["expired"]);
      },
      { timeoutMs: 10_000 },
    );
    const next = await agent(projectId, { maxAttempts: 3 });
    const got = new Set<string>();
    for (let i = 0; i < 2; i++) {
      const c = await next.claim({ capability: "typescript", timeoutMs: 3_000 });
      if (c) got.add(c.workId);
    }
    expect(got.has(item.workId)).toBe(true);
    expect((await next.get(item.workId))?.attempts).toBe(2);
  });

  it("runs in one process per project at a time, and another takes over when it stops", async () => {
    const projectId = uniqueProjectId();
    const a = await agent(projectId);
    const b = await agent(projectId);
    a.startMaintenance({ intervalMs: 100 });
    await eventually(() => expect(a.maintaining).toBe(true));
    b.startMaintenance({ intervalMs: 100 });
    await new Promise((r) => setTimeout(r, 400));
    expect(b.maintaining).toBe(false);
    await a.close();
    await eventually(() => expect(b.maintaining).toBe(true));
  });
});

describe("stranded offers", () => {
  it("an offer whose offerer died between the ledger write and the publish is queued by maintenance", async () => {
    const projectId = uniqueProjectId();
    const child = spawn(process.execPath, [FIXTURE, work.server.url, projectId], {
      env: { ...process.env, LOOMINAL_TEST_CRASH_AT: "work-offer-before-publish" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stderr = "";
    child.stderr.on("data", (b: Buffer) => {
      stderr += b.toString();
    });
    const exit = await new Promise<NodeJS.Signals | number | null>((resolve) =>
      child.on("exit", (code, signal) => resolve(signal ?? code)),
    );
    expect(exit, stderr).toBe("SIGKILL");

    const q = await agent(projectId);
    const pending = await q.list({ status: "pending" });
    expect(pending.items.map((i) => i.taskId)).toEqual(["stranded"]);
    const workId = pending.items[0]?.workId ?? "";
    // Nobody was ever offered it.
    expect(await q.claim({ capability: "typescript", timeoutMs: 300 })).toBeUndefined();

    q.startMaintenance({ intervalMs: 100, strandedAfterMs: 300 });
    const claimed = await eventually(
      async () => {
        const c = await q.claim({ capability: "typescript", timeoutMs: 500 });
        expect(c?.workId).toBe(workId);
        return c;
      },
      { timeoutMs: 10_000 },
    );
    expect(claimed?.attempts).toBe(1);
    await q.complete(workId, "done");
  });

  it("publishing an offer again that had been queued after all delivers it once", async () => {
    const projectId = uniqueProjectId();
    const q = await agent(projectId);
    const item = await q.offer(offer("fine"));
    // Right after the offer its journal still names it: a repair now publishes it a second time.
    expect(await q.repairStrandedOffers(0)).toBe(1);
    expect((await q.claim({ capability: "typescript", timeoutMs: 2_000 }))?.workId).toBe(item.workId);
    await q.complete(item.workId, "once");
    expect(await q.claim({ capability: "typescript", timeoutMs: 500 })).toBeUndefined();
    // Once the journal has settled it names nothing, and is removed.
    await new Promise((r) => setTimeout(r, 600));
    expect(await q.repairStrandedOffers(0)).toBe(0);
  });
});

describe("retention", () => {
  it("removes finished items past work.retentionDays and keeps the rest", async () => {
    const projectId = uniqueProjectId();
    // Retention of 1.5 s, in days.
    const q = await agent(projectId, { retentionDays: 1.5 / 86_400 });
    const done = await q.offer(offer("done"));
    await q.claim({ capability: "typescript", timeoutMs: 2_000 });
    await q.complete(done.workId, "ok");
    const cancelled = await q.offer(offer("cancelled"));
    await q.cancel(cancelled.workId);
    const waiting = await q.offer(offer("still pending"));
    expect(await q.purgeFinishedItems()).toBe(0);
    await new Promise((r) => setTimeout(r, 1_600));
    const fresh = await q.offer(offer("fresh"));
    await q.cancel(fresh.workId);
    expect(await q.purgeFinishedItems()).toBe(2);
    expect(await q.get(done.workId)).toBeUndefined();
    expect(await q.get(cancelled.workId)).toBeUndefined();
    expect((await q.get(waiting.workId))?.status).toBe("pending");
    expect((await q.get(fresh.workId))?.status).toBe("cancelled");
    expect((await q.list({})).items.map((i) => i.taskId).sort()).toEqual(["fresh", "still pending"]);
    // Nothing of the removed items is left in the ledger's stream (no delete markers).
    expect(await q.purgeFinishedItems()).toBe(0);
  });
});
