import { eventually, NatsServer } from "@loominal/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { callOk, makeProject, recordOf, startShuttle, startWorker } from "../orchestration.test-helper.js";

let server: NatsServer;
const cleanups: Array<() => unknown> = [];

beforeAll(async () => {
  server = await NatsServer.start();
});
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
  await server.stop();
});

const sub = (id: string, dependsOn?: string[]) => ({
  id,
  title: `Subtask ${id}`,
  description: `Do ${id}`,
  capability: "research",
  ...(dependsOn ? { dependsOn } : {}),
});

describe("a NATS outage during an orchestration", () => {
  it("keeps state on the filesystem while NATS is down, then finishes and catches the bucket up", async () => {
    const project = makeProject(server.url);
    cleanups.push(() => project.cleanup());
    const s = await startShuttle(project);
    cleanups.push(() => s.close());
    const plan = await callOk(s.client, "shuttle_assess_task", {
      task: "outage",
      subtasks: [sub("a"), sub("b", ["a"])],
    });
    const orchestrationId = String(plan.orchestrationId);
    await callOk(s.client, "shuttle_spawn_subagents", { orchestrationId });

    await server.kill();
    await eventually(() => expect(s.opened.fabric.isConnected).toBe(false));
    const noted = await callOk(s.client, "shuttle_checkpoint", {
      orchestrationId,
      note: "written while NATS is down",
    });
    expect(noted.phase).toBe("execution");
    const state = await callOk(s.client, "shuttle_get_state", { orchestrationId });
    expect(state.mirrorPending).toBe(true);

    await server.restart();
    const w = startWorker(project, { name: "worker-o", capabilities: ["research"] });
    cleanups.push(() => w.stop());
    const done = await eventually(
      async () => {
        const r = recordOf(await callOk(s.client, "shuttle_get_state", { orchestrationId }));
        expect(r.phase).toBe("collection");
        return r;
      },
      { timeoutMs: 60_000, intervalMs: 200 },
    );
    expect(done.checkpoints.map((c) => c.note)).toEqual(["written while NATS is down"]);
    await eventually(async () => {
      const remote = await s.opened.shuttle.store.loadRemote(orchestrationId);
      expect(remote?.version).toBe(done.version);
      expect(remote?.checkpoints).toHaveLength(1);
    });
  });
});
