import { randomId } from "@loominal/protocol";
import { uniqueProjectId } from "@loominal/testkit";
import { describe, expect, it } from "vitest";
import { type WaitingWorkAgent, waitingWork } from "./index.js";
import { offer, useWorkQueues } from "./work.test-helper.js";

const work = useWorkQueues();

function me(capabilities: string[], boundaries: string[] = []): WaitingWorkAgent {
  return { agentId: randomId(), userId: randomId(), agentType: "developer", capabilities, boundaries };
}

describe("waitingWork", () => {
  it("lists new pending offers of the agent's capabilities and boundaries that it may claim, newest first", async () => {
    const projectId = uniqueProjectId();
    const { queue: offerer, fabric } = await work.agent({ projectId });
    const { queue: claimer } = await work.agent({ projectId });
    const agent = me(["typescript", "review"]);
    expect(await waitingWork(fabric, projectId, agent)).toMatchObject({ offers: [], waiting: [] });

    const taken = await offerer.offer(offer("taken"));
    expect((await claimer.claim({ capability: "typescript", timeoutMs: 5_000 }))?.workId).toBe(taken.workId);
    const ts = await offerer.offer(offer("ts", { description: "fix the types", priority: 8 }));
    const review = await offerer.offer(offer("review", { capability: "review", boundary: "web" }));
    await offerer.offer(offer("deploy", { capability: "deploy" }));
    await offerer.offer(offer("private", { scope: "private" }));
    await offerer.offer(offer("copilot-only", { requiredAgentType: "copilot-cli" }));

    const first = await waitingWork(fabric, projectId, agent);
    expect(first.offers.map((o) => o.taskId)).toEqual(["review", "ts"]);
    expect(first.offers[1]).toMatchObject({
      workId: ts.workId,
      capability: "typescript",
      boundary: "default",
      priority: 8,
      description: "fix the types",
    });
    expect(first.waiting.find((w) => w.capability === "review")?.count).toBe(1);
    expect(first.waiting.map((w) => w.capability).sort()).toEqual(["review", "typescript"]);
    expect(first.stream).toBeDefined();

    // Only the web boundary.
    const web = await waitingWork(fabric, projectId, me(["typescript", "review"], ["web"]));
    expect(web.offers.map((o) => o.workId)).toEqual([review.workId]);

    // Past what was looked at, only what arrived since.
    const since = { ...(first.stream ? { stream: first.stream } : {}), after: first.lookedAt };
    expect((await waitingWork(fabric, projectId, agent, since)).offers).toEqual([]);
    const later = await offerer.offer(offer("later"));
    const second = await waitingWork(fabric, projectId, agent, since);
    expect(second.offers.map((o) => o.workId)).toEqual([later.workId]);
    // A look-up recorded for another work stream counts for nothing.
    const elsewhere = await waitingWork(fabric, projectId, agent, {
      stream: "2000-01-01T00:00:00Z",
      after: second.lookedAt,
    });
    expect(elsewhere.offers).toHaveLength(3);
  });

  it("reads at most maxReads offers and counts the rest", async () => {
    const projectId = uniqueProjectId();
    const { queue: offerer, fabric } = await work.agent({ projectId });
    for (let i = 0; i < 5; i++) await offerer.offer(offer(`t${i}`));
    const agent = me(["typescript"]);
    const first = await waitingWork(fabric, projectId, agent, { maxReads: 2 });
    expect(first.offers.map((o) => o.taskId)).toEqual(["t1", "t0"]);
    expect(first.waiting).toEqual([{ capability: "typescript", count: 5 }]);
    const next = await waitingWork(fabric, projectId, agent, {
      ...(first.stream ? { stream: first.stream } : {}),
      after: first.lookedAt,
    });
    expect(next.offers).toEqual([]);
  });
});
