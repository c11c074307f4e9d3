import { lstatSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { Fabric, OUTAGE_GRACE_MS } from "@loominal/fabric";
import { eventually, freePort, NatsServer, tempDir, uniqueProjectId } from "@loominal/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Warp } from "../warp.js";
import { openWarp, projectConfig } from "../warp.test-helper.js";
import { askSessionWarp } from "./client.js";
import { HookSocketServer } from "./server.js";

let nats: NatsServer;
beforeAll(async () => {
  nats = await NatsServer.start();
});
afterAll(async () => {
  await nats?.stop();
});

// The lock files of Warps opened here name this process's parent: a hook's nearest ancestor is then that.
const session = { ancestors: [process.ppid] };

describe("HookSocketServer", () => {
  it("answers hooks beside the lock file with mode 0600 and removes its socket on close", async () => {
    const locks = tempDir("hook-srv-locks-");
    const { config, dir, cleanup } = projectConfig(nats.url, uniqueProjectId());
    const me = await openWarp(config, locks.path);
    const peer = await openWarp(
      projectConfig(nats.url, config.projectId, { dir, env: { LOOMINAL_AGENT_NAME: "peer" } }).config,
      join(locks.path, "elsewhere"),
    );
    try {
      const first = await HookSocketServer.start(me.warp);
      expect(first?.path).toBe(join(locks.path, `${me.warp.agentId}.sock`));
      expect(lstatSync(first?.path ?? "").mode & 0o777).toBe(0o600);
      // The shell hook's file: pid, parent pid, loopback port and token, mode 0600.
      const tcpFile = join(locks.path, `${me.warp.agentId}.hook`);
      expect(first?.tcpFile).toBe(tcpFile);
      expect(lstatSync(tcpFile).mode & 0o777).toBe(0o600);
      expect(readFileSync(tcpFile, "utf8")).toBe(
        `${process.pid} ${process.ppid} ${first?.port} ${readFileSync(tcpFile, "utf8").split(" ")[3]}`,
      );
      expect(readFileSync(tcpFile, "utf8")).toMatch(/^\d+ \d+ \d+ [0-9a-f]{64}\n$/);
      await peer.warp.registry.register({ agentType: "developer" });
      await me.warp.registry.register({ agentType: "developer" });
      await peer.warp.inbox.send(me.warp.agentId, "over the socket");

      const env = { LOOMINAL_LOCK_DIR: locks.path };
      const answer = await askSessionWarp(
        { event: "UserPromptSubmit", input: JSON.stringify({ cwd: dir }), cwd: dir },
        { ...session, env },
      );
      expect(answer?.agentId).toBe(me.warp.agentId);
      expect(answer?.stderr).toEqual([]);
      expect(answer?.stdout).toContain("over the socket");
      const again = await askSessionWarp({ event: "Stop", input: "", cwd: dir }, { ...session, env });
      expect(again).toEqual({ agentId: me.warp.agentId, stderr: [] });
      // Not an event, or another user's view of the tree: no answer, the hook does the work itself.
      expect(
        await askSessionWarp({ event: "Nope", input: "", cwd: dir }, { ...session, env }),
      ).toBeUndefined();
      expect(
        await askSessionWarp({ event: "Stop", input: "", cwd: dir }, { ancestors: [1], env }),
      ).toBeUndefined();

      // Closed: the socket is gone, and a new server listens there again.
      const path = first?.path ?? "";
      await first?.close();
      expect(lstatSync(path, { throwIfNoEntry: false })).toBeUndefined();
      expect(lstatSync(tcpFile, { throwIfNoEntry: false })).toBeUndefined();
      const second = await HookSocketServer.start(me.warp);
      expect(second?.port).not.toBeUndefined();
      expect(lstatSync(path).isSocket()).toBe(true);
      expect(await askSessionWarp({ event: "Stop", input: "", cwd: dir }, { ...session, env })).toEqual({
        agentId: me.warp.agentId,
        stderr: [],
      });
      await second?.close();
    } finally {
      await me.close();
      await peer.close();
      cleanup();
      locks.cleanup();
    }
  });

  it("leaves anything but a socket alone, and answers with the hook's note at once while NATS is down", async () => {
    const locks = tempDir("hook-srv-down-");
    const url = `nats://127.0.0.1:${await freePort()}`;
    const { config, dir, cleanup } = projectConfig(url, uniqueProjectId());
    const fabric = Fabric.start({ nats: config.nats, reconnectDelayMs: 50, maxReconnectDelayMs: 200 });
    const warp = await Warp.open({ config, fabric, lockDir: locks.path });
    try {
      mkdirSync(join(locks.path, `${warp.agentId}.sock`));
      expect(await HookSocketServer.start(warp)).toBeUndefined();
      expect(lstatSync(join(locks.path, `${warp.agentId}.sock`)).isDirectory()).toBe(true);

      const other = tempDir("hook-srv-down2-");
      const w2 = await Warp.open({ config, fabric, lockDir: other.path });
      const hooks = await HookSocketServer.start(w2);
      await eventually(
        () => {
          if ((fabric.downForMs ?? 0) < OUTAGE_GRACE_MS) throw new Error("outage not known yet");
        },
        { timeoutMs: 10_000 },
      );
      const env = { LOOMINAL_LOCK_DIR: other.path };
      const down = await askSessionWarp(
        { event: "SessionStart", input: "{}", cwd: dir },
        { ...session, env, acceptMs: 5_000 },
      );
      const note = `loominal hook: NATS unreachable at ${url}; messages, work and leases not checked.`;
      expect(down).toEqual({
        agentId: w2.agentId,
        stdout: JSON.stringify({ systemMessage: note }),
        stderr: [note],
      });
      await hooks?.close();
      await w2.close();
      other.cleanup();
    } finally {
      await warp.close();
      await fabric.close();
      cleanup();
      locks.cleanup();
    }
  });
});
