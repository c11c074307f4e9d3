import { readFileSync } from "node:fs";

// Only Node's own modules here: `@loominal/fabric/session` (a Claude Code hook's first step) loads this file.

/**
 * Whether a process with this pid runs on this host. A process of another user counts as alive (the
 * signal is refused with EPERM, which only an existing process can do); one that exited but was not yet
 * reaped by its parent (a zombie, Linux `/proc/<pid>/stat` state Z) does not: it holds nothing any more.
 */
export function processAlive(pid: number): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EPERM") return false;
  }
  return processState(pid) !== "Z";
}

/** A process's state letter (Linux `/proc/<pid>/stat` field 3: R, S, D, Z, …), or undefined where /proc does not say. */
function processState(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) || undefined;
  } catch {
    return undefined;
  }
}

/**
 * This process's ancestors, nearest first (its parent, the parent's parent, …), at most `max`. Read from
 * `/proc` where there is one; elsewhere only the parent is known.
 */
export function ancestorPids(max = 16): number[] {
  const out: number[] = [];
  let pid = process.ppid;
  while (pid > 1 && out.length < max) {
    out.push(pid);
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    } catch {
      break;
    }
    // The command name (2nd field) is in parentheses and may contain spaces; the ppid follows the state.
    const after = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const parent = Number(after[1]);
    if (!Number.isSafeInteger(parent) || parent === pid) break;
    pid = parent;
  }
  return out;
}
