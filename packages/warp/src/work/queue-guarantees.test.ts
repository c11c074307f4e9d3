import { createHash } from "node:crypto";
import { buckets, streams, type WorkEvent, type WorkItem } from "@loominal/protocol";
import { eventually, uniqueProjectId } from "@loominal/testkit";
import { describe, expect, it } from "vitest";
import { offer, useWorkQueues, type WorkAgentOptions } from "./work.test-helper.js";

const work = useWorkQueues();
const agent = (opts: WorkAgentOptions) => work.agent(opts);

function idFor(key: string): string {
  return createHash("sha256").update(key).digest("hex").slice(0, 32);
}

describe("work events come from the ledger's own writes", () => {
  it("replays every transition of an item after the fact, in order, with the revision each wrote", async () => {
    const projectId = uniqueProjectId();
    const { queue: a } = await agent({ projectId });
    const { queue: b } = await agent({ projectId });
    const item = await a.offer(offer("replay"));
    const claimed = await b.claim({ capability: "typescript", timeoutMs: 2_000 });
    expect(claimed?.workId).toBe(item.workId);
    await b.progress(item.workId, "step 1");
    await b.complete(item.workId, "done");

    // A watcher that starts only now still sees the whole history.
    const seen: WorkEvent[] = [];
    const watch = await a.watchEvents((e) => void seen.push(e), {
      workIds: [item.workId],
      deliverFrom: "all",
    });
    try {
      await eventually(() =>
        expect(seen.map((e) => e.type)).toEqual(["offered", "claimed", "progress", "completed"]),
      );
      const revisions = seen.map((e) => e.revision);
      expect(revisions).toEqual([...revisions].sort((x, y) => x - y));
      expect(seen[1]?.agentId).toBe(b.agentId);
      expect(seen[2]?.note).toBe("step 1");
      expect(seen[3]?.item.result).toBe("done");
    } finally {
      await watch.stop();
    }
  });

  it("'latest' gives the current state of every item, then what changes", async () => {
    const projectId = uniqueProjectId();
    const { queue: a } = await agent({ projectId });
    const first = await a.offer(offer("one"));
    const second = await a.offer(offer("two"));
    await a.cancel(second.workId, "not needed");
    const seen: WorkEvent[] = [];
    const watch = await a.watchEvents((e) => void seen.push(e), { deliverFrom: "latest" });
    try {
      await eventually(() =>
        expect(seen.map((e) => `${e.taskId}:${e.type}`).sort()).toEqual(["one:offered", "two:cancelled"]),
      );
      const claimed = await a.claim({ capability: "typescript", timeoutMs: 2_000 });
      expect(claimed?.workId).toBe(first.workId);
      await eventually(() => expect(seen.at(-1)?.type).toBe("claimed"));
    } finally {
      await watch.stop();
    }
  });
});

describe("idempotent offers", () => {
  it("offering the same workId twice stores and queues one item", async () => {
    const projectId = uniqueProjectId();
    const { queue: a } = await agent({ projectId });
    const workId = idFor(`${projectId}/sub-1`);
    const first = await a.offer({ ...offer("sub-1"), workId });
    const again = await a.offer({ ...offer("sub-1"), workId });
    expect(first.workId).toBe(workId);
    expect(again.workId).toBe(workId);
    expect((await a.list({ capability: "typescript" })).items).toHaveLength(1);

    const claimed = await a.claim({ capability: "typescript", timeoutMs: 2_000 });
    expect(claimed?.workId).toBe(workId);
    await a.complete(workId, "ok");
    // The re-publish was a duplicate the stream dropped: nothing else is queued.
    expect(await a.claim({ capability: "typescript", timeoutMs: 300 })).toBeUndefined();
    // Offering it once more after completion answers with the finished item and queues nothing.
    expect((await a.offer({ ...offer("sub-1"), workId })).status).toBe("completed");
  });

  it("refuses a known workId for a different task, and a malformed one", async () => {
    const projectId = uniqueProjectId();
    const { queue: a } = await agent({ projectId });
    const workId = idFor(`${projectId}/x`);
    await a.offer({ ...offer("x"), workId });
    await expect(a.offer({ ...offer("y"), workId })).rejects.toMatchObject({ code: "conflict" });
    await expect(a.offer({ ...offer("x"), workId: "ABC" })).rejects.toMatchObject({ code: "invalid_input" });
  });
});

describe("priority", () => {
  it("a claim takes the highest priority among the offers it sees at once", async () => {
    const projectId = uniqueProjectId();
    const { queue: offerer } = await agent({ projectId });
    await offerer.offer(offer("low", { priority: 1 }));
    await offerer.offer(offer("urgent", { priority: 10 }));
    await offerer.offer(offer("normal", { priority: 5 }));
    await offerer.offer(offer("urgent too", { priority: 10 }));
    await offerer.offer(offer("normal too", { priority: 5 }));
    // The claimer starts after all three are stored, so its first pull sees them at once (a pull
    // already waiting when "low" arrived would be handed "low" alone).
    const { queue: claimer } = await agent({ projectId, prefetch: 8 });
    const order: string[] = [];
    for (let i = 0; i < 5; i++) {
      const c = await claimer.claim({ capability: "typescript", timeoutMs: 2_000 });
      if (!c) break;
      order.push(c.taskId);
      await claimer.complete(c.workId, "ok");
    }
    // Offers of one priority in the order they were offered.
    expect(order).toEqual(["urgent", "urgent too", "normal", "normal too", "low"]);
  });
});

describe("scope is enforced where work is read", () => {
  it("another agent can neither get, list, cancel nor see in the DLQ a private item", async () => {
    const projectId = uniqueProjectId();
    const { queue: owner } = await agent({ projectId });
    const { queue: other } = await agent({ projectId });
    const item = await owner.offer(offer("secret", { scope: "private", contextData: { token: "t" } }));
    expect((await owner.get(item.workId))?.taskId).toBe("secret");
    expect(await other.get(item.workId)).toBeUndefined();
    expect((await other.list({})).items.map((i) => i.workId)).not.toContain(item.workId);
    await expect(other.cancel(item.workId)).rejects.toMatchObject({ code: "not_found" });

    const claimed = await owner.claim({ capability: "typescript", timeoutMs: 2_000 });
    await owner.fail(claimed?.workId ?? "", "broken", false);
    expect((await owner.dlqList({})).letters.map((l) => l.workId)).toEqual([item.workId]);
    expect((await other.dlqList({})).letters).toEqual([]);
    await expect(other.dlqRetry(item.workId)).rejects.toMatchObject({ code: "not_found" });
  });
});

describe("dead letters", () => {
  it("a dead item whose letter was never stored is repaired when its message comes back", async () => {
    const projectId = uniqueProjectId();
    const { queue: first, fabric } = await agent({ projectId, work: { ackWaitMs: 800 } });
    const item = await first.offer(offer("orphan"));
    const claimed = await first.claim({ capability: "typescript", timeoutMs: 2_000 });
    expect(claimed?.workId).toBe(item.workId);

    // The claimer marks the item dead and stops before storing its dead letter (its message is
    // neither acknowledged nor terminated).
    const kv = await fabric.kvm.open(buckets.workLedger(projectId));
    const cur = await kv.get(item.workId);
    const record = cur?.json<WorkItem>();
    if (!cur || !record) throw new Error("ledger record missing");
    const at = new Date().toISOString();
    await kv.update(
      item.workId,
      JSON.stringify({ ...record, status: "dead", dead: { reason: "crashed mid-way", at }, updatedAt: at }),
      cur.revision,
    );
    await first.close();

    // The next claimer gets the message back after the ack wait, stores the letter and takes nothing.
    const { queue: second } = await agent({ projectId, work: { ackWaitMs: 800 } });
    const events: WorkEvent[] = [];
    const watch = await second.watchEvents((e) => void events.push(e));
    try {
      expect(await second.claim({ capability: "typescript", timeoutMs: 3_000 })).toBeUndefined();
      await eventually(async () => {
        const { letters } = await second.dlqList({});
        expect(letters.map((l) => l.workId)).toEqual([item.workId]);
        expect(letters[0]?.reason).toBe("crashed mid-way");
      });
      await eventually(() => expect(events.map((e) => e.type)).toContain("dead"));
      const repaired = await second.get(item.workId);
      expect(repaired?.dead?.dlqSeq).toBeGreaterThan(0);
    } finally {
      await watch.stop();
    }
  });
});

describe("streams and buckets that vanish under a running queue", () => {
  it("creates the work stream and the ledger again, and the next calls succeed", async () => {
    const projectId = uniqueProjectId();
    const { queue: q, fabric } = await agent({ projectId });
    const before = await q.offer(offer("before"));
    expect((await q.claim({ capability: "typescript", timeoutMs: 2_000 }))?.workId).toBe(before.workId);
    await q.complete(before.workId, "ok");

    const jsm = await fabric.jsm();
    await jsm.streams.delete(streams.work(projectId));
    const afterStream = await q.offer(offer("after the work stream vanished"));
    const c1 = await q.claim({ capability: "typescript", timeoutMs: 3_000 });
    expect(c1?.workId).toBe(afterStream.workId);
    await q.complete(afterStream.workId, "ok");

    await jsm.streams.delete(`KV_${buckets.workLedger(projectId)}`);
    const afterLedger = await q.offer(offer("after the ledger vanished"));
    expect((await q.get(afterLedger.workId))?.status).toBe("pending");
    const c2 = await q.claim({ capability: "typescript", timeoutMs: 3_000 });
    expect(c2?.workId).toBe(afterLedger.workId);
    expect((await q.complete(afterLedger.workId, "ok")).status).toBe("completed");
  });
});
