import { Fabric } from "@loominal/fabric";
import { randomId, warpConfigSchema } from "@loominal/protocol";
import { NatsServer, uniqueProjectId } from "@loominal/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BoundaryPolicies, WorkQueue } from "./index.js";

let server: NatsServer;
const fabrics: Fabric[] = [];
const queues: WorkQueue[] = [];

beforeAll(async () => {
  server = await NatsServer.start();
});

afterAll(async () => {
  for (const q of queues) await q.close();
  for (const f of fabrics) await f.close();
  await server?.stop();
});

async function queueAs(projectId: string, agentType: string | undefined): Promise<WorkQueue> {
  const fabric = await Fabric.connect({ nats: { servers: [server.url] } });
  fabrics.push(fabric);
  const q = new WorkQueue({
    fabric,
    projectId,
    agentId: randomId(),
    userId: randomId(),
    settings: { ...warpConfigSchema.parse({}).work, ackWaitMs: 2_000 },
    agentType: () => agentType,
  });
  queues.push(q);
  return q;
}

describe("routing enforced at claim", () => {
  it("a boundary that allows only copilot-cli is never claimed by a claude-code agent, and its offer stays queued", async () => {
    const p = uniqueProjectId();
    const fabric = await Fabric.connect({ nats: { servers: [server.url] } });
    fabrics.push(fabric);
    const boundary = `corp-${randomId().slice(0, 6)}`;
    await new BoundaryPolicies(fabric).put({ boundary, allowedAgentTypes: ["copilot-cli"], spinUp: true });
    const claude = await queueAs(p, "claude-code");
    const unregistered = await queueAs(p, undefined);
    const copilot = await queueAs(p, "copilot-cli");
    const item = await claude.offer({ taskId: "t", description: "d", capability: "typescript", boundary });
    await expect(claude.claim({ capability: "typescript", boundary, timeoutMs: 300 })).rejects.toMatchObject({
      code: "forbidden",
    });
    await expect(unregistered.claim({ capability: "typescript", boundary, timeoutMs: 300 })).rejects.toThrow(
      /register/,
    );
    // Refused before pulling: nothing was delivered, so nothing bounces.
    const status = await claude.status("typescript");
    expect(status.capabilities[0]?.boundaries.find((b) => b.boundary === boundary)).toMatchObject({
      queued: 1,
      inFlight: 0,
    });
    const claimed = await copilot.claim({ capability: "typescript", boundary, timeoutMs: 5_000 });
    expect(claimed?.workId).toBe(item.workId);
  });

  it("an item with requiredAgentType is claimed only by that type", async () => {
    const p = uniqueProjectId();
    const claude = await queueAs(p, "claude-code");
    const copilot = await queueAs(p, "copilot-cli");
    const item = await claude.offer({
      taskId: "t",
      description: "d",
      capability: "go",
      requiredAgentType: "copilot-cli",
    });
    expect(await claude.claim({ capability: "go", timeoutMs: 500 })).toBeUndefined();
    const claimed = await copilot.claim({ capability: "go", timeoutMs: 10_000 });
    expect(claimed?.workId).toBe(item.workId);
    expect(claimed?.requiredAgentType).toBe("copilot-cli");
  });
});
