import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { tempDir } from "@loominal/testkit";
import { afterAll, describe, expect, it } from "vitest";
import { sessionWarpLock } from "./session-lock.js";

const children: Array<{ kill: () => void }> = [];
afterAll(() => {
  for (const c of children) c.kill();
});

/** A live process to hold a lock (its pid), and a lock record naming it with parent `ppid`. */
function holder(): number {
  const child = spawn(process.execPath, ["-e", "setTimeout(() => {}, 60000)"], { stdio: "ignore" });
  children.push({ kill: () => child.kill("SIGKILL") });
  return child.pid ?? 0;
}
function lock(dir: string, name: string, pid: number, ppid: number): void {
  writeFileSync(join(dir, name), JSON.stringify({ pid, ppid, hostname: "h", startedAt: "x" }));
}

describe("sessionWarpLock", () => {
  it("takes the Warp lock of a live process whose parent is the nearest ancestor; no answer on a tie", () => {
    const dir = tempDir("session-lock-");
    try {
      const a = holder();
      const b = holder();
      lock(dir.path, "aaaa.lock", a, 200);
      lock(dir.path, "bbbb.lock", b, 100);
      // Another role's lock, a dead holder's and a foreign session's are never taken.
      lock(dir.path, "cccc.pattern.lock", a, 100);
      lock(dir.path, "dddd.lock", 2 ** 22 + 12345, 100);
      lock(dir.path, "eeee.lock", a, 999);
      writeFileSync(join(dir.path, "ffff.lock"), "{torn");
      const found = sessionWarpLock({ ancestors: [100, 200], lockDir: dir.path });
      expect(found).toEqual({ path: join(dir.path, "bbbb.lock"), agentId: "bbbb", pid: b });
      expect(sessionWarpLock({ ancestors: [200], lockDir: dir.path })?.agentId).toBe("aaaa");
      expect(sessionWarpLock({ ancestors: [300], lockDir: dir.path })).toBeUndefined();
      expect(sessionWarpLock({ ancestors: [100], lockDir: join(dir.path, "none") })).toBeUndefined();
      // Two live Warp servers of one session: which one is meant is not decided here.
      lock(dir.path, "gggg.lock", a, 100);
      expect(sessionWarpLock({ ancestors: [100, 200], lockDir: dir.path })).toBeUndefined();
    } finally {
      dir.cleanup();
    }
  });
});
