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
import { createWeftMcpServer, mcpOperations, natsRequester, toolName } from "./mcp/server.js";
import { startWeftProcess, WEFT_BIN, type WeftProcess } from "./weft.test-helper.js";

let nats: NatsServer;
let weft: WeftProcess;
let fabric: Fabric;
const dir = tempDir("weft-mcp-");
const closers: Array<() => Promise<void>> = [];

beforeAll(async () => {
  nats = await NatsServer.start();
  weft = await startWeftProcess({
    cwd: dir.path,
    env: { NATS_URL: nats.url, WEFT_API_TOKENS: "mcp-test-admin-token-0123456789" },
  });
  fabric = await Fabric.connect({ nats: { servers: [nats.url] } });
});

afterAll(async () => {
  for (const c of closers.reverse()) await c().catch(() => undefined);
  await fabric?.close();
  await weft?.stop();
  await nats?.stop({ removeStore: true });
  dir.cleanup();
});

async function ok(client: TestClient, name: string, args: Record<string, unknown> = {}) {
  const r = await client.call(name, args);
  if (r.isError) throw new Error(`${name} failed: ${r.text}`);
  return r.structured ?? {};
}

/** The same conversation for every client: tools list, submit, read back, list, stats, errors. */
async function exercise(client: TestClient) {
  const tools = (await client.listTools()).map((t) => t.name);
  for (const op of mcpOperations()) expect(tools).toContain(toolName(op));
  // Target mutations run commands on Weft's host: not offered over MCP.
  expect(tools).not.toContain("weft_targets_create");
  expect(tools).not.toContain("weft_targets_spin_up");
  const submitted = await eventually(
    () => ok(client, "weft_work_submit", { description: "from MCP", capability: "typescript", priority: 3 }),
    { timeoutMs: 15_000 },
  );
  expect(submitted.status).toBe("pending");
  const workId = submitted.workId as string;
  const got = await ok(client, "weft_work_get", { workId });
  expect(got.priority).toBe(3);
  const list = await ok(client, "weft_work_list", { capability: "typescript" });
  expect((list.workItems as Array<{ workId: string }>).map((w) => w.workId)).toContain(workId);
  expect(await ok(client, "weft_agents_list")).toMatchObject({ agents: [] });
  expect(await ok(client, "weft_targets_list")).toMatchObject({ targets: [] });
  expect((await ok(client, "weft_stats")).work).toBeDefined();
  const cancelled = await ok(client, "weft_work_cancel", { workId, reason: "done with it" });
  expect(cancelled.status).toBe("cancelled");
  const missing = await client.call("weft_work_get", { workId: "0".repeat(32) });
  expect(missing.isError).toBe(true);
  expect(missing.error?.code).toBe("not_found");
  const bad = await client.call("weft_work_submit", { description: "x", capability: "Not A Token" });
  expect(bad.isError).toBe(true);
  expect(bad.error?.code).toBe("invalid_input");
  expect(bad.text).toMatch(/capability/);
}

describe("weft mcp", () => {
  for (const sdk of ["v2", "v1"] as const) {
    it(`answers a ${sdk} client in-process through a running Weft over NATS`, async () => {
      const p = uniqueProjectId();
      const client = await connectInMemory(createWeftMcpServer(natsRequester(fabric, p)), { sdk });
      closers.push(() => client.close());
      await exercise(client);
    });

    it(`the built bin over stdio answers a ${sdk} client`, async () => {
      const d = tempDir("weft-mcp-bin-");
      const client = await spawnStdio({
        command: process.execPath,
        args: [WEFT_BIN, "mcp"],
        cwd: d.path,
        env: { NATS_URL: nats.url, LOOMINAL_PROJECT_ID: uniqueProjectId(), LOOMINAL_LOG_LEVEL: "warn" },
        sdk,
      });
      closers.push(async () => {
        await client.close();
        d.cleanup();
      });
      await exercise(client);
    });
  }

  it("says no Weft answered when none runs for the project's subjects", async () => {
    const lonely = await NatsServer.start();
    const f = await Fabric.connect({ nats: { servers: [lonely.url] } });
    try {
      const client = await connectInMemory(createWeftMcpServer(natsRequester(f, uniqueProjectId())), {
        sdk: "v2",
      });
      const r = await client.call("weft_stats", {});
      expect(r.isError).toBe(true);
      expect(r.text).toMatch(/no Weft answered|weft serve/);
      await client.close();
    } finally {
      await f.close();
      await lonely.stop({ removeStore: true });
    }
  });
});
