import { consumers, streams, subjects } from "@loominal/protocol";
import { eventually, sleep } from "@loominal/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunRequest } from "./cluster/records.js";
import { QuotaStore, RunStore } from "./cluster/state.js";
import { Cluster, getRun, postRun } from "./cluster.test-helper.js";
import type { Replica } from "./replica.test-helper.js";
import { idempotentRunId } from "./service.js";

let cluster: Cluster;
let a: Replica;
let b: Replica;

beforeAll(async () => {
  cluster = await Cluster.start({ RUNNER_MAX_RUNS_PER_USER: "4" });
  a = await cluster.replica();
  b = await cluster.replica();
});
afterAll(async () => {
  await cluster?.stop();
});

async function userRuns(r: Replica, user: string): Promise<Array<Record<string, unknown>>> {
  const res = await r.fetch(`/v1/users/${user}/runs`);
  return ((await res.json()) as { runs: Array<Record<string, unknown>> }).runs;
}

async function globalSlotsHeld(): Promise<number> {
  const jsm = await cluster.fabric.jsm();
  return (await jsm.consumers.info(streams.runnerAdmit(), consumers.runnerAdmit())).num_ack_pending;
}

describe("POST /v1/runs with an idempotency_key", () => {
  it("a repeat on another replica answers with the first request's run; another user's key is its own", async () => {
    const first = await postRun(a, {
      agent: "medium",
      prompt: "one",
      user_id: "idem-1",
      idempotency_key: "k-1",
    });
    expect(first.status).toBe(202);
    expect(first.body.duplicate).toBeUndefined();
    const again = await postRun(b, {
      agent: "medium",
      prompt: "one",
      user_id: "idem-1",
      idempotency_key: "k-1",
    });
    expect(again.status).toBe(202);
    expect(again.body).toMatchObject({ run_id: first.body.run_id, duplicate: true });
    await eventually(
      async () => expect((await getRun(a, String(first.body.run_id))).status).toBe("completed"),
      {
        timeoutMs: 20_000,
      },
    );
    // After the run ended too: the same run, nothing admitted again.
    const late = await postRun(a, {
      agent: "medium",
      prompt: "one",
      user_id: "idem-1",
      idempotency_key: "k-1",
    });
    expect(late.body).toMatchObject({ run_id: first.body.run_id, status: "completed", duplicate: true });
    expect((await userRuns(a, "idem-1")).map((r) => r.run_id)).toEqual([first.body.run_id]);
    const other = await postRun(a, {
      agent: "medium",
      prompt: "one",
      user_id: "idem-2",
      idempotency_key: "k-1",
    });
    expect(other.status).toBe(202);
    expect(other.body.run_id).not.toBe(first.body.run_id);
    expect(other.body.duplicate).toBeUndefined();
    await eventually(async () => expect(await cluster.quotaHeld()).toBe(0), { timeoutMs: 20_000 });
  });

  it("refuses a malformed key", async () => {
    const res = await postRun(a, { agent: "medium", prompt: "x", user_id: "idem-3", idempotency_key: "a b" });
    expect(res.status).toBe(400);
    expect(String(res.body.error)).toMatch(/idempotency_key/);
  });

  it("a replica killed after admitting a run but before answering: the repeat gets that run, which runs once and holds nothing after", async () => {
    // What a replica SIGKILLed between admitting a request and answering leaves behind: the user's quota
    // slot (noted as its own) and the request in the admission stream — no record, no answer.
    const user = "idem-killed";
    const key = "circuit-7-editor";
    const runId = idempotentRunId(user, key);
    const request: RunRequest = {
      run_id: runId,
      agent: "medium",
      prompt: "admitted by a replica that died",
      user_id: user,
      tenant_id: null,
      agent_id: null,
      session_id: null,
      metadata: null,
      run_timeout_seconds: null,
      accepted_by: "gone-replica",
      created_at: new Date().toISOString(),
    };
    const quotas = new QuotaStore(cluster.stores.quotas);
    expect(await quotas.acquire(user, runId, "gone-replica", 4)).toEqual({ admitted: true });
    await cluster.fabric.js.publish(subjects.runnerAdmit(), JSON.stringify(request), { msgID: runId });
    // The client saw its connection drop and posts again, to a live replica, with the same key.
    const again = await postRun(b, {
      agent: "medium",
      prompt: "admitted by a replica that died",
      user_id: user,
      idempotency_key: key,
    });
    expect(again.status).toBe(202);
    expect(again.body).toMatchObject({ run_id: runId, duplicate: true });
    await eventually(async () => expect((await getRun(a, runId)).status).toBe("completed"), {
      timeoutMs: 20_000,
    });
    // One run for the user, no slot left: nothing runs on that nobody knows of.
    expect((await userRuns(a, user)).map((r) => r.run_id)).toEqual([runId]);
    await eventually(async () => {
      expect(await cluster.quotaHeld()).toBe(0);
      expect(await globalSlotsHeld()).toBe(0);
    });
    const record = await new RunStore(cluster.stores.runs).get(runId);
    expect(record?.status).toBe("completed");
  });
});

describe("a request whose acceptor died before writing its record", () => {
  it("takes its quota slot back when it runs", async () => {
    // Nobody pulls while the cluster is paused: the request waits in the stream, as behind a long queue.
    expect((await a.fetch("/v1/_pause", { json: { timeout_ms: 0 } })).status).toBe(200);
    await sleep(1_000);
    const user = "idem-slot";
    const runId = idempotentRunId(user, "looping");
    const request: RunRequest = {
      run_id: runId,
      agent: "slow",
      prompt: "[loop]",
      user_id: user,
      tenant_id: null,
      agent_id: null,
      session_id: null,
      metadata: null,
      run_timeout_seconds: null,
      accepted_by: "gone-replica-2",
      created_at: new Date().toISOString(),
    };
    const quotas = new QuotaStore(cluster.stores.quotas);
    await quotas.acquire(user, runId, "gone-replica-2", 4);
    await cluster.fabric.js.publish(subjects.runnerAdmit(), JSON.stringify(request), { msgID: runId });
    // No record and a dead acceptor: the reaper frees the slot (it cannot see the request in the stream).
    await eventually(async () => expect(await quotas.get(user)).toBeUndefined(), { timeoutMs: 20_000 });
    expect((await a.fetch("/v1/_resume", { method: "POST" })).status).toBe(200);
    await eventually(async () => expect((await getRun(a, runId)).status).toBe("running"), {
      timeoutMs: 20_000,
    });
    // While it runs, the run holds its slot again (the user's cap counts it).
    await eventually(async () => expect(Object.keys((await quotas.get(user))?.runs ?? {})).toEqual([runId]));
    await sleep(1_000);
    expect(Object.keys((await quotas.get(user))?.runs ?? {})).toEqual([runId]);
    const cancel = await a.fetch(`/v1/runs/${runId}/cancel`, { json: { reason: "test over" } });
    expect(cancel.status).toBe(200);
    await eventually(async () => {
      expect(await quotas.get(user)).toBeUndefined();
      expect(await globalSlotsHeld()).toBe(0);
    });
  });
});
