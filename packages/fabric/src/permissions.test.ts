import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { buckets, keys, natsServerConfig, streams, subjects } from "@loominal/protocol";
import { NatsServer, tempDir } from "@loominal/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { casUpdate } from "./cas.js";
import { jsonCodec } from "./codec.js";
import { natsSettingsFromEnv } from "./config.js";
import { Fabric } from "./connection.js";
import { NatsPermissionError, NotProvisionedError } from "./errors.js";
import { ensureBucket, ensureStream, provision, type StreamSpec } from "./streams.js";

const workSpec = (p: string): StreamSpec => ({
  name: streams.work(p),
  subjects: [subjects.workAll(p)],
  retention: "workqueue",
});
const AGENT = "0123456789abcdef0123456789abcdef";

// The generated nats-server config confines each user to its project, enforced by the server itself.
describe("generated per-project NATS permissions", () => {
  const dir = tempDir();
  let server: NatsServer;
  let admin: Fabric;
  let alice: Fabric;
  let bob: Fabric;

  beforeAll(async () => {
    const configFile = join(dir.path, "nats.json");
    writeFileSync(
      configFile,
      natsServerConfig({
        storeDir: join(dir.path, "store"),
        admin: { user: "root", password: "root-pw" },
        users: [
          { user: "alice", password: "alice-pw", projectId: "proj-a" },
          { user: "bob", password: "bob-pw", projectId: "proj-b" },
        ],
      }),
    );
    server = await NatsServer.start({ configFile, jetstream: false });
    // Through the environment, as a process would: the inbox prefix follows from NATS_USER.
    const as = (user: string, password: string) =>
      Fabric.connect({
        nats: natsSettingsFromEnv({ NATS_URL: server.url, NATS_USER: user, NATS_PASSWORD: password }),
      });
    admin = await as("root", "root-pw");
    alice = await as("alice", "alice-pw");
    bob = await as("bob", "bob-pw");
    await provision(admin, {
      streams: [workSpec("proj-a"), workSpec("proj-b")],
      buckets: [
        { name: buckets.workLedger("proj-a") },
        { name: buckets.workLedger("proj-b") },
        { name: buckets.registry() },
      ],
    });
  });
  afterAll(async () => {
    await Promise.all([admin?.close(), alice?.close(), bob?.close()]);
    await server?.stop();
    dir.cleanup();
  });

  it("lets a user work in its provisioned streams and buckets, replies under its own inbox prefix", async () => {
    await ensureStream(alice, workSpec("proj-a"));
    await alice.js.publish(subjects.workOffer("proj-a", "default", "ts"), "job");
    const kv = await ensureBucket(alice, { name: buckets.workLedger("proj-a") });
    const r = await casUpdate(kv, "k", jsonCodec(z.object({ n: z.int() })), (c) => ({ n: (c?.n ?? 0) + 1 }));
    expect(r.value).toEqual({ n: 1 });
    const registry = await ensureBucket(alice, { name: buckets.registry() });
    await registry.put(keys.registry("proj-a", AGENT), "{}");
    expect((await registry.get(keys.registry("proj-a", AGENT)))?.string()).toBe("{}");
  });

  it("reports a stream it may not create as not provisioned, and a changed structure as a mismatch", async () => {
    await expect(
      ensureStream(alice, {
        ...workSpec("proj-a"),
        name: streams.dlq("proj-a"),
        subjects: ["loom.proj-a.dlq.>"],
      }),
    ).rejects.toBeInstanceOf(NotProvisionedError);
    await expect(ensureBucket(alice, { name: buckets.shuttle("proj-a") })).rejects.toBeInstanceOf(
      NotProvisionedError,
    );
    // Limits the user may not change are used as provisioned; a different retention is an error.
    await expect(ensureStream(alice, { ...workSpec("proj-a"), maxMsgs: 5 }, "update")).resolves.toBeDefined();
    await expect(
      ensureStream(alice, { ...workSpec("proj-a"), retention: "limits" }, "update"),
    ).rejects.toMatchObject({ code: "config_mismatch" });
  });

  it("refuses another project's streams, subjects and registry keys", async () => {
    await expect(ensureStream(alice, workSpec("proj-b"))).rejects.toBeInstanceOf(NatsPermissionError);
    await expect(
      alice.js.publish(subjects.workOffer("proj-b", "default", "ts"), "intrude", { timeout: 1_000 }),
    ).rejects.toThrow();
    await expect(ensureBucket(alice, { name: buckets.workLedger("proj-b") })).rejects.toBeInstanceOf(
      NatsPermissionError,
    );
    const registry = await ensureBucket(alice, { name: buckets.registry() });
    await expect(registry.put(keys.registry("proj-b", AGENT), "{}")).rejects.toThrow();
    const info = await (await bob.jsm()).streams.info(streams.work("proj-b"));
    expect(info.state.messages).toBe(0);
  });
});
