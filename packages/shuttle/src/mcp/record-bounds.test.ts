import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { eventually, NatsServer, tempDir } from "@loominal/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { callOk, makeProject, startShuttle } from "../orchestration.test-helper.js";
import { CHECKPOINTS_KEPT } from "../orchestrator.js";

// A server whose max_payload (256 KiB) a record of ~130 checkpoints of 2 000 characters outgrows.
let server: NatsServer;
const cleanups: Array<() => unknown> = [];

beforeAll(async () => {
  const dir = tempDir("shuttle-bounds-");
  cleanups.push(() => dir.cleanup());
  const config = join(dir.path, "nats.conf");
  writeFileSync(config, "max_payload: 262144\n");
  server = await NatsServer.start({ configFile: config });
});
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
  await server.stop();
});

describe("the size of an orchestration record", () => {
  it("stays bounded, and mirrored to the bucket, after more long checkpoints than one KV value holds", async () => {
    const project = makeProject(server.url);
    cleanups.push(() => project.cleanup());
    const s = await startShuttle(project);
    cleanups.push(() => s.close());
    const plan = await callOk(s.client, "shuttle_assess_task", {
      task: "t",
      subtasks: [{ id: "a", title: "A", description: "Do a", capability: "research" }],
    });
    const orchestrationId = String(plan.orchestrationId);
    const note = "n".repeat(1_990);
    const count = 200;
    for (let i = 0; i < count; i++)
      await s.opened.shuttle.checkpoint(orchestrationId, undefined, `${i} ${note}`);

    const local = await s.opened.shuttle.get(orchestrationId);
    expect(local.checkpoints).toHaveLength(CHECKPOINTS_KEPT);
    const dropped = count - (CHECKPOINTS_KEPT - 1);
    expect(local.checkpoints[0]?.note).toBe(
      `[shuttle] ${dropped} earlier checkpoints were dropped; the record keeps the newest ${CHECKPOINTS_KEPT - 1}`,
    );
    expect(local.checkpoints[1]?.note?.startsWith(`${dropped} `)).toBe(true);
    expect(local.checkpoints.at(-1)?.note?.startsWith(`${count - 1} `)).toBe(true);
    await eventually(async () => {
      const remote = await s.opened.shuttle.store.loadRemote(orchestrationId);
      expect(remote?.version).toBe(local.version);
      expect(remote?.checkpoints).toEqual(local.checkpoints);
    });
    expect(s.opened.shuttle.store.pendingMirror).not.toContain(orchestrationId);
  });
});
