import { Fabric, type LoominalConfig } from "@loominal/fabric";
import {
  connectInMemory,
  type McpSdk,
  NatsServer,
  type TestClient,
  tempDir,
  uniqueProjectId,
} from "@loominal/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Warp } from "../warp.js";
import { projectConfig } from "../warp.test-helper.js";
import { createWarpServer } from "./server.js";

let nats: NatsServer;
const locks = tempDir("warp-locks-");
const opened: Array<() => Promise<void> | void> = [];

beforeAll(async () => {
  nats = await NatsServer.start();
});
afterAll(async () => {
  for (const close of opened.reverse()) await close();
  await nats.stop();
  locks.cleanup();
});

async function agent(config: LoominalConfig, sdk: McpSdk): Promise<{ client: TestClient; warp: Warp }> {
  const fabric = Fabric.start({ nats: config.nats });
  const warp = await Warp.open({ config, fabric, lockDir: locks.path });
  const client = await connectInMemory(createWarpServer(warp), { sdk });
  opened.push(async () => {
    await client.close();
    await warp.close();
    await fabric.close();
  });
  return { client, warp };
}

async function ok(client: TestClient, name: string, args: Record<string, unknown> = {}) {
  const r = await client.call(name, args);
  if (r.isError) throw new Error(`${name} failed: ${r.text}`);
  expect(r.text.length).toBeGreaterThan(0);
  return { data: (r.structured ?? {}) as Record<string, unknown>, text: r.text };
}

describe.each(["v1", "v2"] as const)("warp lease tools through an MCP %s client", (sdk) => {
  it("acquire, conflict with holder and reason, list, renew, release; deregistering releases", async () => {
    const p = uniqueProjectId();
    const a = projectConfig(nats.url, p, { env: { LOOMINAL_AGENT_NAME: "alice" } });
    opened.push(a.cleanup);
    const b = projectConfig(nats.url, p, { env: { LOOMINAL_AGENT_NAME: "bob" }, dir: a.dir });
    const alice = await agent(a.config, sdk);
    const bob = await agent(b.config, sdk);
    // listTools first: a v1 client then checks each result against the output schema it saw.
    const names = (await alice.client.listTools()).map((t) => t.name);
    expect(names).toEqual(
      expect.arrayContaining([
        "warp_lease_acquire",
        "warp_lease_renew",
        "warp_lease_release",
        "warp_lease_list",
      ]),
    );
    await bob.client.listTools();

    const got = await ok(alice.client, "warp_lease_acquire", {
      paths: ["packages/warp/src"],
      reason: "adding leases",
      ttlMs: 600_000,
    });
    expect(got.data.acquired).toBe(true);
    const lease = got.data.lease as { leaseId: string; mode: string; paths: string[] };
    expect(lease).toMatchObject({ mode: "exclusive", paths: ["packages/warp/src"] });

    const refused = await ok(bob.client, "warp_lease_acquire", {
      paths: ["packages/*/src/**/*.ts"],
      mode: "shared",
      reason: "reading",
    });
    expect(refused.data).toMatchObject({ acquired: false, lease: null });
    expect(refused.text).toContain("alice");
    expect(refused.text).toContain("adding leases");

    const listed = await ok(bob.client, "warp_lease_list", { path: "packages/warp/src/index.ts" });
    expect(listed.data.count).toBe(1);
    const renewed = await ok(alice.client, "warp_lease_renew", { leaseId: lease.leaseId, ttlMs: 1_200_000 });
    expect((renewed.data.lease as { ttlMs: number }).ttlMs).toBe(1_200_000);

    const bad = await bob.client.call("warp_lease_release", { leaseIds: [lease.leaseId] });
    expect(bad.isError).toBe(true);
    expect((bad.error as { code: string }).code).toBe("forbidden");

    expect((await ok(alice.client, "warp_lease_release", {})).data.released).toEqual([lease.leaseId]);
    expect(
      (await ok(bob.client, "warp_lease_acquire", { paths: ["packages/warp/src/a.ts"], reason: "mine" })).data
        .acquired,
    ).toBe(true);
    await ok(bob.client, "warp_registry_register", { agentType: "developer" });
    await ok(bob.client, "warp_registry_deregister");
    expect((await ok(alice.client, "warp_lease_list")).data.count).toBe(0);
  });

  it("refuses a path outside the repository with a message saying so", async () => {
    const { config, cleanup } = projectConfig(nats.url, uniqueProjectId(), {
      env: { LOOMINAL_AGENT_NAME: "x" },
    });
    opened.push(cleanup);
    const { client } = await agent(config, sdk);
    await client.listTools();
    const r = await client.call("warp_lease_acquire", { paths: ["../other-repo"], reason: "r" });
    expect(r.isError).toBe(true);
    expect(r.text).toMatch(/^invalid_input: .*'\.\.'/);
  });
});
