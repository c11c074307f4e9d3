import { Fabric } from "@loominal/fabric";
import {
  connectInMemory,
  eventually,
  type McpSdk,
  NatsServer,
  type TestClient,
  tempDir,
} from "@loominal/testkit";
import { afterAll, beforeAll } from "vitest";
import { Warp } from "../warp.js";
import { projectConfig } from "../warp.test-helper.js";
import { createWarpServer } from "./server.js";

/** Calls a tool and returns its structured result; an error result throws, naming the tool. */
export async function ok(client: TestClient, name: string, args: Record<string, unknown> = {}) {
  const r = await client.call(name, args);
  if (r.isError) throw new Error(`${name} failed: ${r.text}`);
  return r.structured ?? {};
}

/**
 * One nats-server for the test file (started before its tests, stopped after) and `agent()`: a registered
 * agent with a handle, its Warp served to an in-memory MCP client of the given SDK generation. Agents of one
 * project share a directory when `dir` is given.
 */
export function mcpAgents() {
  let nats: NatsServer;
  const locks = tempDir("warp-locks-");
  const cleanups: Array<() => Promise<void>> = [];
  beforeAll(async () => {
    nats = await NatsServer.start();
  });
  afterAll(async () => {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
    await nats.stop();
    locks.cleanup();
  });
  return async function agent(p: string, name: string, dir: string | undefined, sdk: McpSdk) {
    const cfg = projectConfig(nats.url, p, { env: { LOOMINAL_AGENT_NAME: name }, ...(dir ? { dir } : {}) });
    const fabric = Fabric.start({ nats: cfg.config.nats });
    const warp = await Warp.open({ config: cfg.config, fabric, lockDir: locks.path });
    const client = await connectInMemory(createWarpServer(warp), { sdk });
    cleanups.push(async () => {
      await client.close();
      await warp.close();
      await fabric.close();
      if (!dir) cfg.cleanup();
    });
    await client.listTools();
    await eventually(() => ok(client, "warp_handle_get"), { timeoutMs: 10_000 });
    await ok(client, "warp_handle_set", { handle: name });
    await ok(client, "warp_registry_register", { agentType: "claude-code" });
    return { warp, client, dir: cfg.dir };
  };
}
