import { randomId } from "@loominal/protocol";
import { uniqueProjectId } from "@loominal/testkit";
import { describe, expect, it } from "vitest";
import { BoundaryPolicies, type WorkQueue } from "./index.js";
import { useWorkQueues } from "./work.test-helper.js";

const work = useWorkQueues();

async function queueAs(projectId: string, agentType: string | undefined): Promise<WorkQueue> {
  return (await work.agent({ projectId, work: { ackWaitMs: 2_000 }, agentType: () => agentType })).queue;
}

describe("routing enforced at claim", () => {
  it("a boundary that allows only copilot-cli is never claimed by a claude-code agent, and its offer stays queued", async () => {
    const p = uniqueProjectId();
    const fabric = await work.connect();
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
