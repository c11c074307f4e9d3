import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Fabric } from "@loominal/fabric";
import {
  connectInMemory,
  eventually,
  NatsServer,
  spawnStdio,
  type TestClient,
  tempDir,
  uniqueProjectId,
} from "@loominal/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Warp } from "../warp.js";
import { projectConfig } from "../warp.test-helper.js";
import { createWarpServer } from "./server.js";

const BIN = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "dist", "bin.js");

let nats: NatsServer;
const locks = tempDir("warp-locks-");
const opened: Array<() => Promise<void>> = [];

beforeAll(async () => {
  nats = await NatsServer.start();
});
afterAll(async () => {
  for (const close of opened.reverse()) await close().catch(() => undefined);
  await nats.stop();
  locks.cleanup();
});

async function ok(client: TestClient, name: string, args: Record<string, unknown> = {}) {
  const r = await client.call(name, args);
  if (r.isError) throw new Error(`${name} failed: ${r.text}`);
  return r.structured ?? {};
}

/**
 * The v1 SDK client (`@modelcontextprotocol/sdk` 1.x) checks every result's structuredContent against the
 * output schema it saw in `tools/list` and throws when it does not match, so these tests prove that both
 * successful results and error results reach it.
 */
describe("warp MCP server with a v1 SDK client", () => {
  it("answers calls, and an error reaches the client with its code and message", async () => {
    const p = uniqueProjectId();
    const { config, cleanup } = projectConfig(nats.url, p, { env: { LOOMINAL_AGENT_NAME: "v1" } });
    const fabric = Fabric.start({ nats: config.nats });
    const warp = await Warp.open({ config, fabric, lockDir: locks.path });
    const client = await connectInMemory(createWarpServer(warp), { sdk: "v1" });
    opened.push(async () => {
      await client.close();
      await warp.close();
      await fabric.close();
      cleanup();
    });
    // listTools first: that is when a v1 client learns the output schemas it then enforces.
    expect((await client.listTools()).length).toBeGreaterThan(20);

    const missing = await client.call("warp_channels_send", { channel: "no-such-channel", message: "x" });
    expect(missing).toMatchObject({ isError: true, structured: undefined });
    expect(missing.error?.code).toBe("not_found");
    expect(missing.text).toMatch(/^not_found: channel "no-such-channel" is not configured/);
    const badArgs = await client.call("warp_channels_read", { channel: "roadmap", limit: "all" });
    expect(badArgs.error?.code).toBe("invalid_input");

    await eventually(() => ok(client, "warp_handle_get"), { timeoutMs: 10_000 });
    await ok(client, "warp_handle_set", { handle: "v1-agent" });
    await ok(client, "warp_channels_list");
    const sent = await ok(client, "warp_channels_send", { channel: "roadmap", message: "from v1" });
    expect(sent.seq).toBe(1);
    const page = await ok(client, "warp_channels_read", { channel: "roadmap" });
    expect(page.messages).toEqual([expect.objectContaining({ message: "from v1" })]);
    await ok(client, "warp_channels_status");
    await ok(client, "warp_registry_register", { agentType: "claude-code", capabilities: ["typescript"] });
    const found = await ok(client, "warp_registry_discover", { capability: "typescript" });
    expect((found.agents as unknown[]).length).toBe(1);
    await ok(client, "warp_messages_send_direct", { agentId: warp.agentId, message: "note to self" });
    expect((await ok(client, "warp_messages_read_direct")).count).toBe(1);
    const offered = await ok(client, "warp_work_broadcast", {
      taskId: "t1",
      capability: "typescript",
      description: "v1 work",
    });
    const claimed = await ok(client, "warp_work_claim", { capability: "typescript" });
    expect((claimed.item as { workId: string }).workId).toBe(offered.workId);
    await ok(client, "warp_work_complete", { workId: offered.workId, result: { ok: true } });
    const again = await client.call("warp_work_complete", { workId: offered.workId, result: {} });
    expect(again.isError).toBe(true);
    expect(again.error?.code).toMatch(/^(conflict|invalid_transition)$/);
    await ok(client, "warp_work_list", { capability: "typescript" });
    await ok(client, "warp_work_queue_status", { capability: "typescript" });
  });

  it("the built bin over stdio answers a v1 client, errors included", async () => {
    if (!existsSync(BIN)) throw new Error(`${BIN} is missing: build first`);
    const dir = tempDir("warp-v1-bin-");
    const client = await spawnStdio({
      command: process.execPath,
      args: [BIN],
      cwd: dir.path,
      env: {
        NATS_URL: nats.url,
        LOOMINAL_PROJECT_ID: uniqueProjectId(),
        LOOMINAL_LOG_LEVEL: "warn",
        LOOMINAL_TOOLS: "full",
      },
      sdk: "v1",
    });
    opened.push(async () => {
      await client.close();
      dir.cleanup();
    });
    await client.listTools();
    const me = await eventually(() => ok(client, "warp_handle_get"), { timeoutMs: 10_000 });
    expect(me.agentId).toMatch(/^[0-9a-f]{32}$/);
    const missing = await client.call("warp_channels_send", { channel: "no-such-channel", message: "x" });
    expect(missing.error?.code).toBe("not_found");
    expect(missing.text).toMatch(/not configured/);
  });
});
