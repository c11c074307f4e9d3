import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Fabric, jsonCodec } from "@loominal/fabric";
import { buckets, type OrchestrationRecord, orchestrationRecordSchema, randomId } from "@loominal/protocol";
import { eventually, NatsServer, tempDir, uniqueProjectId } from "@loominal/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WorkDir } from "./paths.js";
import { OrchestrationStore } from "./store.js";

let server: NatsServer;
const dirs: Array<{ cleanup: () => void }> = [];

beforeAll(async () => {
  server = await NatsServer.start();
});
afterAll(async () => {
  await server.stop();
  for (const d of dirs) d.cleanup();
});

function record(projectId: string, workDir: WorkDir, version: number): OrchestrationRecord {
  const id = randomId();
  const at = new Date().toISOString();
  return {
    orchestrationId: id,
    projectId,
    task: `task v${version}`,
    phase: "assessment",
    version,
    createdBy: randomId(),
    createdAt: at,
    updatedAt: at,
    waves: [["a"]],
    subtasks: [
      {
        id: "a",
        title: "A",
        description: "do a",
        capability: "research",
        dependsOn: [],
        wave: 0,
        status: "waiting",
        outputFile: "subtasks/a/output.md",
        claims: 0,
        updatedAt: at,
      },
    ],
    history: [{ from: null, to: "assessment", at }],
    checkpoints: [],
    directory: workDir.path(id),
  };
}

const codec = jsonCodec(orchestrationRecordSchema);

describe("OrchestrationStore", () => {
  it("keeps saving to the work dir while NATS is down and catches the bucket up when it returns", async () => {
    const projectId = uniqueProjectId();
    const dir = tempDir("shuttle-store-");
    dirs.push(dir);
    const workDir = await WorkDir.open(join(dir.path, "work"));
    const fabric = Fabric.start({
      nats: { servers: [server.url] },
      reconnectDelayMs: 50,
      maxReconnectDelayMs: 200,
    });
    await fabric.ready(5_000);
    const store = new OrchestrationStore({ workDir, fabric, projectId, logger: fabric.logger });
    try {
      const v1 = record(projectId, workDir, 1);
      await store.save(v1);
      const kv = await store.bucket();
      const read = async () => {
        const e = await kv.get(v1.orchestrationId);
        return e ? codec.decode(e.value, "test") : undefined;
      };
      expect((await read())?.version).toBe(1);

      await server.kill();
      await eventually(() => expect(fabric.isConnected).toBe(false));
      const v2 = { ...v1, version: 2, task: "task v2" };
      await store.save(v2);
      expect(
        JSON.parse(readFileSync(join(workDir.root, v1.orchestrationId, "orchestration.json"), "utf8"))
          .version,
      ).toBe(2);
      expect(store.pendingMirror).toContain(v1.orchestrationId);

      await server.restart();
      await eventually(async () => expect((await read())?.task).toBe("task v2"), { timeoutMs: 15_000 });
      expect(store.pendingMirror).toEqual([]);
    } finally {
      store.close();
      await fabric.close();
    }
  });

  it("never replaces a newer bucket copy with an older file", async () => {
    const projectId = uniqueProjectId();
    const dir = tempDir("shuttle-store-");
    dirs.push(dir);
    const workDir = await WorkDir.open(join(dir.path, "work"));
    const fabric = await Fabric.connect({ nats: { servers: [server.url] } });
    const store = new OrchestrationStore({ workDir, fabric, projectId, logger: fabric.logger });
    try {
      const v3 = record(projectId, workDir, 3);
      const kv = await store.bucket();
      await kv.put(v3.orchestrationId, codec.encode({ ...v3, task: "from elsewhere" }));
      await store.save({ ...v3, version: 2 });
      const e = await kv.get(v3.orchestrationId);
      expect(e && codec.decode(e.value, "t").task).toBe("from elsewhere");
      expect(existsSync(join(workDir.root, v3.orchestrationId, "orchestration.json"))).toBe(true);
      expect(buckets.shuttle(projectId)).toBe(`loom-shuttle-${projectId}`);
    } finally {
      store.close();
      await fabric.close();
    }
  });

  it("mirrors a record too large for one KV value in compact form, and keeps mirroring the others", async () => {
    const dir = tempDir("shuttle-store-");
    dirs.push(dir);
    const config = join(dir.path, "small-payload.conf");
    writeFileSync(config, "max_payload: 65536\n");
    const small = await NatsServer.start({ configFile: config });
    const fabric = await Fabric.connect({ nats: { servers: [small.url] } });
    const projectId = uniqueProjectId();
    const workDir = await WorkDir.open(join(dir.path, "work"));
    const store = new OrchestrationStore({ workDir, fabric, projectId, logger: fabric.logger });
    try {
      expect(store.mirrorLimit()).toBe(65_536 - 4_096);
      const base = record(projectId, workDir, 1);
      const template = base.subtasks[0];
      if (!template) throw new Error("no subtask");
      const big: OrchestrationRecord = {
        ...base,
        subtasks: ["a", "b", "c"].map((id) => ({
          ...template,
          id,
          status: "completed",
          result: { text: "r".repeat(30_000) },
        })),
        waves: [["a", "b", "c"]],
      };
      const other = record(projectId, workDir, 1);
      // Both wait for the bucket, the big one first; neither may hold the other up.
      await store.save(big);
      await store.save(other);
      const kv = await store.bucket();
      const read = async (id: string) => {
        const e = await kv.get(id);
        return e ? codec.decode(e.value, "test") : undefined;
      };
      const mirroredBig = await read(big.orchestrationId);
      expect(mirroredBig?.version).toBe(1);
      expect(mirroredBig?.subtasks.map((x) => x.result)).toEqual(
        ["a", "b", "c"].map(() => ({ omitted: expect.stringContaining("KV mirror") })),
      );
      expect((await read(other.orchestrationId))?.task).toBe(other.task);
      expect(store.pendingMirror).toEqual([]);
      // The work dir keeps the whole record.
      expect((await store.load(big.orchestrationId))?.subtasks[0]?.result).toEqual({
        text: "r".repeat(30_000),
      });
    } finally {
      store.close();
      await fabric.close();
      await small.stop();
    }
  });
});
