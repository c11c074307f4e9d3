import { NatsServer, tempDir, uniqueProjectId } from "@loominal/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openWarp, projectConfig } from "./warp.test-helper.js";

let server: NatsServer;
const cleanups: Array<() => Promise<void> | void> = [];

beforeAll(async () => {
  server = await NatsServer.start();
});

afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
  await server?.stop();
});

async function agentWarp(projectId: string, name: string) {
  const locks = tempDir("warp-locks-");
  const project = projectConfig(server.url, projectId, { env: { LOOMINAL_AGENT_NAME: name } });
  const opened = await openWarp(project.config, locks.path);
  cleanups.push(opened.close, project.cleanup, locks.cleanup);
  return opened.warp;
}

describe("Warp's work queue", () => {
  it("holds no offers beyond the claim being made, so one agent's claim leaves the rest to others", async () => {
    const projectId = uniqueProjectId();
    const a = await agentWarp(projectId, "a");
    const b = await agentWarp(projectId, "b");
    const offered = [];
    for (let i = 0; i < 3; i++)
      offered.push(await a.work.offer({ taskId: `t${i}`, description: "x", capability: "typescript" }));
    const first = await a.work.claim({ capability: "typescript", timeoutMs: 2_000 });
    expect(first).toBeDefined();
    // The two other offers are not held by `a`: `b` gets one at once.
    const second = await b.work.claim({ capability: "typescript", timeoutMs: 1_000 });
    expect(second).toBeDefined();
    expect(second?.workId).not.toBe(first?.workId);
    const status = await b.work.status("typescript");
    expect(status.capabilities[0]).toMatchObject({ queued: 1, inFlight: 2 });
  });
});
