import { Fabric } from "@loominal/fabric";
import { type AgentRecord, keys } from "@loominal/protocol";
import { eventually, NatsServer, tempDir, uniqueProjectId } from "@loominal/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { REGISTRY_BUCKET } from "./registry.js";
import { openWarp, projectConfig } from "./warp.test-helper.js";

let nats: NatsServer;
const locks = tempDir("warp-locks-");

beforeAll(async () => {
  nats = await NatsServer.start();
});
afterAll(async () => {
  await nats.stop();
  locks.cleanup();
});

const fast = { warp: { heartbeatIntervalMs: 400 } };

describe("registry", () => {
  it("a registry bucket deleted under a running server is created again and refilled by heartbeats", async () => {
    const own = await NatsServer.start();
    const p = uniqueProjectId();
    const a = projectConfig(own.url, p, { env: { LOOMINAL_AGENT_NAME: "alice" }, file: fast });
    const b = projectConfig(own.url, p, { env: { LOOMINAL_AGENT_NAME: "bob" }, dir: a.dir });
    const wa = await openWarp(a.config, locks.path);
    const wb = await openWarp(b.config, locks.path);
    try {
      await wa.warp.registry.register({ agentType: "claude-code", capabilities: ["typescript"] });
      expect((await wb.warp.registry.discover()).agents.map((x) => x.handle)).toEqual(["alice"]);
      await (await wb.fabric.jsm()).streams.delete(`KV_${REGISTRY_BUCKET.name}`);
      // The next read creates the bucket again (empty); alice's next heartbeat writes her entry back.
      expect((await wb.warp.registry.discover()).agents).toEqual([]);
      await eventually(async () => {
        const found = await wb.warp.registry.discover({ capability: "typescript" });
        expect(found.agents.map((x) => x.handle)).toEqual(["alice"]);
      });
      expect(wa.warp.registry.registered).toBe(true);
      await wa.warp.registry.updatePresence({ status: "busy" });
      expect((await wb.warp.registry.getInfo(wa.warp.agentId)).status).toBe("busy");
    } finally {
      await wa.close();
      await wb.close();
      a.cleanup();
      await own.stop();
    }
  });

  it("discovers registered agents by type, capability, boundary and status", async () => {
    const p = uniqueProjectId();
    const a = projectConfig(nats.url, p, { env: { LOOMINAL_AGENT_NAME: "alice" } });
    const b = projectConfig(nats.url, p, { env: { LOOMINAL_AGENT_NAME: "bob" }, dir: a.dir });
    const wa = await openWarp(a.config, locks.path);
    const wb = await openWarp(b.config, locks.path);
    try {
      await wa.warp.registry.register({ agentType: "claude-code", capabilities: ["typescript", "review"] });
      await wb.warp.registry.register({
        agentType: "copilot-cli",
        capabilities: ["python"],
        boundaries: ["corporate"],
      });
      const all = await wa.warp.registry.discover();
      expect(all.agents.map((x) => x.handle).sort()).toEqual(["alice", "bob"]);
      expect((await wa.warp.registry.discover({ capability: "python" })).agents.map((x) => x.handle)).toEqual(
        ["bob"],
      );
      expect(
        (await wa.warp.registry.discover({ agentType: "claude-code" })).agents.map((x) => x.handle),
      ).toEqual(["alice"]);
      // alice has no boundaries, so she accepts every one.
      expect((await wa.warp.registry.discover({ boundary: "personal" })).agents.map((x) => x.handle)).toEqual(
        ["alice"],
      );
      await wb.warp.registry.updatePresence({ status: "busy", currentTaskCount: 1 });
      const busy = await wa.warp.registry.discover({ status: "busy" });
      expect(busy.agents.map((x) => x.handle)).toEqual(["bob"]);
      expect(busy.agents[0]?.currentTaskCount).toBe(1);

      const page1 = await wa.warp.registry.discover({ limit: 1 });
      expect(page1.hasMore).toBe(true);
      const page2 = await wa.warp.registry.discover({ limit: 1, cursor: page1.nextCursor ?? "" });
      expect(page2.hasMore).toBe(false);
      expect([page1.agents[0]?.agentId, page2.agents[0]?.agentId].sort()).toEqual(
        [wa.warp.agentId, wb.warp.agentId].sort(),
      );

      const info = await wb.warp.registry.getInfo(wa.warp.agentId);
      expect(info.capabilities).toEqual(["typescript", "review"]);
      await wa.warp.registry.deregister();
      await expect(wb.warp.registry.getInfo(wa.warp.agentId)).rejects.toMatchObject({ code: "not_found" });
      await expect(wa.warp.registry.updatePresence({ status: "busy" })).rejects.toMatchObject({
        code: "not_registered",
      });
    } finally {
      await wa.close();
      await wb.close();
      a.cleanup();
    }
  });

  it("a private registration is discoverable only by the agent itself", async () => {
    const p = uniqueProjectId();
    const a = projectConfig(nats.url, p, { env: { LOOMINAL_AGENT_NAME: "alice" } });
    const b = projectConfig(nats.url, p, { env: { LOOMINAL_AGENT_NAME: "bob" }, dir: a.dir });
    const wa = await openWarp(a.config, locks.path);
    const wb = await openWarp(b.config, locks.path);
    try {
      await wa.warp.registry.register({ agentType: "claude-code", scope: "private" });
      expect((await wb.warp.registry.discover()).agents).toEqual([]);
      await expect(wb.warp.registry.getInfo(wa.warp.agentId)).rejects.toMatchObject({ code: "not_found" });
      expect((await wa.warp.registry.discover()).agents.map((x) => x.agentId)).toEqual([wa.warp.agentId]);
    } finally {
      await wa.close();
      await wb.close();
      a.cleanup();
    }
  });

  it("public agents of other projects are found with scope public, never by default", async () => {
    const a = projectConfig(nats.url, uniqueProjectId(), { env: { LOOMINAL_AGENT_NAME: "alice" } });
    const b = projectConfig(nats.url, uniqueProjectId(), { env: { LOOMINAL_AGENT_NAME: "bob" }, dir: a.dir });
    const wa = await openWarp(a.config, locks.path);
    const wb = await openWarp(b.config, locks.path);
    try {
      await wa.warp.registry.register({ agentType: "claude-code", scope: "public" });
      expect((await wb.warp.registry.discover()).agents).toEqual([]);
      const pub = await wb.warp.registry.discover({ scope: "public" });
      expect(pub.agents.map((x) => x.agentId)).toContain(wa.warp.agentId);
    } finally {
      await wa.close();
      await wb.close();
      a.cleanup();
    }
  });

  it("heartbeats keep an agent online; when they stop it is shown and marked offline without any call", async () => {
    const p = uniqueProjectId();
    // Both share the project directory, so both run 400 ms heartbeats and reaper passes.
    const a = projectConfig(nats.url, p, { env: { LOOMINAL_AGENT_NAME: "alice" }, file: fast });
    const b = projectConfig(nats.url, p, { env: { LOOMINAL_AGENT_NAME: "bob" }, dir: a.dir });
    const wa = await openWarp(a.config, locks.path);
    const wb = await openWarp(b.config, locks.path);
    try {
      await wa.warp.registry.register({ agentType: "claude-code" });
      // Well past 3 intervals: still online because heartbeats continue.
      await new Promise((r) => setTimeout(r, 2_000));
      expect((await wb.warp.registry.getInfo(wa.warp.agentId)).status).toBe("idle");
      // Simulate a process that died: its connection goes away without a goodbye.
      await wa.fabric.close();
      const seen = await eventually(
        async () => {
          const info = await wb.warp.registry.getInfo(wa.warp.agentId);
          if (info.status !== "offline") throw new Error(`still ${info.status}`);
          return info;
        },
        { timeoutMs: 5_000 },
      );
      expect(["online", "offline"]).toContain(seen.reportedStatus);
      // bob's reaper (running every interval in the background) writes it down for raw KV readers.
      await eventually(
        async () => {
          const info = await wb.warp.registry.getInfo(wa.warp.agentId);
          if (info.reportedStatus !== "offline") throw new Error("not reaped yet");
        },
        { timeoutMs: 5_000 },
      );
      expect((await wb.warp.registry.discover()).agents).toEqual([]);
      expect((await wb.warp.registry.discover({ includeOffline: true })).agents.map((x) => x.handle)).toEqual(
        ["alice"],
      );
    } finally {
      await wa.warp.close();
      await wb.close();
      a.cleanup();
    }
  });

  it("get_info finds an agent of another project when its scope allows, and only then", async () => {
    const pa = uniqueProjectId();
    const pb = uniqueProjectId();
    const a = projectConfig(nats.url, pa, {
      env: { LOOMINAL_AGENT_NAME: "alice", LOOMINAL_USER_ID: "a".repeat(32) },
    });
    const c = projectConfig(nats.url, pa, {
      env: { LOOMINAL_AGENT_NAME: "carol", LOOMINAL_USER_ID: "b".repeat(32) },
      dir: a.dir,
    });
    const b = projectConfig(nats.url, pb, {
      env: { LOOMINAL_AGENT_NAME: "bob", LOOMINAL_USER_ID: "b".repeat(32) },
    });
    const wa = await openWarp(a.config, locks.path);
    const wc = await openWarp(c.config, locks.path);
    const wb = await openWarp(b.config, locks.path);
    try {
      await wa.warp.registry.register({ agentType: "claude-code", scope: "public" });
      await wc.warp.registry.register({ agentType: "claude-code", scope: "personal" });
      // Found by discover, so get_info must find it too.
      const pub = await wb.warp.registry.discover({ scope: "public" });
      expect(pub.agents.map((x) => x.agentId)).toContain(wa.warp.agentId);
      const alice = await wb.warp.registry.getInfo(wa.warp.agentId);
      expect(alice).toMatchObject({ agentId: wa.warp.agentId, projectId: pa, scope: "public" });
      expect(await wb.warp.registry.getInfo(wa.warp.agentId, { projectId: pa })).toMatchObject({
        projectId: pa,
      });
      // Personal: visible to agents of the same user (bob and carol share one), in any project.
      expect((await wb.warp.registry.getInfo(wc.warp.agentId)).projectId).toBe(pa);

      // Team scope stays inside its project.
      await wa.warp.registry.register({ agentType: "claude-code", scope: "team" });
      await expect(wb.warp.registry.getInfo(wa.warp.agentId)).rejects.toMatchObject({
        code: "not_found",
        message: expect.stringContaining("another project"),
      });
      expect((await wc.warp.registry.getInfo(wa.warp.agentId)).scope).toBe("team");
      // Asking in the wrong project finds nothing, even for a public agent.
      await wa.warp.registry.register({ agentType: "claude-code", scope: "public" });
      await expect(wb.warp.registry.getInfo(wa.warp.agentId, { projectId: pb })).rejects.toMatchObject({
        code: "not_found",
      });
      await expect(
        wb.warp.registry.getInfo(wa.warp.agentId, { projectId: "Not A Project" }),
      ).rejects.toMatchObject({ code: "invalid_name" });
    } finally {
      await wa.close();
      await wc.close();
      await wb.close();
      a.cleanup();
      b.cleanup();
    }
  });

  it("an agentId visible in several other projects must be given with its projectId", async () => {
    const b = projectConfig(nats.url, uniqueProjectId(), { env: { LOOMINAL_AGENT_NAME: "bob" } });
    const wb = await openWarp(b.config, locks.path);
    const twins = [uniqueProjectId(), uniqueProjectId()];
    const agentId = "c".repeat(32);
    try {
      const kv = await wb.fabric.kvm.open(REGISTRY_BUCKET.name);
      const now = new Date().toISOString();
      for (const projectId of twins) {
        const record: AgentRecord = {
          agentId,
          projectId,
          userId: "d".repeat(32),
          handle: "twin",
          agentType: "claude-code",
          capabilities: [],
          boundaries: [],
          scope: "public",
          status: "online",
          currentTaskCount: 0,
          maxConcurrentTasks: 1,
          hostname: "elsewhere",
          pid: 1,
          registeredAt: now,
          lastHeartbeat: now,
          heartbeatIntervalMs: 15_000,
        };
        await kv.put(keys.registry(projectId, agentId), JSON.stringify(record));
      }
      await expect(wb.warp.registry.getInfo(agentId)).rejects.toMatchObject({
        code: "conflict",
        details: { projects: [...twins].sort() },
      });
      for (const projectId of twins)
        expect((await wb.warp.registry.getInfo(agentId, { projectId })).projectId).toBe(projectId);
    } finally {
      await wb.close();
      b.cleanup();
    }
  });

  it("a restarted agent registers with no tasks, while re-registering in the same process keeps its count", async () => {
    const a = projectConfig(nats.url, uniqueProjectId(), { env: { LOOMINAL_AGENT_NAME: "alice" } });
    let wa = await openWarp(a.config, locks.path);
    try {
      await wa.warp.registry.register({ agentType: "claude-code" });
      await wa.warp.registry.updatePresence({ currentTaskCount: 2 });
      expect((await wa.warp.registry.register({ agentType: "claude-code" })).currentTaskCount).toBe(2);
      const agentId = wa.warp.agentId;
      const key = keys.registry(a.config.projectId, agentId);
      const admin = await Fabric.connect({ nats: a.config.nats });
      const kv = await admin.kvm.open(REGISTRY_BUCKET.name);
      await wa.close();
      // What a process that died holding three tasks left behind.
      const left = JSON.parse(new TextDecoder().decode((await kv.get(key))?.value)) as AgentRecord;
      await kv.put(key, JSON.stringify({ ...left, pid: process.pid + 1, currentTaskCount: 3 }));
      await admin.close();
      wa = await openWarp(a.config, locks.path);
      expect(wa.warp.agentId).toBe(agentId);
      const again = await wa.warp.registry.register({ agentType: "claude-code" });
      expect(again.currentTaskCount).toBe(0);
      expect((await wa.warp.registry.getInfo(agentId)).currentTaskCount).toBe(0);
    } finally {
      await wa.close();
      a.cleanup();
    }
  });
});
