import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { Fabric, natsSettingsFromEnv, provision } from "@loominal/fabric";
import { buckets, keys, natsServerConfig, warpConfigSchema } from "@loominal/protocol";
import { eventually, NatsServer, tempDir, uniqueProjectId } from "@loominal/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { warpProvisionSpecs } from "../provision.js";
import { Warp } from "../warp.js";
import { openWarp, projectConfig } from "../warp.test-helper.js";
import { leasePathsOverlap } from "./globs.js";

const FIXTURE = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "test-fixtures", "lease-agent.mjs");

let nats: NatsServer;
const locks = tempDir("lease-locks-");
const cleanups: Array<() => Promise<void> | void> = [];

beforeAll(async () => {
  nats = await NatsServer.start();
});
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
  await nats?.stop();
  locks.cleanup();
});

async function agents(names: string[]) {
  const p = uniqueProjectId();
  const first = projectConfig(nats.url, p, { env: { LOOMINAL_AGENT_NAME: names[0] ?? "a" } });
  cleanups.push(first.cleanup);
  const out = [];
  for (const name of names) {
    const { config } = projectConfig(nats.url, p, { env: { LOOMINAL_AGENT_NAME: name }, dir: first.dir });
    const opened = await openWarp(config, locks.path);
    cleanups.push(opened.close);
    out.push(opened.warp);
  }
  return { projectId: p, dir: first.dir, warps: out };
}

/** An agent in a child process, driven by JSON lines (test-fixtures/lease-agent.mjs). */
class AgentProcess {
  readonly child: ChildProcessWithoutNullStreams;
  #waiting: Array<(line: Record<string, unknown>) => void> = [];
  #exited: Promise<number | null>;

  constructor(dir: string, env: Record<string, string>) {
    this.child = spawn(process.execPath, [FIXTURE], {
      cwd: dir,
      env: { ...process.env, NATS_URL: nats.url, LOOMINAL_LOCK_DIR: locks.path, ...env },
      stdio: ["pipe", "pipe", "pipe"],
    });
    this.#exited = new Promise((r) => this.child.once("exit", (code) => r(code)));
    this.child.stderr.resume();
    createInterface({ input: this.child.stdout }).on("line", (line) => {
      this.#waiting.shift()?.(JSON.parse(line) as Record<string, unknown>);
    });
    cleanups.push(() => {
      if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill("SIGKILL");
    });
  }

  next(): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("no answer from the agent process in 30 s")), 30_000);
      this.#waiting.push((line) => {
        clearTimeout(timer);
        resolve(line);
      });
    });
  }

  async ready(): Promise<string> {
    const r = await this.next();
    if (r.ready !== true) throw new Error(`agent process did not start: ${JSON.stringify(r)}`);
    return String(r.agentId);
  }

  send(cmd: Record<string, unknown>): Promise<Record<string, unknown>> {
    const answer = this.next();
    this.child.stdin.write(`${JSON.stringify(cmd)}\n`);
    return answer;
  }

  exit(): Promise<number | null> {
    this.child.stdin.write(`${JSON.stringify({ op: "exit" })}\n`);
    return this.#exited;
  }
}

describe("file leases", () => {
  it("lets one agent hold overlapping paths exclusively, shares shared ones, and names holder and reason", async () => {
    const {
      warps: [alice, bob, carol],
    } = await agents(["alice", "bob", "carol"]);
    if (!alice || !bob || !carol) throw new Error("agents missing");
    const a = await alice.leases.acquire({
      paths: ["src/api"],
      mode: "exclusive",
      reason: "refactoring the API",
    });
    expect(a.acquired).toBe(true);
    // Overlapping, though no string prefix of the other: refused, with who and why.
    const b = await bob.leases.acquire({ paths: ["src/*/handlers.ts"], mode: "exclusive", reason: "fix" });
    expect(b.acquired).toBe(false);
    if (b.acquired) throw new Error("unreachable");
    expect(b.conflicts[0]).toMatchObject({
      agentId: alice.agentId,
      handle: "alice",
      heldPath: "src/api",
      path: "src/*/handlers.ts",
      reason: "refactoring the API",
    });
    // Shared does not get past exclusive either, and a disjoint path is fine.
    expect(
      (await bob.leases.acquire({ paths: ["src/api/x.ts"], mode: "shared", reason: "read" })).acquired,
    ).toBe(false);
    expect(
      (await bob.leases.acquire({ paths: ["src/apix/**"], mode: "exclusive", reason: "other" })).acquired,
    ).toBe(true);
    // The holder's own leases never stand in its way.
    expect(
      (await alice.leases.acquire({ paths: ["src/api/v2"], mode: "exclusive", reason: "more" })).acquired,
    ).toBe(true);

    // Shared with shared is fine; exclusive against shared is not.
    expect(
      (await alice.leases.acquire({ paths: ["docs/**"], mode: "shared", reason: "reading docs" })).acquired,
    ).toBe(true);
    expect(
      (await bob.leases.acquire({ paths: ["docs/*.md"], mode: "shared", reason: "reading" })).acquired,
    ).toBe(true);
    const c = await carol.leases.acquire({ paths: ["docs/guide.md"], mode: "exclusive", reason: "rewrite" });
    expect(c.acquired).toBe(false);
    if (c.acquired) throw new Error("unreachable");
    expect(new Set(c.conflicts.map((x) => x.handle))).toEqual(new Set(["alice", "bob"]));

    const listed = await carol.leases.list({ path: "src/api/handlers.ts" });
    expect(listed.map((l) => l.paths)).toEqual([["src/api"]]);
    expect((await carol.leases.list({ agentId: bob.agentId })).length).toBe(2);

    // Released, the paths are free for others.
    const released = await alice.leases.release();
    expect(released.length).toBe(3);
    expect(
      (await carol.leases.acquire({ paths: ["src/api/handlers.ts"], mode: "exclusive", reason: "now" }))
        .acquired,
    ).toBe(true);
    await expect(
      carol.leases.release([(await bob.leases.list({ agentId: bob.agentId }))[0]?.leaseId ?? ""]),
    ).rejects.toMatchObject({
      code: "forbidden",
    });
  });

  it("renews a live lease, refuses to renew an expired one, and an expired lease no longer blocks", async () => {
    const {
      projectId,
      warps: [alice, bob],
    } = await agents(["alice", "bob"]);
    if (!alice || !bob) throw new Error("agents missing");
    const r = await alice.leases.acquire({ paths: ["a.txt"], mode: "exclusive", reason: "r", ttlMs: 60_000 });
    if (!r.acquired) throw new Error("not acquired");
    const renewed = await alice.leases.renew(r.lease.leaseId, 120_000);
    expect(Date.parse(renewed.expiresAt)).toBeGreaterThan(Date.parse(r.lease.expiresAt));
    await expect(bob.leases.renew(r.lease.leaseId)).rejects.toMatchObject({ code: "forbidden" });
    await expect(alice.leases.renew("0".repeat(32))).rejects.toMatchObject({ code: "not_found" });

    // Let the stored expiry pass (written as another writer would find it: the server has no per-key TTL).
    const kv = await (await import("@loominal/fabric")).ensureBucket(alice.fabric, {
      name: buckets.fileLeases(projectId),
      history: 1,
    });
    const entry = await kv.get(keys.fileLeaseTable());
    const table = entry?.json<{ leases: Array<{ expiresAt: string }> }>();
    if (!entry || !table) throw new Error("no table");
    for (const l of table.leases) l.expiresAt = new Date(Date.now() - 1_000).toISOString();
    await kv.update(keys.fileLeaseTable(), JSON.stringify(table), entry.revision);

    expect(await bob.leases.list()).toEqual([]);
    await expect(alice.leases.renew(r.lease.leaseId)).rejects.toThrow(/expired/);
    expect(
      (await bob.leases.acquire({ paths: ["a.txt"], mode: "exclusive", reason: "mine now" })).acquired,
    ).toBe(true);
  });

  it("shows the holder busy in the registry while it holds a lease, idle once released", async () => {
    const {
      warps: [alice, bob],
    } = await agents(["alice", "bob"]);
    if (!alice || !bob) throw new Error("agents missing");
    await alice.registry.register({ agentType: "developer" });
    const r = await alice.leases.acquire({ paths: ["busy/**"], mode: "exclusive", reason: "r" });
    expect(r.acquired).toBe(true);
    await eventually(async () => {
      expect(await bob.registry.getInfo(alice.agentId)).toMatchObject({ status: "busy", activeLeases: 1 });
    });
    await alice.leases.release();
    await eventually(async () => {
      expect(await bob.registry.getInfo(alice.agentId)).toMatchObject({ status: "idle", activeLeases: 0 });
    });
  });

  it("an acquire whose answer is lost (server frozen past the request timeout) ends acquired, once", async () => {
    const p = uniqueProjectId();
    const { config, cleanup } = projectConfig(nats.url, p, { env: { LOOMINAL_AGENT_NAME: "frozen" } });
    cleanups.push(cleanup);
    const fabric = await Fabric.connect({ nats: config.nats, requestTimeoutMs: 800 });
    const alice = await Warp.open({ config, fabric, lockDir: locks.path });
    cleanups.push(async () => {
      await alice.close();
      await fabric.close();
    });
    await alice.ready(5_000);
    const warm = await alice.leases.acquire({ paths: ["warm"], mode: "exclusive", reason: "warm up" });
    expect(warm.acquired).toBe(true);
    // The update reaches the frozen server and waits in its socket; the client gives up after 800 ms and
    // tries again; the server wakes, stores the first write, then answers the retry's read.
    nats.pause();
    const pending = alice.leases.acquire({ paths: ["frozen/**"], mode: "exclusive", reason: "lost answer" });
    await new Promise((r) => setTimeout(r, 1_200));
    nats.resume();
    const r = await pending;
    expect(r.acquired).toBe(true);
    if (!r.acquired) return;
    const listed = await alice.leases.list();
    expect(listed.filter((l) => l.leaseId === r.lease.leaseId)).toHaveLength(1);
    expect(listed.filter((l) => l.paths.includes("frozen/**"))).toHaveLength(1);
  });

  it("refuses bad input with a message saying what to fix", async () => {
    const {
      warps: [alice],
    } = await agents(["alice"]);
    if (!alice) throw new Error("agent missing");
    await expect(alice.leases.acquire({ paths: ["../x"], mode: "exclusive", reason: "r" })).rejects.toThrow(
      /'\.\.'/,
    );
    await expect(alice.leases.acquire({ paths: ["x"], mode: "exclusive", reason: " " })).rejects.toThrow(
      /reason/,
    );
    await expect(
      alice.leases.acquire({ paths: ["x"], mode: "exclusive", reason: "r", ttlMs: 5 }),
    ).rejects.toThrow(/ttlMs/);
  });
});

describe("file leases across processes", () => {
  // Two families of paths: every path of one family overlaps every other of it, none overlaps the other family.
  const FAMILIES = [
    ["src/left", "src/left/*.ts", "src/left/a.ts", "src/{left,mid}/a.ts", "src/le?t/a.ts", "src/[kl]eft/**"],
    [
      "src/right",
      "src/right/*.ts",
      "src/right/a.ts",
      "src/{right,other}/a.ts",
      "src/ri?ht/a.ts",
      "src/[qr]ight/**",
    ],
  ] as const;

  it("the families overlap within and not across", () => {
    for (const [i, f] of FAMILIES.entries())
      for (const x of f) {
        for (const y of f) expect(leasePathsOverlap(x, y), `${x} ${y}`).toBe(true);
        for (const y of FAMILIES[1 - i] ?? []) expect(leasePathsOverlap(x, y), `${x} ${y}`).toBe(false);
      }
  });

  it("8 agent processes racing 1,000 rounds: exactly one exclusive winner per overlapping family, never exclusive beside shared", async () => {
    const p = uniqueProjectId();
    const dir = tempDir("lease-race-");
    cleanups.push(dir.cleanup);
    const racers = Array.from(
      { length: 8 },
      (_, i) => new AgentProcess(dir.path, { LOOMINAL_PROJECT_ID: p, LOOMINAL_AGENT_NAME: `racer-${i}` }),
    );
    await Promise.all(racers.map((r) => r.ready()));
    const ROUNDS = 1_000;
    const deadline = Date.now() + 240_000;
    let exclusiveWins = 0;
    let sharedWins = 0;
    let round = 0;
    for (; round < ROUNDS && Date.now() < deadline; round++) {
      const picks = racers.map(() => {
        const family = Math.random() < 0.5 ? 0 : 1;
        const paths = FAMILIES[family] ?? [];
        return {
          family,
          path: paths[Math.floor(Math.random() * paths.length)] ?? "",
          mode: Math.random() < 0.2 ? "shared" : "exclusive",
        };
      });
      const answers = await Promise.all(
        racers.map((r, i) =>
          r.send({ op: "acquire", tag: round, paths: [picks[i]?.path], mode: picks[i]?.mode }),
        ),
      );
      for (const a of answers) expect(a.error, JSON.stringify(a)).toBeUndefined();
      for (const family of [0, 1]) {
        const inFamily = picks
          .map((pick, i) => ({ ...pick, won: answers[i]?.acquired === true }))
          .filter((x) => x.family === family);
        if (inFamily.length === 0) continue;
        const winners = inFamily.filter((x) => x.won);
        const exclusive = winners.filter((x) => x.mode === "exclusive").length;
        const shared = winners.filter((x) => x.mode === "shared").length;
        // Someone always wins a free family; never two exclusive holders, never exclusive beside shared.
        expect(winners.length, `round ${round} family ${family}`).toBeGreaterThan(0);
        expect(exclusive, `round ${round} family ${family}`).toBeLessThanOrEqual(1);
        if (exclusive === 1) expect(shared, `round ${round} family ${family}`).toBe(0);
        exclusiveWins += exclusive;
        sharedWins += shared;
      }
      await Promise.all(
        racers.map((r, i) =>
          answers[i]?.acquired ? r.send({ op: "release", leaseIds: [answers[i]?.leaseId] }) : undefined,
        ),
      );
    }
    expect(round).toBe(ROUNDS);
    expect(exclusiveWins).toBeGreaterThan(ROUNDS / 2);
    expect(sharedWins).toBeGreaterThan(0);
    await Promise.all(racers.map((r) => r.exit()));
  }, 300_000);

  it("a SIGKILLed agent's leases end with it (same host at once; another host when its identity claim expires)", async () => {
    const {
      dir,
      projectId,
      warps: [alice],
    } = await agents(["alice"]);
    if (!alice) throw new Error("agent missing");
    const env = { LOOMINAL_PROJECT_ID: projectId };
    const local = new AgentProcess(dir, { ...env, LOOMINAL_AGENT_NAME: "local" });
    const remote = new AgentProcess(dir, {
      ...env,
      LOOMINAL_AGENT_NAME: "remote",
      LOOMINAL_HOSTNAME: "another-host",
    });
    await Promise.all([local.ready(), remote.ready()]);
    expect(
      (await local.send({ op: "acquire", paths: ["lib/local"], mode: "exclusive", reason: "held" })).acquired,
    ).toBe(true);
    expect(
      (await remote.send({ op: "acquire", paths: ["lib/remote"], mode: "exclusive", reason: "held" }))
        .acquired,
    ).toBe(true);
    expect((await alice.leases.list()).length).toBe(2);

    local.child.kill("SIGKILL");
    remote.child.kill("SIGKILL");
    // On this host a dead pid is seen at once.
    await eventually(
      async () => {
        expect(
          (await alice.leases.acquire({ paths: ["lib/local/x.ts"], mode: "exclusive", reason: "take over" }))
            .acquired,
        ).toBe(true);
      },
      { timeoutMs: 10_000 },
    );
    // Elsewhere only the expiry of the identity claim (30 s without renewal) tells.
    expect(
      (await alice.leases.acquire({ paths: ["lib/remote/x.ts"], mode: "exclusive", reason: "early" }))
        .acquired,
    ).toBe(false);
    await eventually(
      async () => {
        expect(
          (await alice.leases.acquire({ paths: ["lib/remote/x.ts"], mode: "exclusive", reason: "take over" }))
            .acquired,
        ).toBe(true);
      },
      { timeoutMs: 60_000, intervalMs: 1_000 },
    );
    expect((await alice.leases.list()).map((l) => l.agentId)).toEqual([alice.agentId, alice.agentId]);
  }, 90_000);

  it("a clean exit releases the agent's leases at once", async () => {
    const {
      dir,
      projectId,
      warps: [alice],
    } = await agents(["alice"]);
    if (!alice) throw new Error("agent missing");
    const child = new AgentProcess(dir, {
      LOOMINAL_PROJECT_ID: projectId,
      LOOMINAL_AGENT_NAME: "leaver",
      LOOMINAL_HOSTNAME: "another-host",
    });
    await child.ready();
    expect(
      (await child.send({ op: "acquire", paths: ["x/**"], mode: "exclusive", reason: "r" })).acquired,
    ).toBe(true);
    expect(await child.exit()).toBe(0);
    const kv = await (await import("@loominal/fabric")).ensureBucket(alice.fabric, {
      name: buckets.fileLeases(projectId),
      history: 1,
    });
    expect((await kv.get(keys.fileLeaseTable()))?.json<{ leases: unknown[] }>().leases).toEqual([]);
  });
});

describe("file leases under generated per-project NATS credentials", () => {
  it("work for the project's users and stay out of reach of other projects", async () => {
    const dir = tempDir("lease-perm-");
    cleanups.push(dir.cleanup);
    const configFile = join(dir.path, "nats.json");
    writeFileSync(
      configFile,
      natsServerConfig({
        storeDir: join(dir.path, "store"),
        admin: { user: "root", password: "root-pw" },
        users: [
          { user: "alice", password: "alice-pw", projectId: "proj-a" },
          { user: "mallory", password: "mallory-pw", projectId: "proj-b" },
        ],
      }),
    );
    const server = await NatsServer.start({ configFile, jetstream: false });
    cleanups.push(() => server.stop());
    const admin = await Fabric.connect({
      nats: natsSettingsFromEnv({ NATS_URL: server.url, NATS_USER: "root", NATS_PASSWORD: "root-pw" }),
    });
    cleanups.push(() => admin.close());
    const warpConfig = warpConfigSchema.parse({});
    for (const p of ["proj-a", "proj-b"]) await provision(admin, warpProvisionSpecs(p, warpConfig));

    const project = projectConfig(server.url, "proj-a", {
      env: { NATS_USER: "alice", NATS_PASSWORD: "alice-pw", LOOMINAL_AGENT_NAME: "alice" },
    });
    cleanups.push(project.cleanup);
    const { warp, close } = await openWarp(project.config, locks.path);
    cleanups.push(close);
    expect(
      (await warp.leases.acquire({ paths: ["src"], mode: "exclusive", reason: "permitted" })).acquired,
    ).toBe(true);
    expect((await warp.leases.list()).length).toBe(1);

    const mallory = await Fabric.connect({
      nats: natsSettingsFromEnv({ NATS_URL: server.url, NATS_USER: "mallory", NATS_PASSWORD: "mallory-pw" }),
    });
    cleanups.push(() => mallory.close());
    const { ensureBucket } = await import("@loominal/fabric");
    await expect(
      ensureBucket(mallory, { name: buckets.fileLeases("proj-a"), history: 1 }),
    ).rejects.toMatchObject({
      code: "forbidden",
    });
  });
});
