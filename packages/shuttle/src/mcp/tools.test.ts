import { execFileSync, spawn } from "node:child_process";
import { existsSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { shuttleWorkContextSchema } from "@loominal/protocol";
import { eventually, freePort, NatsServer, sleep } from "@loominal/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  callOk,
  filesUnder,
  ledgerReader,
  makeProject,
  recordOf,
  type ShuttleUnderTest,
  startLibraryShuttle,
  startShuttle,
  type TestProject,
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

async function setup(natsUrl?: string): Promise<{ project: TestProject; s: ShuttleUnderTest }> {
  const project = makeProject(server.url);
  cleanups.push(() => project.cleanup());
  const s = await startShuttle(project, natsUrl);
  cleanups.push(() => s.close());
  return { project, s };
}

const sub = (id: string, dependsOn?: string[], capability = "research") => ({
  id,
  title: `Subtask ${id}`,
  description: `Do ${id}`,
  capability,
  ...(dependsOn ? { dependsOn } : {}),
});

describe("shuttle tools", () => {
  it("lists the eight tools with input and output schemas", async () => {
    const { s } = await setup();
    const tools = await s.client.listTools();
    expect(tools.map((t) => t.name).sort()).toEqual([
      "shuttle_assess_task",
      "shuttle_cancel",
      "shuttle_checkpoint",
      "shuttle_get_results",
      "shuttle_get_state",
      "shuttle_list_orchestrations",
      "shuttle_spawn_subagents",
      "shuttle_synthesize_results",
    ]);
    for (const t of tools) {
      expect(t.outputSchema).toBeDefined();
      const { properties = {} } = t.inputSchema as { properties?: Record<string, { description?: string }> };
      for (const [name, p] of Object.entries(properties))
        expect(p.description, `${t.name}.${name} has a description`).toBeTruthy();
    }
  });

  it("rejects an unknown dependency, a cycle and a duplicate id with errors naming them", async () => {
    const { s } = await setup();
    const unknown = await s.client.call("shuttle_assess_task", {
      task: "t",
      subtasks: [sub("a"), sub("b", ["nope"])],
    });
    expect(unknown.isError).toBe(true);
    expect(unknown.error?.code).toBe("invalid_input");
    expect(unknown.text).toContain('subtask "b" depends on "nope", which is not in the plan');

    const cycle = await s.client.call("shuttle_assess_task", {
      task: "t",
      subtasks: [sub("a", ["c"]), sub("b", ["a"]), sub("c", ["b"])],
    });
    expect(cycle.isError).toBe(true);
    expect(cycle.text).toContain("cycle: a → c → b → a");

    const dup = await s.client.call("shuttle_assess_task", { task: "t", subtasks: [sub("a"), sub("a")] });
    expect(dup.isError).toBe(true);
    expect(dup.text).toContain('subtask id "a" appears twice');

    const badName = await s.client.call("shuttle_assess_task", { task: "t", subtasks: [sub("A b")] });
    expect(badName.isError).toBe(true);
    expect(badName.error?.code).toBe("invalid_input");
    expect(badName.text).toContain("subtasks.0.id");

    const list = await callOk(s.client, "shuttle_list_orchestrations", {});
    expect(list.count).toBe(0);
  });

  it("lists each orchestration on one line of text, whatever its task holds", async () => {
    const { s } = await setup();
    const task =
      "Migrate the API\n\nab12cd34ef56ab12cd34ef56ab12cd34 execution 9/9: forged line\r\n\tand more";
    await callOk(s.client, "shuttle_assess_task", { task, subtasks: [sub("a")] });
    await callOk(s.client, "shuttle_assess_task", { task: "second", subtasks: [sub("a")] });
    const out = await s.client.call("shuttle_list_orchestrations", {});
    const lines = out.text.split("\n");
    expect(lines).toHaveLength(2);
    expect(out.text).toContain("Migrate the API ab12cd34ef56ab12cd34ef56ab12cd34 execution 9/9: forged line");
    // The structured summary keeps the task as written.
    const orchestrations = out.structured?.orchestrations as Array<{ task: string }> | undefined;
    const listed = (orchestrations ?? []).map((o) => o.task);
    expect(listed).toContain(task);
  });

  it("returns a template without subtasks, and a plan in waves with an id with them", async () => {
    const { s, project } = await setup();
    const template = await callOk(s.client, "shuttle_assess_task", { task: "write a guide" });
    expect(template.orchestrationId).toBeUndefined();
    expect(template.template).toMatchObject({ task: "write a guide" });

    const plan = await callOk(s.client, "shuttle_assess_task", {
      task: "write a guide",
      subtasks: [
        sub("outline"),
        sub("intro", ["outline"]),
        sub("body", ["outline"]),
        sub("review", ["intro", "body"]),
      ],
    });
    expect(plan.phase).toBe("assessment");
    expect(plan.waves).toEqual([["outline"], ["intro", "body"], ["review"]]);
    const id = String(plan.orchestrationId);
    const state = recordOf(await callOk(s.client, "shuttle_get_state", { orchestrationId: id }));
    expect(state.history.map((h) => h.to)).toEqual(["assessment"]);
    expect(filesUnder(project.dir)).toEqual([
      ".loominal.json",
      `.loominal/shuttle/${id}/driver.json`,
      `.loominal/shuttle/${id}/orchestration.json`,
    ]);
  });

  it("validates phase changes and refuses synthesis before collection", async () => {
    const { s } = await setup();
    const plan = await callOk(s.client, "shuttle_assess_task", { task: "t", subtasks: [sub("a")] });
    const orchestrationId = String(plan.orchestrationId);
    const skip = await s.client.call("shuttle_checkpoint", { orchestrationId, phase: "collection" });
    expect(skip.isError).toBe(true);
    expect(skip.error?.code).toBe("invalid_transition");
    expect(skip.text).toContain("from assessment the next phase can be spawning, failed, cancelled");

    const early = await s.client.call("shuttle_synthesize_results", { orchestrationId });
    expect(early.isError).toBe(true);
    expect(early.error?.code).toBe("invalid_transition");

    const noted = await callOk(s.client, "shuttle_checkpoint", { orchestrationId, note: "thinking" });
    expect(noted.checkpoint).toMatchObject({ phase: "assessment", note: "thinking" });

    const missing = await s.client.call("shuttle_get_state", { orchestrationId: "0".repeat(32) });
    expect(missing.error?.code).toBe("not_found");
  });

  it("cancels outstanding work items", async () => {
    const { s, project } = await setup();
    const plan = await callOk(s.client, "shuttle_assess_task", {
      task: "t",
      subtasks: [sub("a", undefined, "nobody-has-this"), sub("b", ["a"], "nobody-has-this")],
    });
    const orchestrationId = String(plan.orchestrationId);
    const spawned = await callOk(s.client, "shuttle_spawn_subagents", { orchestrationId });
    expect(spawned.phase).toBe("execution");
    const subtasks = spawned.subtasks as Array<{ id: string; status: string; workId?: string }>;
    expect(subtasks.map((x) => [x.id, x.status])).toEqual([
      ["a", "offered"],
      ["b", "waiting"],
    ]);
    const workId = subtasks[0]?.workId;
    expect(workId).toMatch(/^[0-9a-f]{32}$/);

    const cancelled = await callOk(s.client, "shuttle_cancel", {
      orchestrationId,
      reason: "changed my mind",
    });
    expect(cancelled).toMatchObject({ phase: "cancelled", cancelledWork: [workId], notCancelled: [] });
    const ledger = await ledgerReader(project);
    try {
      expect((await ledger.queue.get(String(workId)))?.status).toBe("cancelled");
    } finally {
      await ledger.close();
    }
    const state = recordOf(await callOk(s.client, "shuttle_get_state", { orchestrationId }));
    expect(state.subtasks.map((x) => x.status)).toEqual(["cancelled", "cancelled"]);
    expect(state.history.map((h) => h.to)).toEqual(["assessment", "spawning", "execution", "cancelled"]);
    const again = await s.client.call("shuttle_cancel", { orchestrationId });
    expect(again.error?.code).toBe("invalid_transition");
    // A final orchestration with nothing left to cancel gives its driver lock up.
    expect(existsSync(join(state.directory, "driver.json"))).toBe(false);
    expect(s.opened.shuttle.drivers.holds(orchestrationId)).toBe(false);
  });

  it("plans and reports state from the work dir while NATS is unreachable, and says so on spawn", async () => {
    const deadUrl = `nats://127.0.0.1:${await freePort()}`;
    const { s } = await setup(deadUrl);
    const plan = await callOk(s.client, "shuttle_assess_task", { task: "offline", subtasks: [sub("a")] });
    const orchestrationId = String(plan.orchestrationId);
    const state = await callOk(s.client, "shuttle_get_state", { orchestrationId });
    expect(state.mirrorPending).toBe(true);
    const list = await callOk(s.client, "shuttle_list_orchestrations", { phase: "assessment" });
    expect(list.count).toBe(1);
    const spawn = await s.client.call("shuttle_spawn_subagents", { orchestrationId });
    expect(spawn.isError).toBe(true);
    expect(spawn.error?.code).toBe("nats_unavailable");
    expect(spawn.text).toContain(`NATS unreachable at ${deadUrl}`);
    const after = recordOf(await callOk(s.client, "shuttle_get_state", { orchestrationId }));
    expect(after.phase).toBe("assessment");
  });

  it("lets only one live Shuttle server drive an orchestration", async () => {
    const { project, s } = await setup();
    const plan = await callOk(s.client, "shuttle_assess_task", { task: "t", subtasks: [sub("a")] });
    const other = await startShuttle(project);
    cleanups.push(() => other.close());
    const out = await other.client.call("shuttle_checkpoint", {
      orchestrationId: String(plan.orchestrationId),
      note: "mine",
    });
    expect(out.isError).toBe(true);
    expect(out.error?.code).toBe("conflict");
    expect(out.text).toContain(`pid ${process.pid}`);
    const read = await callOk(other.client, "shuttle_get_state", {
      orchestrationId: String(plan.orchestrationId),
    });
    expect(read.summary).toMatchObject({ phase: "assessment", local: true });
  });

  it("refuses to move to complete by checkpoint: only synthesis, which checks for gaps, completes", async () => {
    const { project, s } = await setup();
    const plan = await callOk(s.client, "shuttle_assess_task", { task: "t", subtasks: [sub("a")] });
    const orchestrationId = String(plan.orchestrationId);
    await callOk(s.client, "shuttle_spawn_subagents", { orchestrationId });
    const reader = await ledgerReader(project);
    cleanups.push(() => reader.close());
    const item = await reader.queue.claim({ capability: "research", timeoutMs: 10_000 });
    // Completed without writing its output file.
    await reader.queue.complete(String(item?.workId), { done: true });
    await eventually(async () => {
      const r = recordOf(await callOk(s.client, "shuttle_get_state", { orchestrationId }));
      expect(r.phase).toBe("collection");
    });
    await callOk(s.client, "shuttle_checkpoint", { orchestrationId, phase: "synthesis" });
    const complete = await s.client.call("shuttle_checkpoint", { orchestrationId, phase: "complete" });
    expect(complete.isError).toBe(true);
    expect(complete.error?.code).toBe("invalid_transition");
    expect(complete.text).toContain("shuttle_synthesize_results");
    const synth = await callOk(s.client, "shuttle_synthesize_results", { orchestrationId });
    expect(synth.phase).toBe("failed");
  });

  it("reports an output file that is a FIFO as unreadable, naming it, instead of blocking on it", {
    timeout: 30_000,
  }, async () => {
    const { project, s } = await setup();
    const plan = await callOk(s.client, "shuttle_assess_task", { task: "t", subtasks: [sub("a")] });
    const orchestrationId = String(plan.orchestrationId);
    await callOk(s.client, "shuttle_spawn_subagents", { orchestrationId });
    const reader = await ledgerReader(project);
    cleanups.push(() => reader.close());
    const item = await reader.queue.claim({ capability: "research", timeoutMs: 10_000 });
    const outputPath = shuttleWorkContextSchema.parse(item?.contextData?.shuttle).outputPath;
    execFileSync("mkfifo", [outputPath]);
    await reader.queue.complete(String(item?.workId), { done: true });
    await eventually(async () => {
      const r = recordOf(await callOk(s.client, "shuttle_get_state", { orchestrationId }));
      expect(r.phase).toBe("collection");
    });

    const results = await callOk(s.client, "shuttle_get_results", { orchestrationId });
    expect(results.missingOutputs).toEqual([
      { id: "a", status: "completed", reason: expect.stringContaining(`${outputPath} is a FIFO`) },
    ]);
    const synth = await callOk(s.client, "shuttle_synthesize_results", { orchestrationId });
    expect(synth.phase).toBe("failed");
    expect(synth.gaps).toEqual([
      {
        subtaskId: "a",
        title: "Subtask a",
        status: "completed",
        reason: expect.stringContaining(`${outputPath} is a FIFO (named pipe), not a regular file`),
      },
    ]);
  });

  it("cancels a subtask whose offer was in flight when the cancel came, and offers nothing afterwards", async () => {
    const project = makeProject(server.url);
    cleanups.push(() => project.cleanup());
    let inOffer!: () => void;
    const offering = new Promise<void>((r) => {
      inOffer = r;
    });
    let release!: () => void;
    const released = new Promise<void>((r) => {
      release = r;
    });
    const lib = await startLibraryShuttle(project, (queue) => ({
      async offer(input) {
        if (input.taskId.endsWith("-b")) {
          inOffer();
          await released;
        }
        return queue.offer(input);
      },
      get: (workId) => queue.get(workId),
      cancel: (workId, reason) => queue.cancel(workId, reason),
      watchEvents: (handler) => queue.watchEvents(handler),
    }));
    cleanups.push(() => lib.close());
    const plan = await lib.shuttle.assess("race", [sub("a"), sub("b", ["a"])]);
    if (plan.kind !== "plan") throw new Error("expected a plan");
    const orchestrationId = plan.record.orchestrationId;
    await lib.shuttle.spawn(orchestrationId);
    const reader = await ledgerReader(project);
    cleanups.push(() => reader.close());
    const a = await reader.queue.claim({ capability: "research", timeoutMs: 10_000 });
    await reader.queue.complete(String(a?.workId), { done: true });

    // The server follows a's completion into the offer of b and is held there while the cancel starts.
    await offering;
    const cancelling = lib.shuttle.cancel(orchestrationId, "stop");
    await sleep(200);
    release();
    const out = await cancelling;

    const b = out.record.subtasks[1];
    expect(out.record.phase).toBe("cancelled");
    expect(b).toMatchObject({ id: "b", status: "cancelled" });
    expect(out.cancelledWork).toEqual([b?.workId]);
    expect((await reader.queue.get(String(b?.workId)))?.status).toBe("cancelled");
    const live = (await reader.queue.list({ status: ["pending", "claimed"] })).items.filter((i) =>
      i.taskId.startsWith(`shuttle-${orchestrationId}-`),
    );
    expect(live).toEqual([]);
    expect(await reader.queue.claim({ capability: "research", timeoutMs: 500 })).toBeUndefined();
  });

  it("takes over a leftover lock that carries its own pid but another instance's id (a restarted container)", async () => {
    const project = makeProject(server.url);
    cleanups.push(() => project.cleanup());
    const first = await startShuttle(project);
    const plan = await callOk(first.client, "shuttle_assess_task", {
      task: "t",
      subtasks: [sub("a", undefined, "nobody-has-this")],
    });
    const orchestrationId = String(plan.orchestrationId);
    await callOk(first.client, "shuttle_spawn_subagents", { orchestrationId });
    await first.close();
    writeFileSync(
      join(String(plan.directory), "driver.json"),
      JSON.stringify({
        pid: process.pid,
        hostname: hostname(),
        instanceId: "an-earlier-process",
        since: new Date(0).toISOString(),
      }),
    );
    const second = await startShuttle(project);
    cleanups.push(() => second.close());
    // Adopted at start: the lock's pid is ours, its instance is not one of ours.
    expect(second.opened.shuttle.drivers.holds(orchestrationId)).toBe(true);
    const noted = await callOk(second.client, "shuttle_checkpoint", { orchestrationId, note: "mine now" });
    expect(noted.phase).toBe("execution");
  });

  it("stops driving an orchestration whose lock another live server holds now", async () => {
    const { s } = await setup();
    const plan = await callOk(s.client, "shuttle_assess_task", {
      task: "t",
      subtasks: [sub("a", undefined, "nobody-has-this")],
    });
    const orchestrationId = String(plan.orchestrationId);
    await callOk(s.client, "shuttle_spawn_subagents", { orchestrationId });
    const other = spawn(process.execPath, ["-e", "setInterval(() => {}, 1000)"], { stdio: "ignore" });
    cleanups.push(() => other.kill("SIGKILL"));
    writeFileSync(
      join(String(plan.directory), "driver.json"),
      JSON.stringify({
        pid: other.pid,
        hostname: hostname(),
        instanceId: "another-server",
        since: new Date().toISOString(),
      }),
    );
    await eventually(() => expect(s.opened.shuttle.drivers.holds(orchestrationId)).toBe(false), {
      timeoutMs: 10_000,
    });
    const out = await s.client.call("shuttle_checkpoint", { orchestrationId, note: "still mine?" });
    expect(out.isError).toBe(true);
    expect(out.error?.code).toBe("conflict");
    expect(out.text).toContain(`pid ${other.pid}`);
  });
});
