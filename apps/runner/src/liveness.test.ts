import { eventually, sleep, TcpProxy } from "@loominal/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Cluster, getRun, globalActive, postRun } from "./cluster.test-helper.js";
import type { Replica } from "./replica.test-helper.js";

let cluster: Cluster;

beforeAll(async () => {
  // A replica TTL far beyond every wait below: a run reaped here was reaped through the fast death
  // signal (no responders on the dead replica's subject), not because a heartbeat expired.
  cluster = await Cluster.start({ RUNNER_REPLICA_TTL_MS: "60000", RUNNER_MAX_CONCURRENT_RUNS: "8" });
});
afterAll(async () => {
  await cluster?.stop();
});

async function slow(r: Replica, user: string): Promise<string> {
  const res = await postRun(r, { agent: "slow", prompt: "[loop]", user_id: user });
  expect(res.status).toBe(202);
  return String(res.body.run_id);
}

async function liveIds(r: Replica): Promise<string[]> {
  return ((await (await r.fetch("/healthz")).json()) as { replicas: string[] }).replicas;
}

describe("replica death without waiting for its heartbeat to expire", () => {
  it("kill -9: the closed connection gives it away; its runs fail replica_died and every slot is freed", async () => {
    const victim = await cluster.replica();
    const ids = [await slow(victim, "fast-a"), await slow(victim, "fast-b")];
    await eventually(async () =>
      expect(
        (await Promise.all(ids.map((id) => getRun(victim, id)))).every((r) => r.status === "running"),
      ).toBe(true),
    );
    const survivor = await cluster.replica();
    await victim.kill();
    await eventually(
      async () => {
        const runs = await Promise.all(ids.map((id) => getRun(survivor, id)));
        expect(runs.map((r) => [r.status, r.stop_reason])).toEqual([
          ["failed", "replica_died"],
          ["failed", "replica_died"],
        ]);
      },
      { timeoutMs: 30_000 },
    );
    expect(survivor.output.join("")).toContain("taken for dead");
    expect(await liveIds(survivor)).toEqual([survivor.replicaId]);
    await eventually(async () => {
      expect(await cluster.quotaRuns()).toEqual([]);
      expect(await globalActive(survivor)).toBe(0);
    });
    await survivor.term();
  });

  it("a replica whose connection drops for good is taken for dead; back, it fences itself: its late end loses, it rejoins", async () => {
    const proxy = await TcpProxy.start(cluster.server.port);
    try {
      const victim = await cluster.replica({ NATS_URL: proxy.url });
      const id = await slow(victim, "cut");
      await eventually(async () => expect((await getRun(victim, id)).status).toBe("running"));
      const other = await cluster.replica();
      // Its connection closes and it cannot reconnect (a silent partition, proxy.cut(), keeps the connection
      // on the server's side: that looks like a frozen replica, and only the TTL decides; failover.test.ts).
      proxy.down();
      await eventually(
        async () =>
          expect(await getRun(other, id)).toMatchObject({ status: "failed", stop_reason: "replica_died" }),
        { timeoutMs: 30_000 },
      );
      await eventually(async () => expect(await cluster.quotaRuns()).toEqual([]));
      const next = await slow(other, "cut");
      await eventually(async () => expect((await getRun(other, next)).status).toBe("running"));
      proxy.up();
      await eventually(() => expect(victim.output.join("")).toContain("this replica was taken for dead"), {
        timeoutMs: 30_000,
      });
      await eventually(async () => expect(await liveIds(other)).toContain(victim.replicaId), {
        timeoutMs: 30_000,
      });
      await sleep(300);
      expect(await getRun(other, id)).toMatchObject({ status: "failed", stop_reason: "replica_died" });
      expect(await cluster.quotaRuns()).toEqual([next]);
      expect(await globalActive(other)).toBe(1);
      expect((await other.fetch(`/v1/runs/${next}/cancel`, { method: "POST" })).status).toBe(200);
      await eventually(async () => {
        expect(await cluster.quotaRuns()).toEqual([]);
        expect(await globalActive(other)).toBe(0);
      });
      await Promise.all([victim.term(), other.term()]);
    } finally {
      proxy.up();
      await proxy.close();
    }
  });
});
