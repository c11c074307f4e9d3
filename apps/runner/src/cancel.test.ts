import { eventually } from "@loominal/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Cluster, getRun, globalActive, postRun } from "./cluster.test-helper.js";
import { type Replica, readSse } from "./replica.test-helper.js";

let cluster: Cluster;

beforeAll(async () => {
  // A replica TTL well above how long a test keeps a replica frozen: a frozen owner stays alive here, it
  // is only slow (failover.test.ts freezes one beyond the TTL).
  cluster = await Cluster.start({ RUNNER_REPLICA_TTL_MS: "20000", RUNNER_MAX_CONCURRENT_RUNS: "8" });
});
afterAll(async () => {
  await cluster?.stop();
});

/** A looping run on `owner` (the only replica when it is posted), running. */
async function runningOn(owner: Replica, user: string): Promise<string> {
  const res = await postRun(owner, { agent: "slow", prompt: "[loop]", user_id: user });
  expect(res.status).toBe(202);
  const id = String(res.body.run_id);
  await eventually(async () => expect(await getRun(owner, id)).toMatchObject({ status: "running" }));
  expect((await getRun(owner, id)).replica_id).toBe(owner.replicaId);
  return id;
}

describe("cancel does not wait for the replica that runs the run", () => {
  it("acknowledges while the owner is frozen; the run ends cancelled; the owner frees its slots once, on thaw", async () => {
    const owner = await cluster.replica();
    const id = await runningOn(owner, "frozen");
    const other = await cluster.replica();
    owner.freeze();
    try {
      const res = await other.fetch(`/v1/runs/${id}/cancel`, { json: { reason: "owner frozen" } });
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({
        run_id: id,
        status: "cancelled",
        stop_reason: "cancelled: owner frozen",
        replica_id: owner.replicaId,
      });
      // Durable: every replica reads it so, and a second cancel finds it ended.
      expect(await getRun(other, id)).toMatchObject({ status: "cancelled" });
      expect((await other.fetch(`/v1/runs/${id}/cancel`, { method: "POST" })).status).toBe(409);
      // The run's followers see its end now, not when the owner wakes.
      const events = await readSse(await other.fetch(`/v1/runs/${id}/events`));
      expect(events.at(-1)).toMatchObject({ event: "done", data: { status: "cancelled" } });
      // Its slots stay held while its loop may still be running (on the frozen owner).
      expect(await cluster.quotaRuns()).toEqual([id]);
      // Another run of the same user, admitted meanwhile, runs on the other replica.
      const next = await postRun(other, { agent: "slow", prompt: "[loop]", user_id: "frozen" });
      expect(next.status).toBe(202);
      const nextId = String(next.body.run_id);
      await eventually(async () => expect(await getRun(other, nextId)).toMatchObject({ status: "running" }));
      owner.thaw();
      // The owner hears of the cancel, stops the loop and frees the run's slots — and only the run's: the
      // other run keeps its quota slot and its global slot.
      await eventually(async () => {
        expect(await cluster.quotaRuns()).toEqual([nextId]);
        expect(await globalActive(other)).toBe(1);
      });
      expect(await getRun(other, id)).toMatchObject({
        status: "cancelled",
        stop_reason: "cancelled: owner frozen",
      });
      const after = await readSse(await other.fetch(`/v1/runs/${id}/events`));
      expect(after.filter((e) => e.event === "done" || e.event === "error")).toHaveLength(1);
      expect(after.map((e) => e.data.seq)).toEqual(after.map((_, i) => i + 1));
      expect((await other.fetch(`/v1/runs/${nextId}/cancel`, { method: "POST" })).status).toBe(200);
      await eventually(async () => {
        expect(await cluster.quotaRuns()).toEqual([]);
        expect(await globalActive(other)).toBe(0);
      });
    } finally {
      owner.thaw();
    }
    await Promise.all([owner.term(), other.term()]);
  });

  it("acknowledges while the owner is frozen, and the owner then dies: the reaper frees the slots", async () => {
    const owner = await cluster.replica();
    const id = await runningOn(owner, "frozen-dies");
    const other = await cluster.replica();
    owner.freeze();
    const res = await other.fetch(`/v1/runs/${id}/cancel`, { method: "POST" });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ status: "cancelled", stop_reason: "cancelled: requested" });
    await owner.kill();
    await eventually(
      async () => {
        expect(await cluster.quotaRuns()).toEqual([]);
        expect(await globalActive(other)).toBe(0);
      },
      { timeoutMs: 40_000 },
    );
    expect(await getRun(other, id)).toMatchObject({ status: "cancelled" });
    await other.term();
  });

  it("cancel by the owner itself, and of a queued run, answer with the cancelled record", async () => {
    const owner = await cluster.replica({ RUNNER_REPLICA_MAX_RUNS: "1" });
    const id = await runningOn(owner, "self");
    const res = await owner.fetch(`/v1/runs/${id}/cancel`, { json: { reason: "mine" } });
    expect(await res.json()).toMatchObject({ status: "cancelled", stop_reason: "cancelled: mine" });
    await eventually(async () => expect(await cluster.quotaRuns()).toEqual([]));
    // With the owner's one slot taken, a second run waits in the queue; cancelling it frees its slot.
    const busy = await runningOn(owner, "self-busy");
    const queued = await postRun(owner, { agent: "slow", prompt: "[loop]", user_id: "self-queued" });
    const queuedId = String(queued.body.run_id);
    expect(await getRun(owner, queuedId)).toMatchObject({ status: "queued" });
    const q = await owner.fetch(`/v1/runs/${queuedId}/cancel`, { method: "POST" });
    expect(await q.json()).toMatchObject({ status: "cancelled", started_at: null });
    await owner.fetch(`/v1/runs/${busy}/cancel`, { method: "POST" });
    await eventually(async () => {
      expect(await cluster.quotaRuns()).toEqual([]);
      expect(await globalActive(owner)).toBe(0);
    });
    expect(
      (await owner.fetch("/v1/runs/0123456789abcdef0123456789abcdef/cancel", { method: "POST" })).status,
    ).toBe(404);
    await owner.term();
  });

  it("a replica that read the run cancels it on what it read; if the run ended since, it answers 409", async () => {
    const owner = await cluster.replica();
    const fresh = await runningOn(owner, "read-first");
    const ended = await runningOn(owner, "read-stale");
    const other = await cluster.replica();
    // `other` reads both runs (and remembers their revisions); then the owner itself cancels one of them.
    expect(await getRun(other, fresh)).toMatchObject({ status: "running" });
    expect(await getRun(other, ended)).toMatchObject({ status: "running" });
    const own = await owner.fetch(`/v1/runs/${ended}/cancel`, { json: { reason: "by the owner" } });
    expect(own.status).toBe(200);
    // What `other` read of that run is stale: its compare-and-set fails, and the stored record says ended.
    const late = await other.fetch(`/v1/runs/${ended}/cancel`, { method: "POST" });
    expect(late.status).toBe(409);
    expect(await late.json()).toMatchObject({ code: "run_finished", status: "cancelled" });
    expect(await getRun(owner, ended)).toMatchObject({ stop_reason: "cancelled: by the owner" });
    // What it read of the other run is current: the cancel lands, the owner stops the run and frees its slot.
    const res = await other.fetch(`/v1/runs/${fresh}/cancel`, { method: "POST" });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ run_id: fresh, status: "cancelled" });
    expect(await getRun(owner, fresh)).toMatchObject({ status: "cancelled" });
    await eventually(async () => expect(await cluster.quotaRuns()).not.toContain(fresh));
    const events = await readSse(await owner.fetch(`/v1/runs/${fresh}/events`));
    expect(events.at(-1)).toMatchObject({ event: "done", data: { status: "cancelled" } });
    await Promise.all([owner.term(), other.term()]);
  });
});
