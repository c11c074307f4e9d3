import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { Fabric } from "@loominal/fabric";
import { randomId, warpConfigSchema } from "@loominal/protocol";
import { NatsServer, tempDir, uniqueProjectId } from "@loominal/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WorkQueue } from "./index.js";

let server: NatsServer;
let fabric: Fabric;
const dir = tempDir("nats-small-store-");

beforeAll(async () => {
  // A JetStream store of 2 MB, so a test can fill it.
  const config = join(dir.path, "server.conf");
  writeFileSync(config, "jetstream { max_file_store: 2MB, max_memory_store: 1MB }\n");
  server = await NatsServer.start({ configFile: config });
  fabric = await Fabric.connect({ nats: { servers: [server.url] } });
});

afterAll(async () => {
  await fabric?.close();
  await server?.stop();
  dir.cleanup();
});

describe("a full JetStream store", () => {
  it("refuses new offers with storage_full, and claimed work can still be claimed, completed and failed", async () => {
    const q = new WorkQueue({
      fabric,
      projectId: uniqueProjectId(),
      agentId: randomId(),
      userId: randomId(),
      settings: { ...warpConfigSchema.parse({}).work, ackWaitMs: 30_000, retryBackoffMs: 0 },
      storageReserveBytes: 256 * 1024,
    });
    const description = "x".repeat(8_000);
    let offered = 0;
    let refusal: unknown;
    // Bounded: 2 MB holds at most a few hundred such offers.
    for (let i = 0; i < 1_000 && refusal === undefined; i++) {
      try {
        await q.offer({ taskId: `t${i}`, description, capability: "typescript" });
        offered++;
      } catch (err) {
        refusal = err;
      }
    }
    expect(offered).toBeGreaterThan(10);
    expect(refusal).toMatchObject({ code: "storage_full" });
    expect((refusal as Error).message).toMatch(/max_file_store/);
    // The store is full, yet accepted work moves on: claim, complete, fail.
    const first = await q.claim({ capability: "typescript", timeoutMs: 2_000 });
    expect(first).toBeDefined();
    expect((await q.complete(first?.workId ?? "", "done")).status).toBe("completed");
    const second = await q.claim({ capability: "typescript", timeoutMs: 2_000 });
    expect(second).toBeDefined();
    expect((await q.fail(second?.workId ?? "", "no luck", false)).status).toBe("dead");
    // New offers stay refused while the reserve is gone.
    await expect(q.offer({ taskId: "more", description, capability: "typescript" })).rejects.toMatchObject({
      code: "storage_full",
    });
    await q.close();
  });
});
