import { existsSync } from "node:fs";
import { join } from "node:path";
import { eventually, NatsServer } from "@loominal/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  callOk,
  ledgerReader,
  makeProject,
  recordOf,
  startShuttle,
  startWorker,
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

  it("cancels the work items NATS could not take during the outage once it is back", async () => {
    const project = makeProject(server.url);
    cleanups.push(() => project.cleanup());
    const s = await startShuttle(project);
    cleanups.push(() => s.close());
    const plan = await callOk(s.client, "shuttle_assess_task", {
      task: "cancel offline",
      subtasks: [{ id: "a", title: "A", description: "Do a", capability: "nobody-has-this" }],
    });
    const orchestrationId = String(plan.orchestrationId);
    await callOk(s.client, "shuttle_spawn_subagents", { orchestrationId });
    const workId = String(
      recordOf(await callOk(s.client, "shuttle_get_state", { orchestrationId })).subtasks[0]?.workId,
    );
    const dir = String(plan.directory);

    await server.kill();
    await eventually(() => expect(s.opened.fabric.isConnected).toBe(false));
    const cancelled = await callOk(s.client, "shuttle_cancel", { orchestrationId, reason: "offline stop" });
    expect(cancelled.phase).toBe("cancelled");
    expect(cancelled.cancelledWork).toEqual([]);
    expect(cancelled.notCancelled).toEqual([
      { subtaskId: "a", workId, reason: expect.stringContaining("it will be cancelled when NATS is back") },
    ]);
    expect(existsSync(join(dir, "cancel-pending.json"))).toBe(true);

    await server.restart();
    const reader = await ledgerReader(project);
    cleanups.push(() => reader.close());
    await eventually(async () => expect((await reader.queue.get(workId))?.status).toBe("cancelled"), {
      timeoutMs: 20_000,
    });
    expect((await reader.queue.get(workId))?.cancelReason).toBe("offline stop");
    // Nothing left to cancel: the pending file and the driver lock are gone.
    await eventually(() => {
      expect(existsSync(join(dir, "cancel-pending.json"))).toBe(false);
      expect(existsSync(join(dir, "driver.json"))).toBe(false);
    });
  });
});
