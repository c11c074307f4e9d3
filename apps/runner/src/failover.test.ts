import { eventually, sleep, TcpProxy } from "@loominal/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Cluster, getRun, globalActive, postRun } from "./cluster.test-helper.js";
import { type Replica, readSse } from "./replica.test-helper.js";

let cluster: Cluster;

beforeAll(async () => {
  cluster = await Cluster.start({
    RUNNER_MAX_CONCURRENT_RUNS: "2",
    RUNNER_MAX_RUNS_PER_USER: "8",
    RUNNER_QUEUE_MAX: "20",
  });
});
afterAll(async () => {
  await cluster?.stop();
});

async function runsOf(r: Replica, ids: string[]) {
  return Promise.all(ids.map((id) => getRun(r, id)));
}

/** Runs the replica reports executing in its heartbeat. */
async function victimActive(r: Replica, replicaId: string): Promise<number | undefined> {
  const s = (await (await r.fetch("/v1/_concurrency/stats")).json()) as {
    replicas: Array<{ replica_id: string; active_runs: number }>;
  };
  return s.replicas.find((x) => x.replica_id === replicaId)?.active_runs;
}

async function slow(r: Replica, user: string): Promise<string> {
  const res = await postRun(r, { agent: "slow", prompt: "[loop]", user_id: user });
  expect(res.status).toBe(202);
  return String(res.body.run_id);
}

describe("replica failure and shutdown (separate processes, real NATS)", () => {
  it("kill -9 mid-run: the reaper fails its runs replica_died, frees every slot, and says so on the streams", async () => {
    const victim = await cluster.replica({ RUNNER_REPLICA_MAX_RUNS: "2" });
    const ids = [await slow(victim, "kill-a"), await slow(victim, "kill-b")];
    await eventually(async () =>
      expect((await runsOf(victim, ids)).every((r) => r.status === "running")).toBe(true),
    );
    const survivor = await cluster.replica();
    // Watch the user's run-state stream and one run's events on the survivor while the victim dies.
    const stateStream = survivor
      .fetch("/v1/users/kill-a/runs/stream")
      .then((res) => readSse(res, (e) => e.event === "run" && e.data.status === "failed"));
    const eventStream = survivor.fetch(`/v1/runs/${ids[0]}/events?after=1`).then((res) => readSse(res));
    await victim.kill();
    const ended = await eventually(
      async () => {
        const runs = await runsOf(survivor, ids);
        expect(runs.map((r) => [r.status, r.stop_reason])).toEqual([
          ["failed", "replica_died"],
          ["failed", "replica_died"],
        ]);
        return runs;
      },
      { timeoutMs: 20_000 },
    );
    expect(ended[0]?.replica_id).toBe(victim.replicaId);
    await eventually(async () => expect(await cluster.quotaHeld()).toBe(0));
    await eventually(async () => {
      const s = (await (await survivor.fetch("/v1/_concurrency/stats")).json()) as {
        global: { active: number };
      };
      expect(s.global.active).toBe(0);
    });
    const states = await stateStream;
    expect(states.at(-1)?.data).toMatchObject({ status: "failed", stop_reason: "replica_died" });
    const events = await eventStream;
    expect(events.at(-1)).toMatchObject({ event: "error", data: { stop_reason: "replica_died" } });
    expect(events.every((e) => Number(e.data.seq) > 1)).toBe(true);
    const health = (await (await survivor.fetch("/healthz")).json()) as { replicas: string[] };
    expect(health.replicas).toEqual([survivor.replicaId]);
    await survivor.term();
  });

  it("kill -9 with runs still queued: they run on another replica and no slot leaks", async () => {
    const victim = await cluster.replica();
    const running = [await slow(victim, "q1"), await slow(victim, "q2")];
    await eventually(async () =>
      expect((await runsOf(victim, running)).every((r) => r.status === "running")).toBe(true),
    );
    const queued = [await slow(victim, "q3"), await slow(victim, "q4")];
    expect((await runsOf(victim, queued)).map((r) => r.status)).toEqual(["queued", "queued"]);
    const other = await cluster.replica();
    await victim.kill();
    await eventually(
      async () => {
        const q = await runsOf(other, queued);
        expect(q.map((r) => [r.status, r.replica_id])).toEqual([
          ["running", other.replicaId],
          ["running", other.replicaId],
        ]);
        const r = await runsOf(other, running);
        expect(r.map((x) => x.stop_reason)).toEqual(["replica_died", "replica_died"]);
      },
      { timeoutMs: 20_000 },
    );
    for (const id of queued)
      expect((await other.fetch(`/v1/runs/${id}/cancel`, { method: "POST" })).status).toBe(200);
    await eventually(async () => expect(await cluster.quotaHeld()).toBe(0));
    await other.term();
  });

  it("cancel of a run whose replica just died answers at once; the reaper frees its slots", async () => {
    const victim = await cluster.replica();
    const id = await slow(victim, "dead-owner");
    await eventually(async () => expect((await getRun(victim, id)).status).toBe("running"));
    const other = await cluster.replica();
    await victim.kill();
    const res = await other.fetch(`/v1/runs/${id}/cancel`, { method: "POST" });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ status: "cancelled", stop_reason: "cancelled: requested" });
    await eventually(async () => expect(await cluster.quotaHeld()).toBe(0));
    await eventually(async () => expect(await globalActive(other)).toBe(0));
    await other.term();
  });

  it("a replica cut off from NATS loses its run to the reaper; back, its late writes do not undo that", async () => {
    const proxy = await TcpProxy.start(cluster.server.port);
    try {
      const victim = await cluster.replica({ NATS_URL: proxy.url });
      const id = await slow(victim, "partitioned");
      await eventually(async () => expect((await getRun(victim, id)).status).toBe("running"));
      const other = await cluster.replica();
      proxy.cut();
      await eventually(
        async () =>
          expect(await getRun(other, id)).toMatchObject({ status: "failed", stop_reason: "replica_died" }),
        { timeoutMs: 20_000 },
      );
      await eventually(async () => expect(await cluster.quotaHeld()).toBe(0));
      proxy.restore();
      // The victim comes back, heartbeats again, and its own end of the run (written late) loses.
      await eventually(
        async () => {
          const health = (await (await other.fetch("/healthz")).json()) as { replicas: string[] };
          expect(health.replicas).toContain(victim.replicaId);
        },
        { timeoutMs: 20_000 },
      );
      await sleep(500);
      expect(await getRun(other, id)).toMatchObject({ status: "failed", stop_reason: "replica_died" });
      const events = await readSse(await other.fetch(`/v1/runs/${id}/events`));
      expect(events.filter((e) => e.event === "error" || e.event === "done")).toHaveLength(1);
      const fresh = await postRun(victim, { agent: "mock-generic", prompt: "hi", user_id: "partitioned" });
      expect(fresh.status).toBe(202);
      await eventually(async () =>
        expect((await getRun(other, String(fresh.body.run_id))).status).toBe("completed"),
      );
      await Promise.all([victim.term(), other.term()]);
    } finally {
      proxy.restore();
      await proxy.close();
    }
  });

  it("a replica frozen beyond the TTL loses its runs to the reaper; thawed, it fences itself and rejoins, and frees nothing twice", async () => {
    const victim = await cluster.replica();
    const ids = [await slow(victim, "freeze-a"), await slow(victim, "freeze-b")];
    await eventually(async () =>
      expect((await runsOf(victim, ids)).every((r) => r.status === "running")).toBe(true),
    );
    const survivor = await cluster.replica();
    victim.freeze();
    try {
      // Its heartbeat expires (probes of a frozen replica only time out: they prove nothing).
      await eventually(
        async () =>
          expect((await runsOf(survivor, ids)).map((r) => [r.status, r.stop_reason])).toEqual([
            ["failed", "replica_died"],
            ["failed", "replica_died"],
          ]),
        { timeoutMs: 20_000 },
      );
      await eventually(async () => {
        expect(await cluster.quotaRuns()).toEqual([]);
        expect(await globalActive(survivor)).toBe(0);
      });
      // A run admitted while the victim is frozen holds a quota slot and a global slot on the survivor.
      const next = await slow(survivor, "freeze-a");
      await eventually(async () => expect((await getRun(survivor, next)).status).toBe("running"));
      victim.thaw();
      // Back, the victim finds its heartbeat gone, stops its runs and joins again.
      await eventually(() => expect(victim.output.join("")).toContain("this replica was taken for dead"), {
        timeoutMs: 20_000,
      });
      await eventually(async () => {
        const health = (await (await survivor.fetch("/healthz")).json()) as { replicas: string[] };
        expect(health.replicas).toContain(victim.replicaId);
      });
      // Its late ends lost; its late releases freed nothing of the other run.
      await eventually(async () => expect(await victimActive(survivor, victim.replicaId)).toBe(0));
      expect((await runsOf(survivor, ids)).map((r) => [r.status, r.stop_reason])).toEqual([
        ["failed", "replica_died"],
        ["failed", "replica_died"],
      ]);
      for (const id of ids) {
        const events = await readSse(await survivor.fetch(`/v1/runs/${id}/events`));
        expect(events.filter((e) => e.event === "error" || e.event === "done")).toHaveLength(1);
      }
      expect(await cluster.quotaRuns()).toEqual([next]);
      expect(await globalActive(survivor)).toBe(1);
      expect((await survivor.fetch(`/v1/runs/${next}/cancel`, { method: "POST" })).status).toBe(200);
      await eventually(async () => {
        expect(await cluster.quotaRuns()).toEqual([]);
        expect(await globalActive(survivor)).toBe(0);
      });
      // It runs runs again.
      const fresh = await postRun(victim, { agent: "mock-generic", prompt: "hi", user_id: "freeze-c" });
      await eventually(async () =>
        expect((await getRun(survivor, String(fresh.body.run_id))).status).toBe("completed"),
      );
    } finally {
      victim.thaw();
    }
    await Promise.all([victim.term(), survivor.term()]);
  });

  it("SIGTERM drains: running runs finish, the replica leaves, exit code 0; past the drain timeout they fail replica_shutdown", async () => {
    const r = await cluster.replica({ RUNNER_DRAIN_TIMEOUT_MS: "20000" });
    const ids = await Promise.all(
      ["d1", "d2"].map(async (u) => {
        const res = await postRun(r, { agent: "medium", prompt: "[tools:2]", user_id: u });
        return String(res.body.run_id);
      }),
    );
    await eventually(async () =>
      expect((await runsOf(r, ids)).every((x) => x.status === "running")).toBe(true),
    );
    const observer = await cluster.replica();
    expect(await r.term()).toBe(0);
    const after = await runsOf(observer, ids);
    expect(after.map((x) => [x.status, x.stop_reason])).toEqual([
      ["completed", "end_turn"],
      ["completed", "end_turn"],
    ]);
    expect(((await (await observer.fetch("/healthz")).json()) as { replicas: string[] }).replicas).toEqual([
      observer.replicaId,
    ]);

    const impatient = await cluster.replica({ RUNNER_DRAIN_TIMEOUT_MS: "300" });
    await observer.term();
    const id = await slow(impatient, "d3");
    await eventually(async () => expect((await getRun(impatient, id)).status).toBe("running"));
    expect(await impatient.term()).toBe(0);
    const last = await cluster.replica();
    expect(await getRun(last, id)).toMatchObject({ status: "failed", stop_reason: "replica_shutdown" });
    expect(await cluster.quotaHeld()).toBe(0);
    await last.term();
  });
});
