import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import { hostBootId, KeyedSerialQueue, processAlive, processStartTime } from "@loominal/fabric";
import { z } from "zod";
import type { WorkDir } from "./paths.js";

export const DRIVER_FILE = "driver.json";

const driverSchema = z.object({
  pid: z.int(),
  hostname: z.string(),
  /** Random per DriverLocks instance: tells a live holder from an earlier process that had the same pid. */
  instanceId: z.string(),
  /** When the holding process started (ISO 8601). */
  since: z.string(),
  /** Linux: the host's boot id (`/proc/sys/kernel/random/boot_id`) when the lock was taken. */
  bootId: z.string().optional(),
  /** Linux: the holding process's start time in clock ticks since boot (`/proc/<pid>/stat`, field 22). */
  pidStart: z.string().optional(),
});
export type DriverInfo = z.infer<typeof driverSchema>;

export type LockOutcome = { ok: true } | { ok: false; holder: DriverInfo };

type LockRead = { state: "missing" } | { state: "unreadable" } | { state: "held"; info: DriverInfo };

/**
 * Instance ids of the DriverLocks alive in this process. A lock carrying this process's pid is live only if
 * its instance id is here; otherwise it was left by an earlier process that had the same pid (a container
 * restarted, pids reused).
 */
const LIVE_INSTANCES_KEY = Symbol.for("loominal.shuttle.liveDriverInstances");
function liveInstances(): Set<string> {
  const g = globalThis as unknown as Record<symbol, Set<string> | undefined>;
  let set = g[LIVE_INSTANCES_KEY];
  if (!set) {
    set = new Set();
    g[LIVE_INSTANCES_KEY] = set;
  }
  return set;
}

/**
 * Which Shuttle process drives an orchestration (offers its work, follows its events, writes its file).
 * One driver per orchestration keeps two servers sharing a work dir from offering a subtask twice or
 * overwriting each other's writes.
 *
 * The lock is the file `<orchestrationId>/driver.json`, created whole (temporary file, then `link`, which
 * fails if the lock exists). It names the holder: pid, host, a random instance id, the process's start time
 * and the host's boot id. A lock is stale when its holder is on this host and gone: the boot id changed,
 * the pid is dead, the pid now belongs to a process that started at another time, or the pid is this
 * process's own while the instance id is not one of ours. A stale lock is moved aside with `rename` (of
 * several servers taking over at once, one moves it) and the lock is created again; a server that moved
 * a fresh lock by mistake puts it back. A lock held from another host is never taken over.
 *
 * Holders re-read the file (`verify`) before every change and periodically: a server that finds another
 * instance id there has lost the lock and stops driving. Operations on one orchestration's lock are
 * serialised within the process.
 */
export class DriverLocks {
  readonly instanceId = randomBytes(8).toString("hex");
  readonly me: DriverInfo;
  #workDir: WorkDir;
  #held = new Set<string>();
  #lockText: string;
  #queue = new KeyedSerialQueue<string>();

  constructor(workDir: WorkDir) {
    this.#workDir = workDir;
    const bootId = hostBootId();
    const pidStart = processStartTime(process.pid);
    this.me = {
      pid: process.pid,
      hostname: hostname(),
      instanceId: this.instanceId,
      since: new Date(Date.now() - process.uptime() * 1_000).toISOString(),
      ...(bootId !== undefined ? { bootId } : {}),
      ...(pidStart !== undefined ? { pidStart } : {}),
    };
    this.#lockText = JSON.stringify(this.me);
    liveInstances().add(this.instanceId);
  }

  holds(orchestrationId: string): boolean {
    return this.#held.has(orchestrationId);
  }

  /** Orchestrations whose lock this instance believes it holds. */
  get held(): string[] {
    return [...this.#held];
  }

  /**
   * Takes the lock if it is free or stale; returns the live holder when it is someone else. When this
   * instance already holds it, the file is read again to confirm.
   */
  acquire(orchestrationId: string): Promise<LockOutcome> {
    return this.#serial(orchestrationId, () => this.#acquire(orchestrationId));
  }

  /**
   * Whether the lock file still names this instance. A lock that vanished (removed by hand, or moved
   * aside by a server about to put it back) is re-created if it can be; otherwise the lock is lost and
   * forgotten. False when this instance did not hold it.
   */
  verify(orchestrationId: string): Promise<boolean> {
    return this.#serial(orchestrationId, () => this.#verify(orchestrationId));
  }

  release(orchestrationId: string): Promise<void> {
    return this.#serial(orchestrationId, async () => {
      if (!this.#held.delete(orchestrationId)) return;
      const lock = await this.#read(this.#workDir.path(orchestrationId, DRIVER_FILE));
      if (lock.state === "held" && lock.info.instanceId === this.instanceId)
        await this.#workDir.remove([orchestrationId, DRIVER_FILE]);
    });
  }

  async holder(orchestrationId: string): Promise<DriverInfo | undefined> {
    const lock = await this.#read(this.#workDir.path(orchestrationId, DRIVER_FILE));
    return lock.state === "held" ? lock.info : undefined;
  }

  async releaseAll(): Promise<void> {
    for (const id of [...this.#held]) await this.release(id);
  }

  /** Releases every lock and stops counting this instance as alive. */
  async close(): Promise<void> {
    await this.releaseAll();
    liveInstances().delete(this.instanceId);
  }

  /** Whether a lock's holder is gone (judged only for holders on this host). */
  isStale(holder: DriverInfo): boolean {
    if (holder.hostname !== this.me.hostname) return false;
    if (holder.bootId && this.me.bootId && holder.bootId !== this.me.bootId) return true;
    if (holder.pid === process.pid) {
      if (holder.pidStart && this.me.pidStart && holder.pidStart !== this.me.pidStart) return true;
      return !liveInstances().has(holder.instanceId);
    }
    if (!processAlive(holder.pid)) return true;
    if (holder.pidStart) {
      const start = processStartTime(holder.pid);
      if (start !== undefined && start !== holder.pidStart) return true;
    }
    return false;
  }

  async #acquire(orchestrationId: string): Promise<LockOutcome> {
    if (this.#held.has(orchestrationId)) {
      if (await this.#verify(orchestrationId)) return { ok: true };
    }
    const segments = [orchestrationId, DRIVER_FILE];
    const path = this.#workDir.path(...segments);
    for (let attempt = 0; attempt < 10; attempt++) {
      if (await this.#workDir.createExclusive(segments, this.#lockText)) {
        // Re-read: a server taking over at the same moment may have moved the new lock aside (it puts
        // a live lock back) or replaced it. Gone for now: go round again.
        const made = await this.#read(path);
        if (made.state === "missing") continue;
        if (made.state === "held" && made.info.instanceId === this.instanceId) {
          this.#held.add(orchestrationId);
          return { ok: true };
        }
        if (made.state === "held" && !this.isStale(made.info)) return { ok: false, holder: made.info };
        continue;
      }
      const lock = await this.#read(path);
      if (lock.state === "missing") continue;
      const judged = lock.state === "held" ? lock.info : undefined;
      if (judged?.instanceId === this.instanceId) {
        this.#held.add(orchestrationId);
        return { ok: true };
      }
      if (judged && !this.isStale(judged)) return { ok: false, holder: judged };
      // Stale or unreadable: move it aside. rename is atomic, so of several servers taking over at once
      // only one moves this file; the others find it gone and race for the create.
      const aside = await this.#workDir.moveAside(segments);
      if (!aside) continue;
      const moved = await this.#read(aside);
      if (
        moved.state === "held" &&
        moved.info.instanceId !== judged?.instanceId &&
        !this.isStale(moved.info)
      ) {
        // Not the lock judged stale: a live server took over between the read and the move. Give it back.
        await this.#workDir.putBack(aside, segments);
      } else {
        await this.#workDir.removePath(aside);
      }
    }
    const holder = await this.holder(orchestrationId);
    return { ok: false, holder: holder ?? { ...this.me, pid: -1, instanceId: "unknown" } };
  }

  async #verify(orchestrationId: string): Promise<boolean> {
    if (!this.#held.has(orchestrationId)) return false;
    const segments = [orchestrationId, DRIVER_FILE];
    const lock = await this.#read(this.#workDir.path(...segments));
    if (lock.state === "held" && lock.info.instanceId === this.instanceId) return true;
    if (lock.state === "missing" && (await this.#workDir.createExclusive(segments, this.#lockText))) {
      const again = await this.#read(this.#workDir.path(...segments));
      if (again.state === "held" && again.info.instanceId === this.instanceId) return true;
    }
    this.#held.delete(orchestrationId);
    return false;
  }

  async #read(path: string): Promise<LockRead> {
    const file = await this.#workDir.readFile(path, 4_096);
    if (!file) return { state: "missing" };
    try {
      const parsed = driverSchema.safeParse(JSON.parse(file.content));
      return parsed.success ? { state: "held", info: parsed.data } : { state: "unreadable" };
    } catch {
      return { state: "unreadable" };
    }
  }

  #serial<T>(orchestrationId: string, run: () => Promise<T>): Promise<T> {
    return this.#queue.run(orchestrationId, run);
  }
}
