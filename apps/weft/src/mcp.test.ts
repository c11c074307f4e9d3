import { Fabric } from "@loominal/fabric";
import {
  connectInMemory,
  eventually,
  NatsServer,
  runToExit,
  spawnStdio,
  type TestClient,
  tempDir,
  uniqueProjectId,
} from "@loominal/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createWeftMcpServer,
  mcpOperations,
  natsRequester,
  toolName,
  WEFT_CORE_TOOLS,
  WEFT_GATEWAY_TOOL,
} from "./mcp/server.js";
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

/**
 * Calls a tool as an agent would: directly when the client lists it, else through weft_more (the core
 * profile). Either way the result is the tool's own.
 */
async function call(client: TestClient, listed: string[], name: string, args: Record<string, unknown> = {}) {
  return listed.includes(name)
    ? client.call(name, args)
    : client.call(WEFT_GATEWAY_TOOL, { tool: name, arguments: args });
}

/** The same conversation for every client and profile: tools, submit, read back, list, stats, errors. */
async function exercise(client: TestClient, profile: "core" | "full") {
  const tools = await client.listTools();
  const listed = tools.map((t) => t.name);
  for (const t of tools) {
    const { properties = {} } = t.inputSchema as { properties?: Record<string, { description?: string }> };
    for (const [name, p] of Object.entries(properties))
      expect(p.description, `${t.name}.${name} has a description`).toBeTruthy();
  }
  const ok = async (name: string, args: Record<string, unknown> = {}) => {
    const r = await call(client, listed, name, args);
    if (r.isError) throw new Error(`${name} failed: ${r.text}`);
    return r.structured ?? {};
  };
  let reachable = listed;
  if (profile === "core") {
    expect(listed).toEqual([...WEFT_CORE_TOOLS, WEFT_GATEWAY_TOOL]);
    const more = await ok(WEFT_GATEWAY_TOOL);
    reachable = [...listed, ...(more.tools as Array<{ name: string }>).map((t) => t.name)];
  } else {
    expect(listed).not.toContain(WEFT_GATEWAY_TOOL);
  }
  for (const op of mcpOperations()) expect(reachable).toContain(toolName(op));
  // Target mutations run commands on Weft's host: not offered over MCP.
  expect(reachable).not.toContain("weft_targets_create");
  expect(reachable).not.toContain("weft_targets_spin_up");
  const submitted = await eventually(
    () => ok("weft_work_submit", { description: "from MCP", capability: "typescript", priority: 3 }),
    { timeoutMs: 15_000 },
  );
  expect(submitted.status).toBe("pending");
  const workId = submitted.workId as string;
  const got = await ok("weft_work_get", { workId });
  expect(got.priority).toBe(3);
  const list = await ok("weft_work_list", { capability: "typescript" });
  expect((list.workItems as Array<{ workId: string }>).map((w) => w.workId)).toContain(workId);
  expect(await ok("weft_agents_list")).toMatchObject({ agents: [] });
  expect(await ok("weft_targets_list")).toMatchObject({ targets: [] });
  expect((await ok("weft_stats")).work).toBeDefined();
  const cancelled = await ok("weft_work_cancel", { workId, reason: "done with it" });
  expect(cancelled.status).toBe("cancelled");
  const missing = await call(client, listed, "weft_work_get", { workId: "0".repeat(32) });
  expect(missing.isError).toBe(true);
  expect(missing.error?.code).toBe("not_found");
  // An error of a tool outside the core profile reaches the client through the gateway too.
  const notFound = await call(client, listed, "weft_agents_get", { agentId: "0".repeat(32) });
  expect(notFound).toMatchObject({ isError: true, structured: undefined });
  expect(notFound.error?.code).toBe("not_found");
  const bad = await call(client, listed, "weft_work_submit", { description: "x", capability: "Not A Token" });
  expect(bad.isError).toBe(true);
  expect(bad.error?.code).toBe("invalid_input");
  expect(bad.text).toMatch(/capability/);
}

describe("weft mcp", () => {
  for (const sdk of ["v2", "v1"] as const) {
    it(`answers a ${sdk} client in-process through a running Weft over NATS, every tool listed`, async () => {
      const p = uniqueProjectId();
      const client = await connectInMemory(createWeftMcpServer(natsRequester(fabric, p)), { sdk });
      closers.push(() => client.close());
      await exercise(client, "full");
    });

    it(`the built bin over stdio answers a ${sdk} client in the default (core) profile`, async () => {
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
      await exercise(client, "core");
    });
  }

  it("weft mcp refuses a LOOMINAL_TOOLS other than core or full, naming the variable", async () => {
    const d = tempDir("weft-mcp-badtools-");
    try {
      const { code, stderr } = await runToExit(process.execPath, [WEFT_BIN, "mcp"], {
        cwd: d.path,
        env: { PATH: process.env.PATH ?? "", NATS_URL: nats.url, LOOMINAL_TOOLS: "Full" },
      });
      expect(code).not.toBe(0);
      expect(stderr).toMatch(/LOOMINAL_TOOLS is "Full".*"core".*"full"/);
    } finally {
      d.cleanup();
    }
  });

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
