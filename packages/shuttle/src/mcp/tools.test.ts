import { freePort, NatsServer } from "@loominal/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  callOk,
  filesUnder,
  ledgerReader,
  makeProject,
  recordOf,
  type ShuttleUnderTest,
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
    for (const t of tools) expect(t.outputSchema).toBeDefined();
  });

  it("rejects an unknown dependency, a cycle and a duplicate id with errors naming them", async () => {
    const { s } = await setup();
    const unknown = await s.client.call("shuttle_assess_task", {
      task: "t",
      subtasks: [sub("a"), sub("b", ["nope"])],
    });
    expect(unknown.isError).toBe(true);
    expect(unknown.structured).toMatchObject({ error: { code: "invalid_input" } });
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
    expect(badName.structured).toMatchObject({ error: { code: "invalid_input" } });
    expect(badName.text).toContain("subtasks.0.id");

    const list = await callOk(s.client, "shuttle_list_orchestrations", {});
    expect(list.count).toBe(0);
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
    expect(skip.structured).toMatchObject({ error: { code: "invalid_transition" } });
    expect(skip.text).toContain("from assessment the next phase can be spawning, failed, cancelled");

    const early = await s.client.call("shuttle_synthesize_results", { orchestrationId });
    expect(early.isError).toBe(true);
    expect(early.structured).toMatchObject({ error: { code: "invalid_transition" } });

    const noted = await callOk(s.client, "shuttle_checkpoint", { orchestrationId, note: "thinking" });
    expect(noted.checkpoint).toMatchObject({ phase: "assessment", note: "thinking" });

    const missing = await s.client.call("shuttle_get_state", { orchestrationId: "0".repeat(32) });
    expect(missing.structured).toMatchObject({ error: { code: "not_found" } });
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
    expect(again.structured).toMatchObject({ error: { code: "invalid_transition" } });
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
    expect(spawn.structured).toMatchObject({ error: { code: "nats_unavailable" } });
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
    expect(out.structured).toMatchObject({ error: { code: "conflict" } });
    expect(out.text).toContain(`pid ${process.pid}`);
    const read = await callOk(other.client, "shuttle_get_state", {
      orchestrationId: String(plan.orchestrationId),
    });
    expect(read.summary).toMatchObject({ phase: "assessment", local: true });
  });
});
