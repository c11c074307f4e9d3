import { spawn, spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { tempDir } from "@loominal/testkit";
import { afterEach, describe, expect, it } from "vitest";
import { DRIVER_FILE, DriverLocks } from "./driver.js";
import { WorkDir } from "./paths.js";

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function workDir(): Promise<WorkDir> {
  const dir = tempDir("shuttle-driver-");
  cleanups.push(() => dir.cleanup());
  return WorkDir.open(join(dir.path, "work"));
}

function locks(wd: WorkDir): DriverLocks {
  const l = new DriverLocks(wd);
  cleanups.push(() => l.close());
  return l;
}

function lockOf(wd: WorkDir, id: string): { pid: number; instanceId: string } {
  return JSON.parse(readFileSync(join(wd.root, id, DRIVER_FILE), "utf8"));
}

function writeLock(wd: WorkDir, id: string, holder: { pid: number; instanceId: string }): void {
  writeFileSync(
    join(wd.root, id, DRIVER_FILE),
    JSON.stringify({ ...holder, hostname: hostname(), since: new Date(0).toISOString() }),
  );
}

/** The pid of a process that has exited. */
function deadPid(): number {
  const child = spawnSync(process.execPath, ["-e", ""]);
  return child.pid ?? 999_999;
}

const ID = "0123456789abcdef0123456789abcdef";

describe("DriverLocks", () => {
  it("takes over a lock with this process's pid but an instance id no live instance has", async () => {
    const wd = await workDir();
    await wd.ensureDir(ID);
    writeLock(wd, ID, { pid: process.pid, instanceId: "earlier-process-same-pid" });
    const l = locks(wd);
    expect(await l.acquire(ID)).toEqual({ ok: true });
    expect(lockOf(wd, ID).instanceId).toBe(l.instanceId);
  });

  it("does not take over a lock of another live instance, in this process or another", async () => {
    const wd = await workDir();
    const first = locks(wd);
    expect(await first.acquire(ID)).toEqual({ ok: true });
    const second = locks(wd);
    expect(await second.acquire(ID)).toMatchObject({ ok: false, holder: { instanceId: first.instanceId } });

    const other = "fedcba9876543210fedcba9876543210";
    await wd.ensureDir(other);
    const live = spawn(process.execPath, ["-e", "setInterval(() => {}, 1000)"], { stdio: "ignore" });
    cleanups.push(() => live.kill("SIGKILL"));
    writeLock(wd, other, { pid: Number(live.pid), instanceId: "a-live-server" });
    expect(await second.acquire(other)).toMatchObject({ ok: false, holder: { pid: live.pid } });
  });

  it("lets exactly one of many servers take over a dead driver's lock at once", async () => {
    const wd = await workDir();
    for (let round = 0; round < 40; round++) {
      const id = `${round.toString(16).padStart(2, "0")}${"a".repeat(30)}`;
      await wd.ensureDir(id);
      writeLock(wd, id, { pid: deadPid(), instanceId: `dead-${round}` });
      const contenders = Array.from({ length: 8 }, () => locks(wd));
      // Staggered by a few ms, so some read the dead lock while others are already replacing it.
      const outcomes = await Promise.all(
        contenders.map(async (c, i) => {
          await new Promise((r) => setTimeout(r, (i * 7 + round) % 5));
          return c.acquire(id);
        }),
      );
      const winners = contenders.filter((_, i) => outcomes[i]?.ok);
      expect(winners).toHaveLength(1);
      expect(lockOf(wd, id).instanceId).toBe(winners[0]?.instanceId);
      for (const c of contenders) expect(await c.verify(id)).toBe(c === winners[0]);
    }
  });

  it("finds out on verify that it lost the lock, and forgets it", async () => {
    const wd = await workDir();
    const l = locks(wd);
    expect(await l.acquire(ID)).toEqual({ ok: true });
    expect(await l.verify(ID)).toBe(true);
    const live = spawn(process.execPath, ["-e", "setInterval(() => {}, 1000)"], { stdio: "ignore" });
    cleanups.push(() => live.kill("SIGKILL"));
    writeLock(wd, ID, { pid: Number(live.pid), instanceId: "took-it" });
    expect(await l.verify(ID)).toBe(false);
    expect(l.holds(ID)).toBe(false);
    expect(await l.acquire(ID)).toMatchObject({ ok: false, holder: { instanceId: "took-it" } });
  });
});
