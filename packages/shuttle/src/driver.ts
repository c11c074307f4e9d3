import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import { z } from "zod";
import type { WorkDir } from "./paths.js";

export const DRIVER_FILE = "driver.json";

const driverSchema = z.object({
  pid: z.int(),
  hostname: z.string(),
  instanceId: z.string(),
  since: z.string(),
});
export type DriverInfo = z.infer<typeof driverSchema>;

/**
 * Which Shuttle process drives an orchestration (offers its work, follows its events, writes its file).
 * One driver per orchestration keeps two servers sharing a work dir from offering a subtask twice or
 * overwriting each other's writes. The lock is the file `<orchestrationId>/driver.json`, created with
 * O_EXCL; a lock left by a dead process on this host is taken over. A lock held from another host is
 * never taken over.
 */
export class DriverLocks {
  readonly instanceId = randomBytes(8).toString("hex");
  readonly me: DriverInfo;
  #workDir: WorkDir;
  #held = new Set<string>();

  constructor(workDir: WorkDir) {
    this.#workDir = workDir;
    this.me = {
      pid: process.pid,
      hostname: hostname(),
      instanceId: this.instanceId,
      since: new Date().toISOString(),
    };
  }

  holds(orchestrationId: string): boolean {
    return this.#held.has(orchestrationId);
  }

  /** Takes the lock if it is free or its holder is dead; returns the live holder when it is someone else. */
  async acquire(orchestrationId: string): Promise<{ ok: true } | { ok: false; holder: DriverInfo }> {
    if (this.#held.has(orchestrationId)) return { ok: true };
    for (let attempt = 0; attempt < 3; attempt++) {
      if (await this.#workDir.createExclusive([orchestrationId, DRIVER_FILE], JSON.stringify(this.me))) {
        this.#held.add(orchestrationId);
        return { ok: true };
      }
      const holder = await this.holder(orchestrationId);
      if (holder?.instanceId === this.instanceId) {
        this.#held.add(orchestrationId);
        return { ok: true };
      }
      if (holder && (holder.hostname !== this.me.hostname || isAlive(holder.pid)))
        return { ok: false, holder };
      // Dead holder or unreadable lock: remove it and race the other candidates for a fresh O_EXCL create.
      await this.#workDir.remove([orchestrationId, DRIVER_FILE]);
    }
    const holder = await this.holder(orchestrationId);
    return holder
      ? { ok: false, holder }
      : { ok: false, holder: { ...this.me, pid: -1, instanceId: "unknown" } };
  }

  async holder(orchestrationId: string): Promise<DriverInfo | undefined> {
    const file = await this.#workDir.readFile(this.#workDir.path(orchestrationId, DRIVER_FILE), 4_096);
    if (!file) return undefined;
    try {
      const parsed = driverSchema.safeParse(JSON.parse(file.content));
      return parsed.success ? parsed.data : undefined;
    } catch {
      return undefined;
    }
  }

  async release(orchestrationId: string): Promise<void> {
    if (!this.#held.delete(orchestrationId)) return;
    const holder = await this.holder(orchestrationId);
    if (holder?.instanceId === this.instanceId) await this.#workDir.remove([orchestrationId, DRIVER_FILE]);
  }

  async releaseAll(): Promise<void> {
    for (const id of [...this.#held]) await this.release(id);
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: the process exists but belongs to someone else.
    return err instanceof Error && "code" in err && err.code === "EPERM";
  }
}
