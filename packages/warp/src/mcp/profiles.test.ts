import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  eventually,
  NatsServer,
  runToExit,
  spawnStdio,
  type TestClient,
  tempDir,
  uniqueProjectId,
} from "@loominal/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WARP_CORE_TOOLS } from "./server.js";

const BIN = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "dist", "bin.js");

let nats: NatsServer;
const closers: Array<() => Promise<void>> = [];

beforeAll(async () => {
  if (!existsSync(BIN)) throw new Error(`${BIN} is missing: build first`);
  nats = await NatsServer.start();
});
afterAll(async () => {
  for (const close of closers.reverse()) await close().catch(() => undefined);
  await nats.stop();
});

async function start(sdk: "v1" | "v2", env: Record<string, string> = {}): Promise<TestClient> {
  const dir = tempDir("warp-profile-");
  const client = await spawnStdio({
    command: process.execPath,
    args: [BIN],
    cwd: dir.path,
    env: { NATS_URL: nats.url, LOOMINAL_PROJECT_ID: uniqueProjectId(), LOOMINAL_LOG_LEVEL: "warn", ...env },
    sdk,
  });
  closers.push(async () => {
    await client.close();
    dir.cleanup();
  });
  return client;
}

describe.each(["v2", "v1"] as const)("loominal-warp tool profiles, %s client", (sdk) => {
  it("lists the core tools and warp_more by default; the others answer through warp_more", async () => {
    const client = await start(sdk);
    const names = (await client.listTools()).map((t) => t.name);
    expect(names).toEqual([...WARP_CORE_TOOLS, "warp_more"]);

    const listing = await client.call("warp_more", {});
    const entries = listing.structured?.tools as Array<{ name: string; parameters: string }>;
    expect(entries.map((e) => e.name)).toEqual(
      expect.arrayContaining(["warp_handle_get", "warp_lease_renew"]),
    );
    expect(entries.map((e) => e.name)).not.toContain("warp_lease_acquire");
    expect(entries.find((e) => e.name === "warp_lease_renew")?.parameters).toBe("leaseId, ttlMs?");

    const me = await eventually(
      async () => {
        const r = await client.call("warp_more", { tool: "warp_handle_get" });
        if (r.isError) throw new Error(r.text);
        return r.structured ?? {};
      },
      { timeoutMs: 10_000 },
    );
    expect(me.agentId).toMatch(/^[0-9a-f]{32}$/);

    // Errors through the gateway are the tool's own.
    const unknown = await client.call("warp_more", {
      tool: "warp_registry_get_info",
      arguments: { agentId: "0".repeat(32) },
    });
    expect(unknown).toMatchObject({ isError: true, structured: undefined });
    expect(unknown.error?.code).toBe("not_found");
    const bad = await client.call("warp_more", {
      tool: "warp_handle_set",
      arguments: { handle: "Not Valid" },
    });
    expect(bad.error?.code).toBe("invalid_input");
    expect(bad.error?.message).toMatch(/^invalid arguments for warp_handle_set: handle: /);

    // A core tool still answers directly, errors included.
    const missing = await client.call("warp_channels_send", { channel: "no-such-channel", message: "x" });
    expect(missing.error?.code).toBe("not_found");
  });

  it("LOOMINAL_TOOLS=full lists every tool and no gateway", async () => {
    const client = await start(sdk, { LOOMINAL_TOOLS: "full" });
    const names = (await client.listTools()).map((t) => t.name);
    expect(names).toEqual(
      expect.arrayContaining([...WARP_CORE_TOOLS, "warp_handle_get", "warp_dlq_discard"]),
    );
    expect(names).not.toContain("warp_more");
    expect(names.length).toBeGreaterThan(30);
  });
});

describe("LOOMINAL_TOOLS", () => {
  it("a value other than core or full stops loominal-warp at start-up, naming the variable", async () => {
    const dir = tempDir("warp-badtools-");
    try {
      const { code, stderr } = await runToExit(process.execPath, [BIN], {
        cwd: dir.path,
        env: { PATH: process.env.PATH ?? "", LOOMINAL_TOOLS: "everything" },
      });
      expect(code).toBe(2);
      expect(stderr).toMatch(/loominal-warp: invalid_config: LOOMINAL_TOOLS is "everything".*"core".*"full"/);
    } finally {
      dir.cleanup();
    }
  });
});
