import { readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { processAlive } from "./proc.js";

// Only Node's own modules here: a Claude Code hook loads this (`@loominal/fabric/session`) to find the
// Warp server of its session before anything else.

/** Where lock files live unless `lockDir` or `LOOMINAL_LOCK_DIR` says otherwise. */
export function defaultLockDir(env: Record<string, string | undefined> = process.env): string {
  const set = env.LOOMINAL_LOCK_DIR?.trim();
  return set ? set : join(tmpdir(), "loominal-agents");
}

/** What an identity lock file holds. */
export interface LockRecord {
  pid: number;
  /** The holder's parent: servers started by one MCP host (one session) share it. */
  ppid?: number;
  hostname: string;
  startedAt: string;
}

/** A lock file's record; "torn" when it is being written or was left half-written by a crash. */
export function readLock(path: string): LockRecord | "missing" | "torn" {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return "missing";
    throw err;
  }
  try {
    const raw = JSON.parse(text) as Partial<LockRecord>;
    if (typeof raw.pid === "number" && typeof raw.hostname === "string")
      return {
        pid: raw.pid,
        ...(typeof raw.ppid === "number" ? { ppid: raw.ppid } : {}),
        hostname: raw.hostname,
        startedAt: String(raw.startedAt),
      };
  } catch {
    // Written by a process that crashed mid-write, or being written right now.
  }
  return "torn";
}

/** The lock file of one agent id for one role. Warp's keeps the name it always had. */
export function lockFileName(agentId: string, role: string): string {
  return role === "warp" ? `${agentId}.lock` : `${agentId}.${role}.lock`;
}

/**
 * The Warp lock file of this process's session: among the Warp lock files in `lockDir` held by a live
 * process, the one whose holder's parent is the nearest of `ancestors` (nearest first, as `ancestorPids`
 * gives them), say the Claude Code process that started both that server and a hook. Undefined when
 * there is none, or when two live Warp servers share that nearest parent (then only the configuration
 * can tell which one is meant: see `AgentInstance.locate`).
 */
export function sessionWarpLock(options: {
  ancestors: number[];
  lockDir: string;
}): { path: string; agentId: string; pid: number } | undefined {
  let names: string[];
  try {
    names = readdirSync(options.lockDir);
  } catch {
    return undefined;
  }
  let best: { path: string; agentId: string; pid: number; rank: number } | undefined;
  let tied = false;
  for (const name of names) {
    // Warp's own lock files are `<agentId>.lock`; the other roles' are `<agentId>.<role>.lock`.
    if (!name.endsWith(".lock") || name.indexOf(".") !== name.length - 5) continue;
    const path = join(options.lockDir, name);
    let lock: ReturnType<typeof readLock>;
    try {
      lock = readLock(path);
    } catch {
      continue;
    }
    if (typeof lock !== "object" || lock.ppid === undefined) continue;
    const rank = options.ancestors.indexOf(lock.ppid);
    if (rank < 0 || (best !== undefined && rank > best.rank) || !processAlive(lock.pid)) continue;
    tied = best !== undefined && rank === best.rank;
    if (!tied) best = { path, agentId: name.slice(0, -5), pid: lock.pid, rank };
  }
  if (!best || tied) return undefined;
  return { path: best.path, agentId: best.agentId, pid: best.pid };
}
