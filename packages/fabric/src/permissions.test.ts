import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { buckets, natsServerConfig, streams, subjects } from "@loominal/protocol";
import { NatsServer, tempDir } from "@loominal/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { casUpdate } from "./cas.js";
import { jsonCodec } from "./codec.js";
import { Fabric } from "./connection.js";
import { ensureBucket, ensureStream } from "./streams.js";

// The generated nats-server config confines each user to its project, enforced by the server itself.
describe("generated per-project NATS permissions", () => {
  const dir = tempDir();
  let server: NatsServer;
  let alice: Fabric;
  let bob: Fabric;

  beforeAll(async () => {
    const configFile = join(dir.path, "nats.json");
    writeFileSync(
      configFile,
      natsServerConfig({
        storeDir: join(dir.path, "store"),
        users: [
          { user: "alice", password: "alice-pw", projectId: "proj-a" },
          { user: "bob", password: "bob-pw", projectId: "proj-b" },
        ],
      }),
    );
    server = await NatsServer.start({ configFile, jetstream: false });
    const as = (user: string, password: string) =>
      Fabric.connect({ nats: { servers: [server.url], user, password } });
    alice = await as("alice", "alice-pw");
    bob = await as("bob", "bob-pw");
  });
  afterAll(async () => {
    await alice?.close();
    await bob?.close();
    await server?.stop();
    dir.cleanup();
  });

  it("lets a user work in its own project's streams and buckets", async () => {
    await ensureStream(alice, {
      name: streams.work("proj-a"),
      subjects: [subjects.workAll("proj-a")],
      retention: "workqueue",
    });
    await alice.js.publish(subjects.workOffer("proj-a", "default", "ts"), "job");
    const kv = await ensureBucket(alice, { name: buckets.workLedger("proj-a") });
    const r = await casUpdate(kv, "k", jsonCodec(z.object({ n: z.int() })), (c) => ({ n: (c?.n ?? 0) + 1 }));
    expect(r.value).toEqual({ n: 1 });
    const registry = await ensureBucket(alice, { name: buckets.registry() });
    await registry.put("proj-a.0123456789abcdef0123456789abcdef", "{}");
  });

  it("refuses another project's streams, subjects and registry keys", async () => {
    await ensureStream(bob, {
      name: streams.work("proj-b"),
      subjects: [subjects.workAll("proj-b")],
      retention: "workqueue",
    });
    await expect(
      ensureStream(alice, {
        name: streams.work("proj-b"),
        subjects: [subjects.workAll("proj-b")],
        retention: "workqueue",
      }),
    ).rejects.toThrow();
    await expect(
      alice.js.publish(subjects.workOffer("proj-b", "default", "ts"), "intrude", { timeout: 1_000 }),
    ).rejects.toThrow();
    await expect(ensureBucket(alice, { name: buckets.workLedger("proj-b") })).rejects.toThrow();
    const registry = await ensureBucket(alice, { name: buckets.registry() });
    await expect(registry.put("proj-b.0123456789abcdef0123456789abcdef", "{}")).rejects.toThrow();
    const info = await (await bob.jsm()).streams.info(streams.work("proj-b"));
    expect(info.state.messages).toBe(0);
  });
});
