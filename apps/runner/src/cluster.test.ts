import { eventually } from "@loominal/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Cluster, getRun, postRun } from "./cluster.test-helper.js";
import { type Replica, readSse } from "./replica.test-helper.js";

let cluster: Cluster;
let a: Replica;
let b: Replica;

beforeAll(async () => {
  cluster = await Cluster.start({
    RUNNER_MAX_RUNS_PER_USER: "3",
    RUNNER_MAX_CONCURRENT_RUNS: "4",
    RUNNER_QUEUE_MAX: "50",
  });
  [a, b] = await Promise.all([cluster.replica(), cluster.replica()]);
});
afterAll(async () => {
  await cluster?.stop();
});

async function cancelAll(runIds: string[]): Promise<void> {
  await Promise.all(runIds.map((id) => a.fetch(`/v1/runs/${id}/cancel`, { method: "POST" })));
  await eventually(async () => expect(await cluster.quotaHeld()).toBe(0), { timeoutMs: 15_000 });
}

describe("runner primitives across two replica processes", () => {
  it("10 racing runs of one user over both replicas, cap 3: exactly 3 admitted, the rest 429", async () => {
    const results = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        postRun(i % 2 === 0 ? a : b, { agent: "slow", prompt: "[loop]", user_id: "racer" }),
      ),
    );
    const admitted = results.filter((r) => r.status === 202);
    const refused = results.filter((r) => r.status === 429);
    expect(admitted).toHaveLength(3);
    expect(refused).toHaveLength(7);
    expect(refused[0]?.body).toMatchObject({ code: "per_user_quota_exhausted", user_id: "racer", cap: 3 });
    await cancelAll(admitted.map((r) => String(r.body.run_id)));
  });

  it("the global cap holds across replicas: 4 running, the rest queued, then they run as slots free", async () => {
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) {
      const r = await postRun(i % 2 === 0 ? a : b, { agent: "slow", prompt: "[loop]", user_id: `g${i}` });
      expect(r.status).toBe(202);
      ids.push(String(r.body.run_id));
    }
    await eventually(async () => {
      const runs = await Promise.all(ids.map((id) => getRun(a, id)));
      expect(runs.filter((r) => r.status === "running")).toHaveLength(4);
      expect(runs.filter((r) => r.status === "queued")).toHaveLength(2);
    });
    const stats = (await (await b.fetch("/v1/_concurrency/stats")).json()) as {
      global: Record<string, number>;
    };
    expect(stats.global).toEqual({ active: 4, queued: 2, cap: 4 });
    // Both replicas took part.
    const owners = new Set(
      (await Promise.all(ids.map((id) => getRun(a, id))))
        .filter((r) => r.status === "running")
        .map((r) => r.replica_id),
    );
    expect(owners.size).toBeGreaterThanOrEqual(1);
    // Free two slots: the queued ones start.
    const running = (await Promise.all(ids.map((id) => getRun(a, id)))).filter((r) => r.status === "running");
    for (const r of running.slice(0, 2))
      await b.fetch(`/v1/runs/${String(r.run_id)}/cancel`, { method: "POST" });
    await eventually(async () => {
      const runs = await Promise.all(ids.map((id) => getRun(a, id)));
      expect(runs.filter((r) => r.status === "running")).toHaveLength(4);
      expect(runs.filter((r) => r.status === "queued")).toHaveLength(0);
    });
    await cancelAll(ids);
  });

  it("cancel from the replica that does not own the run", async () => {
    const r = await postRun(a, { agent: "slow", prompt: "[loop]", user_id: "canceller" });
    const runId = String(r.body.run_id);
    const running = await eventually(async () => {
      const run = await getRun(a, runId);
      expect(run.status).toBe("running");
      return run;
    });
    const other = running.replica_id === "r1" ? b : a;
    const res = await other.fetch(`/v1/runs/${runId}/cancel`, { json: { reason: "no longer needed" } });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({
      status: "cancelled",
      stop_reason: "cancelled: no longer needed",
    });
    // The owner frees the slot once its loop has stopped, just after the acknowledgement.
    await eventually(async () => expect(await cluster.quotaHeld()).toBe(0));
    const again = await other.fetch(`/v1/runs/${runId}/cancel`, { method: "POST" });
    expect(again.status).toBe(409);
  });

  it("pause on one replica refuses new runs on the other; running runs park; resume lets them go on", async () => {
    const r = await postRun(b, { agent: "slow", prompt: "[loop]", user_id: "pauser" });
    const runId = String(r.body.run_id);
    await eventually(async () => expect((await getRun(a, runId)).status).toBe("running"));
    const paused = await a.fetch("/v1/_pause", { json: { timeout_ms: 10_000 } });
    expect(await paused.json()).toEqual({ state: "paused" });
    expect((await (await b.fetch("/v1/_state")).json()) as object).toEqual({ state: "paused" });
    expect((await a.fetch("/v1/_pause", { method: "POST" })).status).toBe(409);
    const refused = await postRun(b, { agent: "mock-generic", prompt: "hi", user_id: "pauser2" });
    expect(refused).toMatchObject({ status: 503, body: { code: "runtime_paused" } });
    expect((await b.fetch("/v1/_resume", { method: "POST" })).status).toBe(200);
    expect((await a.fetch("/v1/_resume", { method: "POST" })).status).toBe(409);
    // The run parked at an iteration boundary and went on after the resume.
    const events = await readSse(await a.fetch(`/v1/runs/${runId}/events`), (e) => e.event === "resumed");
    const types = events.map((e) => e.event);
    expect(types.indexOf("paused")).toBeGreaterThan(0);
    expect(types.at(-1)).toBe("resumed");
    expect(events.map((e) => e.data.seq)).toEqual(events.map((_, i) => i + 1));
    const ok = await postRun(b, { agent: "mock-generic", prompt: "hi", user_id: "pauser2" });
    expect(ok.status).toBe(202);
    await cancelAll([runId]);
  });

  it("a pause stops admissions on the other replica as soon as its watch has it; nothing admitted meanwhile runs", async () => {
    expect((await a.fetch("/v1/_pause", { json: { timeout_ms: 0 } })).status).toBe(200);
    const admitted: string[] = [];
    try {
      await eventually(async () => {
        const r = await postRun(b, { agent: "mock-generic", prompt: "hi", user_id: "watcher" });
        if (r.status === 202) admitted.push(String(r.body.run_id));
        expect(r).toMatchObject({ status: 503, body: { code: "runtime_paused" } });
      });
      // Refused from then on, on every replica.
      for (const r of [a, b, a, b]) {
        const again = await postRun(r, { agent: "mock-generic", prompt: "hi", user_id: "watcher" });
        expect(again).toMatchObject({ status: 503, body: { code: "runtime_paused" } });
      }
      // A request admitted before the watch delivered the pause waits: nothing is pulled while pausing.
      for (const id of admitted) expect((await getRun(a, id)).status).toBe("queued");
    } finally {
      expect((await b.fetch("/v1/_resume", { method: "POST" })).status).toBe(200);
    }
    for (const id of admitted) {
      await eventually(async () => expect((await getRun(a, id)).status).toBe("completed"));
    }
    await eventually(async () => expect(await cluster.quotaHeld()).toBe(0));
  });

  it("a session is locked across replicas (409 session_busy) until its run ends", async () => {
    const first = await postRun(a, { agent: "slow", prompt: "[loop]", user_id: "s", session_id: "sess-1" });
    expect(first.status).toBe(202);
    const second = await postRun(b, {
      agent: "mock-generic",
      prompt: "hi",
      user_id: "s2",
      session_id: "sess-1",
    });
    expect(second).toMatchObject({ status: 409, body: { code: "session_busy" } });
    const dup = await postRun(b, { agent: "slow", prompt: "[loop]", user_id: "s3", agent_id: "agent-x" });
    expect(dup.status).toBe(202);
    expect(
      await postRun(a, { agent: "slow", prompt: "[loop]", user_id: "s4", agent_id: "agent-x" }),
    ).toMatchObject({
      status: 409,
      body: { code: "agent_id_in_use" },
    });
    await cancelAll([String(first.body.run_id), String(dup.body.run_id)]);
    expect(
      (await postRun(b, { agent: "mock-generic", prompt: "hi", user_id: "s2", session_id: "sess-1" })).status,
    ).toBe(202);
  });

  it("circuits spread over both replicas complete with every memory key and the score present", async () => {
    // Editors and evaluators hold a slot while they wait on a channel; with a cluster cap (4) below the
    // number of waiting runs, the researchers must be admitted first (the queue is FIFO) or the waiters
    // hold every slot until their subscribe times out.
    const circuits = Array.from({ length: 5 }, (_, i) => `c${i}`);
    const posted: Array<{ c: string; agent: string; r: { status: number; body: Record<string, unknown> } }> =
      [];
    for (const agent of ["mock-researcher", "mock-editor", "mock-evaluator"]) {
      const phase = await Promise.all(
        circuits.map((c, i) =>
          postRun(i % 2 === 0 ? a : b, {
            agent,
            prompt: `Your circuit_id is ${c}.`,
            user_id: `circuit-${c}`,
          }).then((r) => ({ c, agent, r })),
        ),
      );
      posted.push(...phase);
    }
    expect(posted.every((p) => p.r.status === 202)).toBe(true);
    const ended = await eventually(
      async () => {
        const runs = await Promise.all(posted.map((p) => getRun(a, String(p.r.body.run_id))));
        expect(runs.every((r) => r.status === "completed")).toBe(true);
        return runs;
      },
      { timeoutMs: 30_000, intervalMs: 200 },
    ).catch(async (err) => {
      const runs = await Promise.all(posted.map((p) => getRun(a, String(p.r.body.run_id))));
      console.log(runs.map((r) => [r.agent, r.status, r.stop_reason, r.error, r.replica_id]));
      console.log(await (await a.fetch("/v1/_concurrency/stats")).text());
      for (const r of [a, b])
        console.log(
          r.output
            .join("")
            .split("\n")
            .filter((l) => !l.includes('"level":30'))
            .join("\n")
            .slice(-4000),
        );
      throw err;
    });
    for (const c of circuits) {
      for (const key of ["research", "research-edited", "research-scored"]) {
        expect(
          await cluster.stores.memory.get(
            `u.${Buffer.from(`circuit-${c}`).toString("base64url")}.${Buffer.from(`${c}-${key}`).toString("base64url")}`,
          ),
        ).not.toBeNull();
      }
      const editor = posted.find((p) => p.c === c && p.agent === "mock-editor");
      const run = ended.find((r) => r.run_id === editor?.r.body.run_id);
      expect(run?.evaluations).toMatchObject([{ score: 0.8 }]);
    }
    expect(await cluster.quotaHeld()).toBe(0);
  });
});
