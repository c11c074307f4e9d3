import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { tempDir } from "@loominal/testkit";
import { afterAll, describe, expect, it } from "vitest";
import { AgentInstance } from "./agent-instance.js";
import { loadConfig } from "./config.js";
import { silentLogger } from "./logger.js";

const sleepers: Array<ReturnType<typeof spawn>> = [];
afterAll(() => {
  for (const s of sleepers) s.kill("SIGKILL");
});

/** A live process to name as a lock's holder. */
function livePid(): number {
  const child = spawn(process.execPath, ["-e", "setTimeout(() => {}, 60000)"], { stdio: "ignore" });
  sleepers.push(child);
  return child.pid ?? 0;
}

describe("AgentInstance", () => {
  it("gives a second holder of one role the next instance, and each role its own lock", () => {
    const dir = tempDir("instance-dir-");
    const locks = tempDir("instance-locks-");
    const config = loadConfig({ env: { LOOMINAL_PROJECT_DIR: dir.path, LOOMINAL_PROJECT_ID: "p1" } });
    const logger = silentLogger();
    const a = AgentInstance.acquire({ config, role: "pattern", lockDir: locks.path, logger });
    const b = AgentInstance.acquire({ config, role: "pattern", lockDir: locks.path, logger });
    const w = AgentInstance.acquire({ config, role: "warp", lockDir: locks.path, logger });
    try {
      expect(a.agentId).toBe(config.agentId);
      expect(b.instance).toBe(2);
      expect(b.agentId).not.toBe(a.agentId);
      expect(b.applyTo(config)).toMatchObject({ agentId: b.agentId, agentName: "default-2" });
      // Warp's lock is its own: the first Warp here is the same agent as the first Pattern.
      expect(w.agentId).toBe(a.agentId);
    } finally {
      void a.release();
      void b.release();
      void w.release();
      dir.cleanup();
      locks.cleanup();
    }
  });

  it("joins the instance its own session's servers hold, and avoids those of other sessions", () => {
    const dir = tempDir("instance-dir-");
    const locks = tempDir("instance-locks-");
    const config = loadConfig({ env: { LOOMINAL_PROJECT_DIR: dir.path, LOOMINAL_PROJECT_ID: "p1" } });
    const logger = silentLogger();
    const ids = [1, 2, 3].map((i) =>
      i === 1
        ? config.agentId
        : loadConfig({ env: { ...envOf(dir.path), LOOMINAL_AGENT_NAME: `default-${i}` } }).agentId,
    );
    // Session 4242's Warp runs as instance 1, session 5151's as instance 2.
    const lock = (agentId: string | undefined, ppid: number) =>
      writeFileSync(
        join(locks.path, `${agentId}.lock`),
        JSON.stringify({ pid: livePid(), ppid, hostname: config.hostname, startedAt: "" }),
      );
    lock(ids[0], 4242);
    lock(ids[1], 5151);
    const joined = AgentInstance.acquire({
      config,
      role: "pattern",
      lockDir: locks.path,
      logger,
      sessionPid: 5151,
    });
    const fresh = AgentInstance.acquire({
      config,
      role: "pattern",
      lockDir: locks.path,
      logger,
      sessionPid: 7777,
    });
    try {
      expect(joined.instance).toBe(2);
      expect(joined.agentId).toBe(ids[1]);
      expect(fresh.instance).toBe(3);
      expect(fresh.agentId).toBe(ids[2]);
    } finally {
      void joined.release();
      void fresh.release();
      dir.cleanup();
      locks.cleanup();
    }
  });
});

function envOf(dir: string) {
  return { LOOMINAL_PROJECT_DIR: dir, LOOMINAL_PROJECT_ID: "p1" };
}
