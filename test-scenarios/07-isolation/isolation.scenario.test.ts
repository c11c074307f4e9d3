import { execFile } from "node:child_process";
import { chmodSync, existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { Fabric, natsSettingsFromEnv } from "@loominal/fabric";
import { buckets, keys, randomId, streams, subjects } from "@loominal/protocol";
import { eventually, NatsServer, sleep, spawnStdio, type TestClient, tempDir } from "@loominal/testkit";
import { AckPolicy, DeliverPolicy, type JetStreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ClaimerProcess, openWorkQueue } from "../lib/claimers.js";
import { callOk as call } from "../lib/mcp.js";

const run = promisify(execFile);
const here = dirname(fileURLToPath(import.meta.url));
const ROOT = join(here, "..", "..");
const CLI_BIN = join(ROOT, "apps", "cli", "dist", "bin.js");
const WARP_BIN = join(ROOT, "packages", "warp", "dist", "bin.js");

// Two projects, as an operator would set them up with the generated config; alice is the attacker.
const PA = "proja";
const PB = "projb";
const ALICE_USER_ID = "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1";
const BOB_USER_ID = "b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0";
const BOB_AGENT = "b0b0b0b0000000000000000000000001";

const dir = tempDir("isolation-scenario-");
const configFile = join(dir.path, "nats.json");
let nats: NatsServer;
let passwords: Record<string, string>;
const clients: TestClient[] = [];
const claimers: ClaimerProcess[] = [];
const fabrics: Fabric[] = [];

function cli(args: string[], env: Record<string, string> = {}) {
  return run(process.execPath, [CLI_BIN, ...args], {
    cwd: dir.path,
    env: { PATH: process.env.PATH ?? "", HOME: dir.path, ...env },
  });
}

/** NATS_URL and the credentials of one generated user, as an agent host would set them. */
function credentials(user: string): Record<string, string> {
  const password = passwords[user];
  if (!password) throw new Error(`no password for ${user} in the generated config`);
  return { NATS_URL: nats.url, NATS_USER: user, NATS_PASSWORD: password };
}

async function connectAs(user: string): Promise<Fabric> {
  const fabric = await Fabric.connect({ nats: natsSettingsFromEnv(credentials(user)), name: user });
  fabrics.push(fabric);
  return fabric;
}

beforeAll(async () => {
  for (const bin of [CLI_BIN, WARP_BIN])
    if (!existsSync(bin)) throw new Error(`${bin} is missing: run pnpm -w build`);
  // An existing, world-readable file: the generated config must still end up 0600.
  writeFileSync(configFile, "{}");
  chmodSync(configFile, 0o644);
  await cli([
    "nats-config",
    "--user",
    `alice:${PA}:${ALICE_USER_ID}`,
    "--user",
    `bob:${PB}:${BOB_USER_ID}`,
    "--admin",
    "root",
    "--out",
    configFile,
    "--store-dir",
    join(dir.path, "store"),
  ]);
  const generated = JSON.parse(readFileSync(configFile, "utf8")) as {
    accounts: { LOOMINAL: { users: Array<{ user: string; password: string }> } };
  };
  passwords = Object.fromEntries(generated.accounts.LOOMINAL.users.map((u) => [u.user, u.password]));
  nats = await NatsServer.start({ configFile, jetstream: false });
  // What `./loominal up` does for the local default, here with the admin user for both projects.
  const provisioned = await cli(["nats-provision", "--project", PA, "--project", PB], credentials("root"));
  expect(provisioned.stdout).toContain(`Provisioned project ${PA}`);
  expect(provisioned.stdout).toContain(`Provisioned project ${PB}`);
});

afterAll(async () => {
  for (const c of clients) await c.close().catch(() => undefined);
  for (const c of claimers) await c.kill();
  for (const f of fabrics) await f.close().catch(() => undefined);
  await nats?.stop();
  dir.cleanup();
});

async function startWarp(user: string, projectId: string, agentName: string, agentId: string) {
  const projectDir = join(dir.path, projectId);
  if (!existsSync(join(projectDir, ".loominal.json"))) {
    await import("node:fs").then((fs) => fs.mkdirSync(projectDir, { recursive: true }));
    writeFileSync(join(projectDir, ".loominal.json"), JSON.stringify({ projectId }));
  }
  const client = await spawnStdio({
    command: process.execPath,
    args: [WARP_BIN],
    cwd: projectDir,
    env: {
      ...credentials(user),
      LOOMINAL_AGENT_NAME: agentName,
      LOOMINAL_AGENT_ID: agentId,
      LOOMINAL_USER_ID: user === "bob" ? BOB_USER_ID : ALICE_USER_ID,
      LOOMINAL_LOG_LEVEL: "warn",
    },
  });
  clients.push(client);
  return client;
}

/** The server refused the request: nats.js rejects it with the server's permissions violation. */
async function refused(attempt: Promise<unknown>): Promise<void> {
  await expect(attempt).rejects.toThrow(/permissions violation/i);
}

/** A subscription the server refused is closed with a permissions error; one it allowed stays open. */
async function subscribeRefused(nc: NatsConnection, subject: string): Promise<void> {
  const sub = nc.subscribe(subject);
  const outcome = await Promise.race([
    sub.closed.then((e) => e ?? "closed"),
    sleep(2_000).then(() => "open"),
  ]);
  sub.unsubscribe();
  expect(String(outcome)).toMatch(/permissions violation/i);
}

function apiRequest(nc: NatsConnection, subject: string, body: unknown) {
  return nc.request(subject, JSON.stringify(body), { timeout: 2_000 });
}

describe("07 isolation: one project's credentials against the generated config", () => {
  let bob: TestClient;
  let bobAgent: string;

  it("writes the config with mode 0600 even over an existing readable file", () => {
    expect(statSync(configFile).mode & 0o777).toBe(0o600);
  });

  it("legitimate agents work: channels, direct messages within and across projects, discovery", async () => {
    const planner = await startWarp("alice", PA, "planner", "a1a1a1a1000000000000000000000001");
    const coder = await startWarp("alice", PA, "coder", "a1a1a1a1000000000000000000000002");
    bob = await startWarp("bob", PB, "bob", BOB_AGENT);
    await call(planner, "warp_registry_register", { agentType: "claude-code", capabilities: ["planning"] });
    const c = await call(coder, "warp_registry_register", {
      agentType: "claude-code",
      capabilities: ["typescript"],
    });
    const b = await call(bob, "warp_registry_register", {
      agentType: "claude-code",
      capabilities: ["review"],
      scope: "public",
    });
    const coderId = (c.agent as { agentId: string }).agentId;
    bobAgent = (b.agent as { agentId: string }).agentId;

    const found = await call(planner, "warp_registry_discover", { capability: "typescript" });
    expect((found.agents as Array<{ agentId: string }>).map((a) => a.agentId)).toEqual([coderId]);
    await call(planner, "warp_channels_send", { channel: "roadmap", message: "M1: parser" });
    const read = await call(coder, "warp_channels_read", { channel: "roadmap" });
    expect((read.messages as Array<{ message: string }>).map((m) => m.message)).toEqual(["M1: parser"]);

    await call(planner, "warp_messages_send_direct", { agentId: coderId, message: "take the parser" });
    const dm = await call(coder, "warp_messages_read_direct");
    expect((dm.messages as Array<{ message: string }>).map((m) => m.message)).toEqual(["take the parser"]);

    // Across projects: publish-only on bob's inbox subject is all alice needs.
    await call(planner, "warp_messages_send_direct", {
      agentId: bobAgent,
      projectId: PB,
      message: "please review",
    });
    const bobDm = await call(bob, "warp_messages_read_direct");
    expect((bobDm.messages as Array<{ message: string }>).map((m) => m.message)).toEqual(["please review"]);
  });

  it("legitimate work: offer, failures into the DLQ, retry and completion under project credentials", async () => {
    const driver = await openWorkQueue(nats.url, PA, undefined, {
      user: "alice",
      password: passwords.alice ?? "",
    });
    try {
      const item = await driver.work.offer({
        taskId: "cursed",
        description: "fails until fixed",
        capability: "scenario",
      });
      const failing = new ClaimerProcess({ ...credentials("alice"), PROJECT_ID: PA, MODE: "fail" });
      claimers.push(failing);
      await eventually(() => expect(failing.of("failed").length).toBe(3), { timeoutMs: 30_000 });
      await failing.stop();
      expect((await driver.work.dlqList({})).letters.map((l) => l.workId)).toEqual([item.workId]);
      await driver.work.dlqRetry(item.workId, { resetAttempts: true });
      const healthy = new ClaimerProcess({ ...credentials("alice"), PROJECT_ID: PA, MODE: "complete" });
      claimers.push(healthy);
      await eventually(() => expect(healthy.of("completed").map((l) => l.workId)).toEqual([item.workId]), {
        timeoutMs: 30_000,
      });
      await healthy.stop();
      expect(await driver.work.get(item.workId)).toMatchObject({ status: "completed" });
    } finally {
      await driver.close();
    }
  });

  describe("attacks with alice's credentials", () => {
    let admin: Fabric;
    let alice: Fabric;
    let nc: NatsConnection;
    let jsm: JetStreamManager;
    const bobInbox = () => streams.inbox(PB);

    beforeAll(async () => {
      admin = await connectAs("root");
      alice = await connectAs("alice");
      nc = alice.nc;
      jsm = await alice.jsm();
      // Bob's data as it would be: a personal memory, a registry entry (written above), inbox messages.
      await (await admin.kvm.open(buckets.memoryPersonal())).put(
        keys.memoryPersonal(BOB_USER_ID, "core", randomId()),
        "bob's secret",
      );
      await (await admin.kvm.open(buckets.memoryPublic())).put(
        keys.memoryPublic(BOB_USER_ID, "decisions", "b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b1"),
        "bob's public note",
      );
    });

    it("1. cannot create or update a stream that sources another project's data", async () => {
      const sources = [bobInbox(), `KV_${buckets.memoryPersonal()}`, streams.work(PB)].map((name) => ({
        name,
      }));
      await refused(jsm.streams.add({ name: streams.channel(PA, "errors"), subjects: ["x.y"], sources }));
      await refused(jsm.streams.add({ name: "loom_proja_spy", subjects: ["loom.proja.spy"], sources }));
      await refused(
        jsm.streams.update(streams.channel(PA, "errors"), {
          subjects: [subjects.channel(PA, "errors")],
          sources,
        }),
      );
    });

    it("2. cannot sniff or forge replies: no subscription to _INBOX.> or another user's inbox prefix", async () => {
      await subscribeRefused(nc, "_INBOX.>");
      await subscribeRefused(nc, "_INBOX_bob.>");
      await subscribeRefused(nc, ">");
      // A forged reply never reaches bob's inbox; the same publish from the admin does (the check works).
      const bobConn = await connectAs("bob");
      const got: string[] = [];
      const sub = bobConn.nc.subscribe("_INBOX_bob.probe", { callback: (_e, m) => got.push(m.string()) });
      await bobConn.nc.flush();
      nc.publish("_INBOX_bob.probe", "forged");
      await nc.flush().catch(() => undefined);
      admin.nc.publish("_INBOX_bob.probe", "genuine");
      await admin.nc.flush();
      await eventually(() => expect(got).toContain("genuine"));
      expect(got).not.toContain("forged");
      sub.unsubscribe();
    });

    it("3. cannot purge, delete from or reconfigure shared buckets, nor touch another project's keys", async () => {
      const before = await admin.jsm().then((m) => m.streams.info(`KV_${buckets.registry()}`));
      await refused(
        jsm.streams.purge(`KV_${buckets.registry()}`, { filter: `$KV.${buckets.registry()}.${PB}.>` }),
      );
      await refused(jsm.streams.purge(`KV_${buckets.inboxLedger()}`));
      await refused(jsm.streams.deleteMessage(`KV_${buckets.memoryPersonal()}`, 1));
      await refused(
        jsm.streams.update(`KV_${buckets.memoryPublic()}`, {
          subjects: [`$KV.${buckets.memoryPublic()}.>`],
          max_msg_size: 16,
        }),
      );
      await refused(jsm.streams.delete(`KV_${buckets.registry()}`));
      const identities = await alice.kvm.open(buckets.agentIdentities());
      await expect(identities.delete(keys.agentIdentity(PB, BOB_AGENT))).rejects.toThrow();
      const registry = await alice.kvm.open(buckets.registry());
      await expect(registry.delete(keys.registry(PB, bobAgent))).rejects.toThrow();
      const publicMemory = await alice.kvm.open(buckets.memoryPublic(), { allow_direct: true });
      const bobsNote = keys.memoryPublic(BOB_USER_ID, "decisions", "b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b1");
      await expect(publicMemory.put(bobsNote, "overwritten")).rejects.toThrow();
      await expect(publicMemory.delete(bobsNote)).rejects.toThrow();
      // Reading public memory is allowed, and bob's note is intact.
      expect((await publicMemory.get(bobsNote))?.string()).toBe("bob's public note");
      const after = await admin.jsm().then((m) => m.streams.info(`KV_${buckets.registry()}`));
      expect(after.state.messages).toBe(before.state.messages);
      expect(after.config.max_msg_size).toBe(before.config.max_msg_size);
      // Bob is still discoverable from his own project.
      const found = await call(bob, "warp_registry_discover", { scope: "public" });
      expect((found.agents as Array<{ agentId: string }>).map((a) => a.agentId)).toContain(bobAgent);
    });

    it("4. cannot capture another project's subjects with a stream of its own", async () => {
      await refused(jsm.streams.add({ name: "loom_proja_capture", subjects: [subjects.coordinatorAll(PB)] }));
      await refused(
        jsm.streams.add({ name: streams.channel(PA, "errors"), subjects: [`loom.${PB}.agent.>`] }),
      );
    });

    it("5. a forged registry record is skipped by discovery, never listed as bob's", async () => {
      // Bob's own (valid) record, claiming a capability, filed under a key alice may write.
      const real = await (await admin.kvm.open(buckets.registry())).get(keys.registry(PB, bobAgent));
      const record = real?.json<{ capabilities: string[] }>();
      if (!record) throw new Error("bob is not registered");
      const forged = JSON.stringify({ ...record, capabilities: [...record.capabilities, "impersonation"] });
      await (await alice.kvm.open(buckets.registry())).put(keys.registry(PA, randomId()), forged);
      const found = await call(bob, "warp_registry_discover", {
        scope: "public",
        capability: "impersonation",
      });
      expect(found.agents).toEqual([]);
      // The same record under bob's own key (the admin writes it) is listed: only the key was wrong.
      await (await admin.kvm.open(buckets.registry())).put(keys.registry(PB, bobAgent), forged);
      const genuine = await call(bob, "warp_registry_discover", {
        scope: "public",
        capability: "impersonation",
      });
      expect((genuine.agents as Array<{ agentId: string }>).map((a) => a.agentId)).toEqual([bobAgent]);
    });

    it("cannot read another project's streams or another user's keys", async () => {
      // A consumer on a foreign stream, or on a shared bucket beyond its own keys.
      await refused(jsm.consumers.add(bobInbox(), { ack_policy: AckPolicy.None }));
      await refused(
        jsm.consumers.add(`KV_${buckets.memoryPersonal()}`, {
          name: "spy",
          ack_policy: AckPolicy.None,
          filter_subject: `$KV.${buckets.memoryPersonal()}.>`,
        }),
      );
      // The create subject names alice's own keys but the body asks for everyone's: the server refuses.
      const mismatch = await apiRequest(
        nc,
        `$JS.API.CONSUMER.CREATE.KV_${buckets.memoryPersonal()}.spy.$KV.${buckets.memoryPersonal()}.u.${ALICE_USER_ID}.>`,
        {
          stream_name: `KV_${buckets.memoryPersonal()}`,
          config: { name: "spy", ack_policy: "none", filter_subject: `$KV.${buckets.memoryPersonal()}.>` },
        },
      );
      expect(mismatch.json<{ error?: { err_code: number } }>().error?.err_code).toBe(10131);
      // Direct and plain message gets of foreign keys and streams.
      await refused(
        jsm.direct.getMessage(`KV_${buckets.memoryPersonal()}`, {
          last_by_subj: `$KV.${buckets.memoryPersonal()}.u.${BOB_USER_ID}.>`,
        }),
      );
      await refused(jsm.streams.getMessage(`KV_${buckets.memoryPersonal()}`, { seq: 1 }));
      await refused(jsm.direct.getMessage(bobInbox(), { seq: 1 }));
      await refused(jsm.streams.getMessage(streams.work(PB), { seq: 1 }));
      await refused(jsm.streams.info(`KV_${buckets.workLedger(PB)}`));
      // Its own project's spin-up targets hold commands the coordinator runs: no agent may touch them.
      await refused(jsm.streams.info(`KV_${buckets.targets(PA)}`));
      await refused(alice.js.publish(`$KV.${buckets.targets(PA)}.t1`, "{}", { timeout: 1_000 }));
      await subscribeRefused(nc, `loom.${PB}.>`);
      await subscribeRefused(nc, `loom.*.inbox.*`);
    });

    it("cannot publish into another project, except a direct message to its inboxes", async () => {
      await expect(
        alice.js.publish(subjects.workOffer(PB, "default", "review"), "intrude", { timeout: 1_000 }),
      ).rejects.toThrow();
      await refused(nc.request(subjects.coordinator(PB, "submit"), "{}", { timeout: 1_000 }));
      const offers = await (await admin.jsm()).streams.info(streams.work(PB));
      expect(offers.state.messages).toBe(0);
    });

    it("a push consumer of its own cannot deliver into another project's stream or keys", async () => {
      const own = streams.channel(PA, "roadmap");
      const before = (await (await admin.jsm()).streams.info(bobInbox())).state.messages;
      const registryBefore = await (await admin.kvm.open(buckets.registry())).get(
        keys.registry(PB, bobAgent),
      );
      for (const [name, deliver] of [
        ["inject_inbox", subjects.inbox(PB, bobAgent)],
        ["inject_registry", `$KV.${buckets.registry()}.${keys.registry(PB, bobAgent)}`],
      ] as const) {
        await jsm.consumers
          .add(own, {
            name,
            deliver_subject: deliver,
            ack_policy: AckPolicy.None,
            deliver_policy: DeliverPolicy.All,
          })
          .catch(() => undefined);
      }
      await sleep(500);
      expect((await (await admin.jsm()).streams.info(bobInbox())).state.messages).toBe(before);
      const registryAfter = await (await admin.kvm.open(buckets.registry())).get(keys.registry(PB, bobAgent));
      expect(registryAfter?.revision).toBe(registryBefore?.revision);
    });
  });
});
