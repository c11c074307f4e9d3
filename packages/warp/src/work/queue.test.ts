import { randomId, type WorkEvent } from "@loominal/protocol";
import { eventually, uniqueProjectId } from "@loominal/testkit";
import { describe, expect, it } from "vitest";
import type { WorkQueue } from "./index.js";
import { offer, useWorkQueues, type WorkAgentOptions } from "./work.test-helper.js";

const work = useWorkQueues();

async function agent(opts: WorkAgentOptions): Promise<WorkQueue> {
  return (await work.agent(opts)).queue;
}

describe("work queue lifecycle", () => {
  it("offers, claims and completes an item, recording each transition in the ledger and as events", async () => {
    const projectId = uniqueProjectId();
    const offerer = await agent({ projectId });
    const claimer = await agent({ projectId });
    const events: WorkEvent[] = [];
    const watch = await offerer.watchEvents((e) => {
      events.push(e);
    });

    const item = await offerer.offer(offer("t1", { priority: 7, contextData: { file: "a.ts" } }));
    expect(item).toMatchObject({
      status: "pending",
      attempts: 0,
      boundary: "default",
      priority: 7,
      scope: "team",
    });
    expect(item.workId).toMatch(/^[0-9a-f]{32}$/);

    const claimed = await claimer.claim({ capability: "typescript", timeoutMs: 2_000 });
    expect(claimed?.workId).toBe(item.workId);
    expect(claimed?.claim.agentId).toBe(claimer.agentId);
    expect(claimed?.attempts).toBe(1);
    expect((await offerer.get(item.workId))?.status).toBe("claimed");

    await claimer.progress(item.workId, "half way");
    const done = await claimer.complete(item.workId, { summary: "ok" });
    expect(done).toMatchObject({
      status: "completed",
      result: { summary: "ok" },
      completedBy: claimer.agentId,
    });

    await eventually(() =>
      expect(events.map((e) => e.type)).toEqual(["offered", "claimed", "progress", "completed"]),
    );
    expect(events[2]?.note).toBe("half way");
    await watch.stop();

    // The message is gone: nothing more to claim.
    expect(await claimer.claim({ capability: "typescript", timeoutMs: 300 })).toBeUndefined();
  });

  it("tells an item's recent transitions, oldest first, and nothing of an item the reader may not see", async () => {
    const projectId = uniqueProjectId();
    const offerer = await agent({ projectId, userId: "u-offerer" });
    const claimer = await agent({ projectId });
    const item = await offerer.offer(offer("h1"));
    await claimer.claim({ capability: "typescript", timeoutMs: 3_000 });
    await claimer.complete(item.workId, "done");
    const history = await offerer.history(item.workId);
    expect(history.map((e) => e.type)).toEqual(["offered", "claimed", "completed"]);
    expect(history.map((e) => e.status)).toEqual(["pending", "claimed", "completed"]);
    expect(history[1]?.agentId).toBe(claimer.agentId);
    expect(history[0]?.revision).toBeLessThan(history[2]?.revision ?? 0);

    const priv = await offerer.offer(offer("h2", { scope: "private" }));
    expect((await offerer.history(priv.workId)).map((e) => e.type)).toEqual(["offered"]);
    expect(await claimer.history(priv.workId)).toEqual([]);
    expect(await offerer.history(randomId())).toEqual([]);
  });

  it("takes many concurrent offers on a fresh queue", async () => {
    const q = await agent({ projectId: uniqueProjectId() });
    const items = await Promise.all(Array.from({ length: 25 }, (_, i) => q.offer(offer(`c${i}`))));
    expect(new Set(items.map((i) => i.workId)).size).toBe(25);
  });

  it("returns undefined when no item comes within the timeout", async () => {
    const q = await agent({ projectId: uniqueProjectId() });
    expect(await q.claim({ capability: "rust", timeoutMs: 0 })).toBeUndefined();
  });

  it("redelivers an item whose claim lapses, and the stale claimer cannot complete it", async () => {
    const projectId = uniqueProjectId();
    const offerer = await agent({ projectId });
    const first = await agent({ projectId });
    const second = await agent({ projectId });
    const item = await offerer.offer(offer("lapse"));

    const a = await first.claim({ capability: "typescript", timeoutMs: 2_000 });
    expect(a?.workId).toBe(item.workId);
    // `first` goes quiet; after the 1 s ack wait the item comes back to `second`.
    const b = await second.claim({ capability: "typescript", timeoutMs: 5_000 });
    expect(b?.workId).toBe(item.workId);
    expect(b?.attempts).toBe(2);

    await expect(first.complete(item.workId, "late")).rejects.toMatchObject({ code: "conflict" });
    await expect(first.progress(item.workId)).rejects.toMatchObject({ code: "conflict" });
    const done = await second.complete(item.workId, "on time");
    expect(done.result).toBe("on time");
    await expect(second.complete(item.workId, "again")).rejects.toMatchObject({ code: "conflict" });
    expect((await offerer.get(item.workId))?.completedBy).toBe(second.agentId);
  });

  it("keeps a claim alive while its claimer reports progress", async () => {
    const projectId = uniqueProjectId();
    const worker = await agent({ projectId });
    const rival = await agent({ projectId });
    const item = await worker.offer(offer("long"));
    expect((await worker.claim({ capability: "typescript", timeoutMs: 2_000 }))?.workId).toBe(item.workId);
    // Progress every 300 ms for 2.5 ack waits; the rival must not get the item meanwhile.
    const rivalClaim = rival.claim({ capability: "typescript", timeoutMs: 2_500 });
    for (let i = 0; i < 8; i++) {
      await new Promise((r) => setTimeout(r, 300));
      await worker.progress(item.workId, `step ${i}`);
    }
    expect(await rivalClaim).toBeUndefined();
    expect((await worker.complete(item.workId, "done")).attempts).toBe(1);
  });

  it("retries a failed item with backoff, then dead-letters it after maxAttempts; retry from the DLQ completes it", async () => {
    const projectId = uniqueProjectId();
    const q = await agent({ projectId, work: { maxAttempts: 3 } });
    const item = await q.offer(offer("flaky"));
    for (let attempt = 1; attempt <= 3; attempt++) {
      const c = await q.claim({ capability: "typescript", timeoutMs: 3_000 });
      expect(c?.workId).toBe(item.workId);
      expect(c?.attempts).toBe(attempt);
      const failed = await q.fail(item.workId, `boom ${attempt}`);
      expect(failed.status).toBe(attempt < 3 ? "pending" : "dead");
    }
    const dead = await q.get(item.workId);
    expect(dead?.status).toBe("dead");
    expect(dead?.dead?.reason).toContain("boom 3");
    expect(await q.claim({ capability: "typescript", timeoutMs: 300 })).toBeUndefined();

    const letters = await q.dlqList({ capability: "typescript" });
    expect(letters.letters.map((l) => l.workId)).toEqual([item.workId]);
    expect((await q.status("typescript")).capabilities[0]?.dead).toBe(1);

    const retried = await q.dlqRetry(item.workId);
    expect(retried).toMatchObject({ status: "pending", attempts: 3, maxAttempts: 4 });
    expect((await q.dlqList({})).letters).toHaveLength(0);
    const again = await q.claim({ capability: "typescript", timeoutMs: 3_000 });
    expect(again?.attempts).toBe(4);
    expect((await q.complete(item.workId, "finally")).status).toBe("completed");
  });

  it("dead-letters a non-retryable failure at once, and discards it", async () => {
    const projectId = uniqueProjectId();
    const q = await agent({ projectId });
    const item = await q.offer(offer("fatal"));
    await q.claim({ capability: "typescript", timeoutMs: 2_000 });
    expect((await q.fail(item.workId, "bad input", false)).status).toBe("dead");
    await expect(q.dlqRetry(randomId())).rejects.toMatchObject({ code: "not_found" });
    expect((await q.dlqDiscard(item.workId)).status).toBe("discarded");
    await expect(q.dlqDiscard(item.workId)).rejects.toMatchObject({ code: "invalid_transition" });
    expect((await q.dlqList({})).letters).toHaveLength(0);
  });

  it("dead-letters an item whose claims lapse maxAttempts times", async () => {
    const projectId = uniqueProjectId();
    const q = await agent({ projectId, work: { maxAttempts: 2 } });
    const item = await q.offer(offer("abandoned"));
    expect((await q.claim({ capability: "typescript", timeoutMs: 2_000 }))?.attempts).toBe(1);
    expect((await q.claim({ capability: "typescript", timeoutMs: 5_000 }))?.attempts).toBe(2);
    // The third delivery finds no attempt left.
    expect(await q.claim({ capability: "typescript", timeoutMs: 2_500 })).toBeUndefined();
    await eventually(async () => expect((await q.get(item.workId))?.status).toBe("dead"));
    expect((await q.dlqList({})).letters[0]?.reason).toContain("lapsed");
  });

  it("cancels a pending item; its message is dropped when delivered", async () => {
    const projectId = uniqueProjectId();
    const q = await agent({ projectId });
    const item = await q.offer(offer("unwanted"));
    expect((await q.cancel(item.workId, "not needed")).status).toBe("cancelled");
    await expect(q.cancel(item.workId)).rejects.toMatchObject({ code: "invalid_transition" });
    expect(await q.claim({ capability: "typescript", timeoutMs: 500 })).toBeUndefined();
    expect((await q.status("typescript")).capabilities[0]?.queued).toBe(0);
  });

  it("enforces private and personal scope at claim time without consuming the item", async () => {
    const projectId = uniqueProjectId();
    const owner = await agent({ projectId, userId: "u-owner" });
    const sameUser = await agent({ projectId, userId: "u-owner" });
    const stranger = await agent({ projectId, userId: "u-other" });
    const priv = await owner.offer(offer("mine", { scope: "private", capability: "secret" }));
    expect(await stranger.claim({ capability: "secret", timeoutMs: 400 })).toBeUndefined();
    expect(await sameUser.claim({ capability: "secret", timeoutMs: 400 })).toBeUndefined();
    expect((await owner.claim({ capability: "secret", timeoutMs: 3_000 }))?.workId).toBe(priv.workId);
    await owner.complete(priv.workId, "ok");

    const pers = await owner.offer(offer("ours", { scope: "personal", capability: "secret" }));
    expect(await stranger.claim({ capability: "secret", timeoutMs: 400 })).toBeUndefined();
    expect((await sameUser.claim({ capability: "secret", timeoutMs: 3_000 }))?.workId).toBe(pers.workId);
  });

  it("lets only the offerer, its user or a coordinator cancel an item", async () => {
    const projectId = uniqueProjectId();
    const owner = await agent({ projectId, userId: "u-owner" });
    const sameUser = await agent({ projectId, userId: "u-owner" });
    const stranger = await agent({ projectId, userId: "u-other" });
    const a = await owner.offer(offer("a"));
    await expect(stranger.cancel(a.workId)).rejects.toMatchObject({ code: "forbidden" });
    expect((await stranger.get(a.workId))?.status).toBe("pending");
    expect((await sameUser.cancel(a.workId)).status).toBe("cancelled");
    const b = await owner.offer(offer("b"));
    expect((await stranger.cancel(b.workId, "by weft", { asCoordinator: true })).status).toBe("cancelled");
    const hidden = await owner.offer(offer("c", { scope: "private" }));
    await expect(stranger.cancel(hidden.workId)).rejects.toMatchObject({ code: "not_found" });
  });

  it("delivers work events only of items the watcher may read, unless it watches as a coordinator", async () => {
    const projectId = uniqueProjectId();
    const owner = await agent({ projectId, userId: "u-owner" });
    const stranger = await agent({ projectId, userId: "u-other" });
    const seen: string[] = [];
    const all: string[] = [];
    const w1 = await stranger.watchEvents((e) => {
      seen.push(e.item.taskId);
    });
    const w2 = await stranger.watchEvents(
      (e) => {
        all.push(e.item.taskId);
      },
      { asCoordinator: true },
    );
    await owner.offer(offer("secret", { scope: "private" }));
    await owner.offer(offer("ours", { scope: "personal" }));
    await owner.offer(offer("shared"));
    await eventually(() => expect(all).toEqual(["secret", "ours", "shared"]));
    await eventually(() => expect(seen).toEqual(["shared"]));
    await w1.stop();
    await w2.stop();
  });

  it("keeps boundaries apart", async () => {
    const projectId = uniqueProjectId();
    const q = await agent({ projectId });
    const item = await q.offer(offer("b", { boundary: "corporate" }));
    expect(await q.claim({ capability: "typescript", timeoutMs: 300 })).toBeUndefined();
    expect(
      (await q.claim({ capability: "typescript", boundary: "corporate", timeoutMs: 2_000 }))?.workId,
    ).toBe(item.workId);
  });

  it("lists items newest first with filters and cursor paging, and reports queue status", async () => {
    const projectId = uniqueProjectId();
    const q = await agent({ projectId });
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await q.offer(offer(`l${i}`))).workId);
    await q.offer(offer("other", { capability: "python" }));
    const claimed = await q.claim({ capability: "python", timeoutMs: 2_000 });
    expect(claimed).toBeDefined();

    const page1 = await q.list({ capability: "typescript", limit: 3 });
    expect(page1.items.map((i) => i.workId)).toEqual([ids[4], ids[3], ids[2]]);
    expect(page1.nextCursor).toBeDefined();
    const page2 = await q.list({
      capability: "typescript",
      limit: 3,
      ...(page1.nextCursor ? { cursor: page1.nextCursor } : {}),
    });
    expect(page2.items.map((i) => i.workId)).toEqual([ids[1], ids[0]]);
    expect((await q.list({ status: "claimed" })).items.map((i) => i.capability)).toEqual(["python"]);

    const status = await q.status();
    const ts = status.capabilities.find((c) => c.capability === "typescript");
    const py = status.capabilities.find((c) => c.capability === "python");
    expect(ts).toMatchObject({ queued: 5, inFlight: 0, dead: 0 });
    expect(py).toMatchObject({ queued: 0, inFlight: 1 });
  });

  it("pages through every item once, most recently written first, whatever revisions they have", async () => {
    const projectId = uniqueProjectId();
    const q = await agent({ projectId });
    const ids: string[] = [];
    for (let i = 0; i < 10; i++) ids.push((await q.offer(offer(`p${i}`))).workId);
    // Items 0–3 get more writes (claim, progress, complete): they become the most recently written.
    for (let i = 0; i < 4; i++) {
      const c = await q.claim({ capability: "typescript", timeoutMs: 2_000 });
      expect(c).toBeDefined();
      if (!c) continue;
      await q.progress(c.workId, "going");
      await q.complete(c.workId, "ok");
    }
    const seen: string[] = [];
    let cursor: string | undefined;
    for (let page = 0; page < 10; page++) {
      const r = await q.list({ limit: 3, ...(cursor ? { cursor } : {}) });
      seen.push(...r.items.map((i) => i.workId));
      cursor = r.nextCursor;
      if (!cursor) break;
    }
    expect([...seen].sort()).toEqual([...ids].sort());
    expect(seen.slice(0, 4).sort()).toEqual(ids.slice(0, 4).sort());
    expect(seen.slice(4)).toEqual(ids.slice(4).reverse());
    expect((await q.list({ status: "completed" })).items).toHaveLength(4);
  });

  it("rejects bad input with the rule that was broken", async () => {
    const q = await agent({ projectId: uniqueProjectId() });
    await expect(q.offer(offer("x", { capability: "Type.Script" }))).rejects.toMatchObject({
      code: "invalid_input",
    });
    await expect(q.offer(offer("x", { priority: 11 }))).rejects.toMatchObject({ code: "invalid_input" });
    await expect(q.claim({ capability: "a.b" })).rejects.toMatchObject({ code: "invalid_name" });
    await expect(q.get("nope")).rejects.toMatchObject({ code: "invalid_input" });
    expect(await q.get(randomId())).toBeUndefined();
    await expect(q.complete(randomId(), "x")).rejects.toMatchObject({ code: "not_found" });
    await expect(q.list({ status: Array(100_000).fill("pending") })).rejects.toMatchObject({
      code: "invalid_input",
    });
    await expect(q.list({ status: ["pending", "nope" as "pending"] })).rejects.toMatchObject({
      code: "invalid_input",
    });
    await expect(q.list({ offeredBy: "a.b" })).rejects.toMatchObject({ code: "invalid_name" });
  });

  it("answers not_found, as get does, when another agent acts on a private item it cannot see", async () => {
    const projectId = uniqueProjectId();
    const owner = await agent({ projectId });
    const stranger = await agent({ projectId });
    const item = await owner.offer(offer("mine", { scope: "private" }));
    expect((await owner.claim({ capability: "typescript", timeoutMs: 2_000 }))?.workId).toBe(item.workId);
    expect(await stranger.get(item.workId)).toBeUndefined();
    await expect(stranger.complete(item.workId, "x")).rejects.toMatchObject({ code: "not_found" });
    await expect(stranger.fail(item.workId, "x")).rejects.toMatchObject({ code: "not_found" });
    await expect(stranger.progress(item.workId)).rejects.toMatchObject({ code: "not_found" });
    expect((await owner.complete(item.workId, "ok")).status).toBe("completed");
  });
});
