import { buckets } from "@loominal/protocol";
import { eventually, NatsServer, uniqueProjectId } from "@loominal/testkit";
import { afterAll, describe, expect, it } from "vitest";
import { openAgent, type TestAgent } from "./pattern.test-helper.js";

const servers: NatsServer[] = [];
const agents: TestAgent[] = [];

afterAll(async () => {
  for (const a of agents) await a.close();
  for (const s of servers) await s.stop({ removeStore: true });
});

async function agentOn(server: NatsServer): Promise<TestAgent> {
  const a = await openAgent(server.url, { projectId: uniqueProjectId() });
  agents.push(a);
  return a;
}

describe("Pattern when NATS or JetStream is not there", () => {
  it("answers nats_unavailable (not internal) when the server runs without JetStream", async () => {
    const server = await NatsServer.start({ jetstream: false });
    servers.push(server);
    const a = await agentOn(server);
    const remember = await a.fails("pattern_remember", { content: "x" });
    expect(remember.code).toBe("nats_unavailable");
    expect(remember.message).toMatch(/JetStream did not answer.*-js/);
    const recall = await a.fails("pattern_recall_context", {});
    expect(recall.code).toBe("nats_unavailable");
  });

  it("answers nats_unavailable while the server is down, and works again once it is back", async () => {
    const server = await NatsServer.start();
    servers.push(server);
    const a = await agentOn(server);
    await a.ok("pattern_remember", { content: "before the outage" });
    await server.kill();
    const during = await a.fails("pattern_remember", { content: "during the outage" });
    expect(during.code).toBe("nats_unavailable");
    await server.restart();
    await a.fabric.ready(10_000);
    await a.ok("pattern_remember", { content: "after the outage" });
  });

  it("recreates a memory bucket deleted under a running server; the next calls succeed", async () => {
    const server = await NatsServer.start();
    servers.push(server);
    const a = await agentOn(server);
    await a.ok("pattern_remember", { content: "kept in team memory", scope: "team" });
    await a.ok("pattern_remember", { content: "ephemeral note", category: "recent" });
    await a.ok("pattern_recall_context", {});
    const jsm = await a.fabric.jsm();
    const projectId = a.config.projectId;
    await jsm.streams.delete(`KV_${buckets.memory(projectId)}`);
    await jsm.streams.delete(`KV_${buckets.memoryEphemeral(projectId)}`);
    const after = await a.ok("pattern_remember", { content: "written after the delete", scope: "team" });
    expect(after).toHaveProperty("memory");
    await a.ok("pattern_remember", { content: "ephemeral again", category: "recent" });
    const recall = await a.ok("pattern_recall_context", {});
    expect(JSON.stringify(recall)).toContain("written after the delete");
    expect(JSON.stringify(recall)).toContain("ephemeral again");
    expect(JSON.stringify(recall)).not.toContain("kept in team memory");
  });

  it("a recall after a memory bucket vanished (no write in between) no longer shows what it held", async () => {
    const server = await NatsServer.start();
    servers.push(server);
    const a = await agentOn(server);
    await a.ok("pattern_remember", { content: "held before the delete", scope: "team" });
    expect(JSON.stringify(await a.ok("pattern_recall_context", {}))).toContain("held before the delete");
    const jsm = await a.fabric.jsm();
    await jsm.streams.delete(`KV_${buckets.memory(a.config.projectId)}`);
    await eventually(
      async () => {
        const recall = await a.ok("pattern_recall_context", {});
        expect(JSON.stringify(recall)).not.toContain("held before the delete");
      },
      { timeoutMs: 20_000 },
    );
    await a.ok("pattern_remember", { content: "after", scope: "team" });
    expect(JSON.stringify(await a.ok("pattern_recall_context", {}))).toContain("after");
  });
});
