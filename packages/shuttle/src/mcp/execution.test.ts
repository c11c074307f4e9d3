import { spawn } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { buckets, orchestrationRecordSchema } from "@loominal/protocol";
import { eventually, NatsServer } from "@loominal/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  CRASHING_SHUTTLE_SCRIPT,
  callOk,
  filesUnder,
  ledgerReader,
  makeProject,
  recordOf,
  type ShuttleUnderTest,
  startShuttle,
  startWorker,
  type TestProject,
  type WorkerProcess,
  workerLog,
} from "../orchestration.test-helper.js";

let server: NatsServer;
const cleanups: Array<() => unknown> = [];

beforeAll(async () => {
  server = await NatsServer.start();
});
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
  await server.stop();
});

async function setup(): Promise<{ project: TestProject; s: ShuttleUnderTest }> {
  const project = makeProject(server.url);
  cleanups.push(() => project.cleanup());
  const s = await startShuttle(project);
  cleanups.push(() => s.close());
  return { project, s };
}

function worker(project: TestProject, options: Parameters<typeof startWorker>[1]): WorkerProcess {
  const w = startWorker(project, options);
  cleanups.push(() => w.stop());
  return w;
}

const sub = (id: string, capability: string, dependsOn?: string[]) => ({
  id,
  title: `Subtask ${id}`,
  description: `Produce the ${id} section`,
  capability,
  ...(dependsOn ? { dependsOn } : {}),
});

async function waitForPhase(s: ShuttleUnderTest, orchestrationId: string, phase: string) {
  return eventually(
    async () => {
      const r = recordOf(await callOk(s.client, "shuttle_get_state", { orchestrationId }));
      expect(r.phase).toBe(phase);
      return r;
    },
    { timeoutMs: 60_000, intervalMs: 200 },
  );
}

describe("orchestrations executed by worker processes", () => {
  it("runs a 6-subtask plan with two dependency levels on 3 workers, offering dependants only after their dependencies complete", async () => {
    const { project, s } = await setup();
    const plan = await callOk(s.client, "shuttle_assess_task", {
      task: "Write the release notes",
      subtasks: [
        sub("api", "research"),
        sub("cli", "research"),
        sub("docs", "writing"),
        sub("summary", "writing", ["api", "cli"]),
        sub("upgrade", "research", ["cli", "docs"]),
        sub("final", "writing", ["summary", "upgrade"]),
      ],
    });
    expect(plan.waves).toEqual([["api", "cli", "docs"], ["summary", "upgrade"], ["final"]]);
    const orchestrationId = String(plan.orchestrationId);

    // No worker runs yet, so what spawn offers is exactly wave 0.
    const spawned = await callOk(s.client, "shuttle_spawn_subagents", { orchestrationId });
    const statuses = (spawned.subtasks as Array<{ id: string; status: string }>).map((x) => [x.id, x.status]);
    expect(statuses).toEqual([
      ["api", "offered"],
      ["cli", "offered"],
      ["docs", "offered"],
      ["summary", "waiting"],
      ["upgrade", "waiting"],
      ["final", "waiting"],
    ]);

    for (const name of ["worker-1", "worker-2", "worker-3"])
      worker(project, { name, capabilities: ["research", "writing"] });

    const done = await waitForPhase(s, orchestrationId, "collection");
    expect(done.subtasks.every((x) => x.status === "completed")).toBe(true);
    const byId = new Map(done.subtasks.map((x) => [x.id, x]));
    for (const x of done.subtasks) {
      const out = readFileSync(`${done.directory}/${x.outputFile}`, "utf8");
      expect(out).toContain(`# Subtask ${x.id}`);
      // Offered only after every dependency had completed.
      for (const d of x.dependsOn) {
        const dep = byId.get(d);
        expect(Date.parse(String(x.offeredAt))).toBeGreaterThanOrEqual(Date.parse(String(dep?.finishedAt)));
      }
    }
    const claims = workerLog(project).filter((e) => e.event === "claimed");
    expect(new Set(claims.map((c) => c.subtaskId))).toEqual(new Set(byId.keys()));
    for (const c of claims) expect(c.depsPresent).toBe(true);

    const results = await callOk(s.client, "shuttle_get_results", { orchestrationId });
    expect(results.missingOutputs).toEqual([]);

    const synth = await callOk(s.client, "shuttle_synthesize_results", { orchestrationId });
    expect(synth.phase).toBe("complete");
    expect(synth.gaps).toEqual([]);
    const doc = String(synth.document);
    const order = ["api", "cli", "docs", "summary", "upgrade", "final"].map((id) =>
      doc.indexOf(`(\`${id}\`)`),
    );
    expect(order.every((pos, i) => pos > 0 && (i === 0 || pos > (order[i - 1] ?? 0)))).toBe(true);
    expect(existsSync(String(synth.path))).toBe(true);

    const final = recordOf(await callOk(s.client, "shuttle_get_state", { orchestrationId }));
    expect(final.history.map((h) => h.to)).toEqual([
      "assessment",
      "spawning",
      "execution",
      "collection",
      "synthesis",
      "complete",
    ]);
    for (const h of final.history) expect(Number.isNaN(Date.parse(h.at))).toBe(false);

    // Nothing outside the work dir was written in the project.
    expect(filesUnder(project.dir).filter((f) => !f.startsWith(".loominal/shuttle/"))).toEqual([
      ".loominal.json",
    ]);
  });

  it("retries a subtask on another worker when its worker is killed mid-subtask, and still completes", async () => {
    const { project, s } = await setup();
    const plan = await callOk(s.client, "shuttle_assess_task", {
      task: "Survive a crash",
      subtasks: [sub("fragile", "research"), sub("after", "research", ["fragile"])],
    });
    const orchestrationId = String(plan.orchestrationId);
    await callOk(s.client, "shuttle_spawn_subagents", { orchestrationId });
    const doomed = worker(project, { name: "doomed", capabilities: ["research"], hangOn: "fragile" });
    await eventually(() => expect(workerLog(project).some((e) => e.event === "hanging")).toBe(true), {
      timeoutMs: 20_000,
    });
    await eventually(async () => {
      const r = recordOf(await callOk(s.client, "shuttle_get_state", { orchestrationId }));
      expect(r.subtasks[0]?.status).toBe("claimed");
    });
    worker(project, { name: "survivor", capabilities: ["research"] });
    doomed.proc.kill("SIGKILL");

    const done = await waitForPhase(s, orchestrationId, "collection");
    expect(done.subtasks.map((x) => x.status)).toEqual(["completed", "completed"]);
    const fragile = done.subtasks[0];
    expect(fragile?.claims).toBeGreaterThanOrEqual(2);
    expect(fragile?.result).toMatchObject({ worker: "survivor" });
    const completions = workerLog(project).filter((e) => e.event === "completed");
    expect(completions.map((c) => [c.worker, c.subtaskId])).toEqual([
      ["survivor", "fragile"],
      ["survivor", "after"],
    ]);
    const synth = await callOk(s.client, "shuttle_synthesize_results", { orchestrationId });
    expect(synth.phase).toBe("complete");
  });

  it("names a failed subtask, its blocked dependant and contradicting outputs in the synthesis", async () => {
    const { project, s } = await setup();
    const plan = await callOk(s.client, "shuttle_assess_task", {
      task: "Assess the migration",
      subtasks: [
        sub("db", "research"),
        sub("api", "research"),
        sub("perf", "research"),
        sub("report", "writing", ["perf"]),
        sub("leak", "research"),
      ],
    });
    const secret = join(project.scratch, "secret.txt");
    writeFileSync(secret, "TOP-SECRET-CONTENT\n");
    const orchestrationId = String(plan.orchestrationId);
    await callOk(s.client, "shuttle_spawn_subagents", { orchestrationId });
    worker(project, {
      name: "worker-a",
      capabilities: ["research", "writing"],
      failOn: "perf",
      extra: {
        db: ["Needs migration: yes", "Owner: platform"],
        api: ["Needs migration: no", "Owner: platform"],
      },
      linkOutput: { leak: secret },
    });
    const done = await waitForPhase(s, orchestrationId, "collection");
    expect(done.subtasks.map((x) => [x.id, x.status])).toEqual([
      ["db", "completed"],
      ["api", "completed"],
      ["perf", "failed"],
      ["report", "blocked"],
      ["leak", "completed"],
    ]);
    const state = await callOk(s.client, "shuttle_get_state", { orchestrationId });
    // A subtask that never ran because its dependency failed is blocked, not failed.
    expect(state.summary).toMatchObject({ subtasks: 5, completed: 3, failed: 1, blocked: 1, outstanding: 0 });
    const results = await callOk(s.client, "shuttle_get_results", { orchestrationId });
    expect(results.missingOutputs).toEqual([
      { id: "perf", status: "failed" },
      { id: "report", status: "blocked" },
      { id: "leak", status: "completed", reason: expect.stringContaining("outside the Shuttle work dir") },
    ]);
    expect(JSON.stringify(results)).not.toContain("TOP-SECRET");

    const synth = await callOk(s.client, "shuttle_synthesize_results", { orchestrationId });
    expect(synth.phase).toBe("failed");
    expect(synth.gaps).toMatchObject([
      { subtaskId: "perf", status: "failed" },
      { subtaskId: "report", status: "blocked" },
      { subtaskId: "leak", status: "completed" },
    ]);
    expect(String(synth.document)).not.toContain("TOP-SECRET");
    expect(String(synth.document)).toContain(
      "- `perf` (Subtask perf): failed: failed and not retryable: worker worker-a could not do perf",
    );
    expect(synth.contradictions).toEqual([
      {
        key: "needs migration",
        kind: "opposite_yes_no",
        statements: [
          { subtaskId: "db", value: "yes", line: 4 },
          { subtaskId: "api", value: "no", line: 4 },
        ],
      },
    ]);
  });

  it("keeps following work events after the ledger watch's consumer is deleted, without waiting for a reconcile", async () => {
    const project = makeProject(server.url);
    cleanups.push(() => project.cleanup());
    // Reconciling rarely: only work events can offer the dependent subtask in time.
    const s = await startShuttle(project, project.natsUrl, { reconcileIntervalMs: 600_000 });
    cleanups.push(() => s.close());
    const plan = await callOk(s.client, "shuttle_assess_task", {
      task: "Survive a lost watch",
      subtasks: [sub("one", "research"), sub("two", "research", ["one"])],
    });
    const orchestrationId = String(plan.orchestrationId);
    await callOk(s.client, "shuttle_spawn_subagents", { orchestrationId });
    const inspector = await ledgerReader(project);
    cleanups.push(() => inspector.close());
    const jsm = await inspector.fabric.jsm();
    const stream = `KV_${buckets.workLedger(project.projectId)}`;
    const consumers = await eventually(async () => {
      const list = await jsm.consumers.list(stream).next();
      expect(list.length).toBeGreaterThan(0);
      return list;
    });
    for (const c of consumers) await jsm.consumers.delete(stream, c.name);
    worker(project, { name: "worker-w", capabilities: ["research"] });
    const done = await waitForPhase(s, orchestrationId, "collection");
    expect(done.subtasks.map((x) => x.status)).toEqual(["completed", "completed"]);
  });

  it("carries on after its Shuttle server restarts: the new server adopts the orchestration and catches up from the ledger", async () => {
    const project = makeProject(server.url);
    cleanups.push(() => project.cleanup());
    const first = await startShuttle(project);
    const plan = await callOk(first.client, "shuttle_assess_task", {
      task: "Outlive the parent",
      subtasks: [sub("one", "research"), sub("two", "research", ["one"])],
    });
    const orchestrationId = String(plan.orchestrationId);
    await callOk(first.client, "shuttle_spawn_subagents", { orchestrationId });
    await first.close();

    // Wave 0 completes while no Shuttle server is running; nobody is there to offer "two".
    worker(project, { name: "worker-r", capabilities: ["research"] });
    await eventually(
      () =>
        expect(workerLog(project).some((e) => e.event === "completed" && e.subtaskId === "one")).toBe(true),
      {
        timeoutMs: 20_000,
      },
    );

    const second = await startShuttle(project);
    cleanups.push(() => second.close());
    const done = await waitForPhase(second, orchestrationId, "collection");
    expect(done.subtasks.map((x) => x.status)).toEqual(["completed", "completed"]);
  });

  it("follows a worker whose clock is a minute behind: ledger states are ordered by revision, not by their timestamps", async () => {
    const { project, s } = await setup();
    const plan = await callOk(s.client, "shuttle_assess_task", {
      task: "Skewed clocks",
      subtasks: [sub("first", "research"), sub("second", "research", ["first"])],
    });
    const orchestrationId = String(plan.orchestrationId);
    await callOk(s.client, "shuttle_spawn_subagents", { orchestrationId });
    worker(project, { name: "late-clock", capabilities: ["research"], clockSkewMs: -60_000 });

    const done = await waitForPhase(s, orchestrationId, "collection");
    expect(done.subtasks.map((x) => [x.id, x.status])).toEqual([
      ["first", "completed"],
      ["second", "completed"],
    ]);
    // The states applied carry the worker's timestamps, older than the offers this server made.
    const first = done.subtasks[0];
    expect(Date.parse(String(first?.workUpdatedAt))).toBeLessThan(Date.parse(String(first?.offeredAt)));
  });

  it("offers each subtask exactly once when its Shuttle server is killed between an offer and the save after it", async () => {
    const project = makeProject(server.url);
    cleanups.push(() => project.cleanup());
    const idFile = join(project.scratch, "orchestration-id");
    const child = spawn(process.execPath, [CRASHING_SHUTTLE_SCRIPT], {
      env: {
        PATH: process.env.PATH ?? "",
        HOME: process.env.HOME ?? "",
        LOOMINAL_PROJECT_DIR: project.dir,
        NATS_URL: project.natsUrl,
        LOOMINAL_AGENT_NAME: "parent",
        LOOMINAL_LOG_LEVEL: "silent",
        SHUTTLE_PLAN: JSON.stringify([
          sub("a", "research"),
          sub("b", "research"),
          sub("c", "research"),
          sub("d", "research", ["a"]),
        ]),
        SHUTTLE_KILL_AFTER_OFFERS: "2",
        SHUTTLE_ID_FILE: idFile,
      },
      stdio: ["ignore", "ignore", "inherit"],
    });
    const exit = await new Promise<string | null>((r) => child.once("exit", (_code, signal) => r(signal)));
    expect(exit).toBe("SIGKILL");
    const orchestrationId = readFileSync(idFile, "utf8");
    const recordPath = join(project.dir, ".loominal", "shuttle", orchestrationId, "orchestration.json");
    const left = orchestrationRecordSchema.parse(JSON.parse(readFileSync(recordPath, "utf8")));
    // Two offers reached Warp; the record was saved before them, naming every work id about to be offered.
    expect(left.phase).toBe("spawning");
    expect(left.subtasks.map((x) => [x.id, x.status, x.workId !== undefined])).toEqual([
      ["a", "waiting", true],
      ["b", "waiting", true],
      ["c", "waiting", true],
      ["d", "waiting", false],
    ]);

    const s = await startShuttle(project);
    cleanups.push(() => s.close());
    worker(project, { name: "worker-c", capabilities: ["research"] });
    const done = await waitForPhase(s, orchestrationId, "collection");
    expect(done.subtasks.every((x) => x.status === "completed")).toBe(true);

    const reader = await ledgerReader(project);
    try {
      const items = (await reader.queue.list({ limit: 100 })).items.filter((i) =>
        i.taskId.startsWith(`shuttle-${orchestrationId}-`),
      );
      const perSubtask = new Map<string, string[]>();
      for (const i of items) {
        const id = i.taskId.slice(`shuttle-${orchestrationId}-`.length);
        perSubtask.set(id, [...(perSubtask.get(id) ?? []), i.workId]);
      }
      expect(Object.fromEntries(perSubtask)).toEqual(
        Object.fromEntries(done.subtasks.map((x) => [x.id, [x.workId]])),
      );
      expect(left.subtasks[0]?.workId).toBe(done.subtasks[0]?.workId);
    } finally {
      await reader.close();
    }
    const claims = workerLog(project).filter((e) => e.event === "claimed");
    expect(claims.map((c) => c.subtaskId).sort()).toEqual(["a", "b", "c", "d"]);
  });
});
