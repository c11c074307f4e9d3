import { existsSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Fabric } from "@loominal/fabric";
import {
  connectInMemory,
  eventually,
  type McpSdk,
  NatsServer,
  sleep,
  spawnStdio,
  TcpProxy,
  type TestClient,
  tempDir,
  uniqueProjectId,
} from "@loominal/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createWarpServer } from "./mcp/server.js";
import type { AgentView } from "./registry.js";
import { Warp } from "./warp.js";
import { openWarp, projectConfig } from "./warp.test-helper.js";

const BIN = join(dirname(fileURLToPath(import.meta.url)), "..", "dist", "bin.js");

let nats: NatsServer;
const locks = tempDir("warp-locks-");
const cleanups: Array<() => Promise<void> | void> = [];

beforeAll(async () => {
  if (!existsSync(BIN))
    throw new Error(`${BIN} is missing: build first (pnpm --filter @loominal/warp build)`);
  nats = await NatsServer.start();
});
afterAll(async () => {
  for (const c of cleanups.reverse()) await Promise.resolve(c()).catch(() => undefined);
  await nats.stop();
  locks.cleanup();
});

async function ok(client: TestClient, name: string, args: Record<string, unknown> = {}) {
  const r = await client.call(name, args);
  if (r.isError) throw new Error(`${name} failed: ${r.text}`);
  return r.structured ?? {};
}

describe("presence", () => {
  for (const sdk of ["v2", "v1"] as McpSdk[]) {
    it(`an agent holding a claim shows busy and idle again once it completes (discover over a ${sdk} client)`, async () => {
      const p = uniqueProjectId();
      const a = projectConfig(nats.url, p, { env: { LOOMINAL_AGENT_NAME: "worker" } });
      const b = projectConfig(nats.url, p, { env: { LOOMINAL_AGENT_NAME: "lead" }, dir: a.dir });
      const wa = await openWarp(a.config, locks.path);
      const wb = await openWarp(b.config, locks.path);
      const lead = await connectInMemory(createWarpServer(wb.warp), { sdk });
      cleanups.push(async () => {
        await lead.close();
        await wa.close();
        await wb.close();
        a.cleanup();
      });
      await lead.listTools();
      await wa.warp.registry.register({ agentType: "claude-code", capabilities: ["typescript"] });
      const statusOf = async (status?: string) => {
        const r = await ok(lead, "warp_registry_discover", status ? { status } : {});
        return (r.agents as AgentView[]).map((x) => `${x.handle}:${x.status}`);
      };
      expect(await statusOf()).toEqual(["worker:idle"]);
      expect(await statusOf("idle")).toEqual(["worker:idle"]);
      expect(await statusOf("busy")).toEqual([]);

      await wb.warp.work.offer({ taskId: "t1", description: "fix the parser", capability: "typescript" });
      const claimed = await wa.warp.work.claim({ capability: "typescript", timeoutMs: 5_000 });
      expect(claimed).toBeDefined();
      // The worker called no presence tool: its process wrote that it holds a claim.
      await eventually(async () => expect(await statusOf("busy")).toEqual(["worker:busy"]));
      expect(await statusOf("idle")).toEqual([]);
      expect(await statusOf("online")).toEqual(["worker:busy"]);
      const info = await ok(lead, "warp_registry_get_info", { agentId: wa.warp.agentId });
      expect(info.agent).toMatchObject({ status: "busy", reportedStatus: "online", activeClaims: 1 });

      await wa.warp.work.complete(claimed?.workId ?? "", { summary: "done" });
      await eventually(async () => expect(await statusOf("idle")).toEqual(["worker:idle"]));
      expect(await statusOf("busy")).toEqual([]);

      // Saying it is busy makes it busy without a claim; 'online' leaves it to its claims again.
      await wa.warp.registry.updatePresence({ status: "busy" });
      expect(await statusOf("busy")).toEqual(["worker:busy"]);
      await wa.warp.registry.updatePresence({ status: "online" });
      expect(await statusOf("idle")).toEqual(["worker:idle"]);
    });
  }

  it("an agent process that is stopped (SIGSTOP) goes offline, and comes back when continued", async () => {
    const p = uniqueProjectId();
    const dir = tempDir("warp-presence-");
    writeFileSync(join(dir.path, ".loominal.json"), JSON.stringify({ warp: { heartbeatIntervalMs: 300 } }));
    const child = await spawnStdio({
      command: process.execPath,
      args: [BIN],
      cwd: dir.path,
      env: {
        NATS_URL: nats.url,
        LOOMINAL_PROJECT_ID: p,
        LOOMINAL_AGENT_NAME: "sleeper",
        LOOMINAL_LOG_LEVEL: "warn",
        LOOMINAL_TOOLS: "full",
      },
    });
    const o = projectConfig(nats.url, p, { env: { LOOMINAL_AGENT_NAME: "observer" }, dir: dir.path });
    const observer = await openWarp(o.config, locks.path);
    let stoppedPid: number | undefined;
    cleanups.push(async () => {
      if (stoppedPid !== undefined) process.kill(stoppedPid, "SIGCONT");
      await child.close();
      await observer.close();
      dir.cleanup();
    });
    await eventually(() => ok(child, "warp_handle_get"), { timeoutMs: 10_000 });
    const reg = await ok(child, "warp_registry_register", { agentType: "claude-code" });
    const agent = reg.agent as AgentView;
    const info = () => observer.warp.registry.getInfo(agent.agentId);
    expect((await info()).status).toBe("idle");

    process.kill(agent.pid, "SIGSTOP");
    stoppedPid = agent.pid;
    await eventually(async () => expect((await info()).status).toBe("offline"), { timeoutMs: 15_000 });
    const live = await observer.warp.registry.discover();
    expect(live.agents.map((x) => x.agentId)).not.toContain(agent.agentId);
    const offline = await observer.warp.registry.discover({ status: "offline" });
    expect(offline.agents.map((x) => x.agentId)).toContain(agent.agentId);

    process.kill(agent.pid, "SIGCONT");
    stoppedPid = undefined;
    await eventually(async () => expect((await info()).status).toBe("idle"), { timeoutMs: 15_000 });
  });

  it("an agent whose connection drops and reconnects keeps heartbeating and is never shown offline", async () => {
    const p = uniqueProjectId();
    const proxy = await TcpProxy.start(nats.port);
    const heartbeatIntervalMs = 1_000;
    const a = projectConfig(proxy.url, p, {
      env: { LOOMINAL_AGENT_NAME: "flaky" },
      file: { warp: { heartbeatIntervalMs } },
    });
    const o = projectConfig(nats.url, p, { env: { LOOMINAL_AGENT_NAME: "observer" }, dir: a.dir });
    const fabric = await Fabric.connect({
      nats: a.config.nats,
      reconnectDelayMs: 50,
      maxReconnectDelayMs: 100,
    });
    const warp = await Warp.open({ config: a.config, fabric, lockDir: locks.path });
    const observer = await openWarp(o.config, locks.path);
    cleanups.push(async () => {
      await warp.close();
      await fabric.close();
      await observer.close();
      await proxy.close();
      a.cleanup();
    });
    await warp.ready(5_000);
    await warp.registry.register({ agentType: "claude-code" });
    const info = () => observer.warp.registry.getInfo(warp.agentId);

    // Drop the connection right after a heartbeat, keep it away for most of the offline window
    // (3 intervals), and watch from another connection the whole time.
    const first = (await info()).lastHeartbeat;
    const beforeDrop = await eventually(
      async () => {
        const now = (await info()).lastHeartbeat;
        expect(now).not.toBe(first);
        return now;
      },
      { timeoutMs: 5_000, intervalMs: 20 },
    );
    proxy.down();
    const seen: string[] = [];
    const watchUntil = Date.now() + 4 * heartbeatIntervalMs;
    let reconnected = false;
    const watching = (async () => {
      while (Date.now() < watchUntil) {
        seen.push((await info()).status);
        await sleep(50);
      }
    })();
    await eventually(() => expect(fabric.isConnected).toBe(false), { timeoutMs: 5_000, intervalMs: 10 });
    await sleep(1.6 * heartbeatIntervalMs);
    proxy.up();
    await eventually(() => expect(fabric.isConnected).toBe(true), { timeoutMs: 5_000, intervalMs: 10 });
    reconnected = true;
    await watching;
    expect(reconnected).toBe(true);
    expect(seen.length).toBeGreaterThan(10);
    expect(seen.filter((s) => s === "offline")).toEqual([]);
    const after = await info();
    expect(after.status).toBe("idle");
    expect(Date.parse(after.lastHeartbeat)).toBeGreaterThan(Date.parse(beforeDrop));
  });
});
