import { spawn, spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { ensureBucket, Fabric } from "@loominal/fabric";
import { buckets, keys } from "@loominal/protocol";
import { NatsServer, tempDir, uniqueProjectId } from "@loominal/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { IDENTITY_LEASE_TTL_MS } from "./identity.js";
import { Warp } from "./warp.js";
import { openWarp, projectConfig } from "./warp.test-helper.js";

let nats: NatsServer;

beforeAll(async () => {
  nats = await NatsServer.start();
});
afterAll(async () => {
  await nats.stop();
});

/** The pid of a process that has exited. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"], {
    encoding: "utf8",
  });
  return Number(r.stdout);
}

describe("identity", () => {
  it("two Warps started in the same directory get distinct identities and inboxes", async () => {
    const locks = tempDir();
    const a = projectConfig(nats.url, uniqueProjectId());
    const first = await openWarp(a.config, locks.path);
    const second = await openWarp(a.config, locks.path);
    try {
      expect(first.warp.agentId).toBe(a.config.agentId);
      expect(second.warp.agentId).not.toBe(first.warp.agentId);
      expect(second.warp.identity.instance).toBe(2);
      expect(second.warp.identity.agentName).toBe("default-2");
    } finally {
      await first.close();
      await second.close();
      a.cleanup();
      locks.cleanup();
    }
  });

  it("a second process gets a new instance while the first lives, and the old identity back once it died", async () => {
    const locks = tempDir();
    const a = projectConfig(nats.url, uniqueProjectId());
    const lockFile = join(locks.path, `${a.config.agentId}.lock`);
    const holder = spawn(process.execPath, ["-e", "setTimeout(() => {}, 60000)"], { stdio: "ignore" });
    try {
      writeFileSync(
        lockFile,
        JSON.stringify({ pid: holder.pid, hostname: a.config.hostname, startedAt: "" }),
      );
      const second = await openWarp(a.config, locks.path);
      expect(second.warp.identity.instance).toBe(2);
      await second.close();

      writeFileSync(lockFile, JSON.stringify({ pid: deadPid(), hostname: a.config.hostname, startedAt: "" }));
      const restarted = await openWarp(a.config, locks.path);
      expect(restarted.warp.agentId).toBe(a.config.agentId);
      await restarted.close();
    } finally {
      holder.kill("SIGKILL");
      a.cleanup();
      locks.cleanup();
    }
  });

  it("an explicit LOOMINAL_AGENT_ID held by a live process is a clear error", async () => {
    const locks = tempDir();
    const id = "c".repeat(32);
    const a = projectConfig(nats.url, uniqueProjectId(), { env: { LOOMINAL_AGENT_ID: id } });
    const first = await openWarp(a.config, locks.path);
    try {
      const fabric = await Fabric.connect({ nats: a.config.nats });
      await expect(Warp.open({ config: a.config, fabric, lockDir: locks.path })).rejects.toMatchObject({
        code: "lease_held",
        message: expect.stringContaining("LOOMINAL_AGENT_ID"),
      });
      await fabric.close();
    } finally {
      await first.close();
      a.cleanup();
      locks.cleanup();
    }
  });

  it("a NATS claim held by another host's live process refuses every call; one left by a dead local process is taken over", async () => {
    const locks = tempDir();
    const p = uniqueProjectId();
    const a = projectConfig(nats.url, p);
    const fabric = await Fabric.connect({ nats: a.config.nats });
    const kv = await ensureBucket(fabric, {
      name: buckets.agentIdentities(),
      history: 1,
      ttlMs: IDENTITY_LEASE_TTL_MS,
    });
    const key = keys.agentIdentity(p, a.config.agentId);
    const now = new Date().toISOString();
    await kv.put(key, JSON.stringify({ holder: "pid 1 on elsewhere", acquiredAt: now, renewedAt: now }));
    const warp = await Warp.open({ config: a.config, fabric, lockDir: locks.path });
    try {
      await expect(warp.ready(2_000)).rejects.toMatchObject({
        code: "lease_held",
        message: expect.stringContaining("pid 1 on elsewhere"),
      });
      await expect(warp.run(() => warp.channels.send("roadmap", "x"))).rejects.toMatchObject({
        code: "lease_held",
      });

      await kv.put(
        key,
        JSON.stringify({
          holder: `pid ${deadPid()} on ${a.config.hostname}`,
          acquiredAt: now,
          renewedAt: now,
        }),
      );
      await warp.ready(2_000);
      expect(warp.identity.claimed).toBe(true);
    } finally {
      await warp.close();
      await fabric.close();
      a.cleanup();
      locks.cleanup();
    }
  });
});
