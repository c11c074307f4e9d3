import { mkdirSync, readdirSync, readFileSync, statSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { buckets, deriveAgentId, keys, LoominalError, nameTokenProblem } from "@loominal/protocol";
import { isCasConflict } from "./cas.js";
import type { LoominalConfig } from "./config.js";
import type { Fabric } from "./connection.js";
import { Lease, leaseBucket } from "./lease.js";
import type { Logger } from "./logger.js";
import { processAlive } from "./proc.js";
import { defaultLockDir, type LockRecord, lockFileName, readLock } from "./session-lock.js";

export { defaultLockDir };

/** TTL of an identity claim in NATS: a claim not renewed for this long may be taken by another process. */
export const IDENTITY_LEASE_TTL_MS = 30_000;
const IDENTITY_RENEW_MS = 10_000;
/** How many instances of one agent name may run side by side in one directory (`name`, `name-2`, …). */
export const MAX_INSTANCES = 16;
/** A lock file nobody finished writing for this long is left over from a crash. */
const TORN_LOCK_MS = 10_000;
/** How an identity claim names the process holding it: `pid <pid> on <hostname>`. */
export function identityHolder(hostname: string, pid: number = process.pid): string {
  return `pid ${pid} on ${hostname}`;
}

/**
 * Whether the process an identity holder string names is certainly gone: it ran on `hostname` (this host)
 * and its pid is not alive. A holder on another host is never judged here (its claim expires instead).
 */
export function identityHolderGone(holder: string, hostname: string): boolean {
  const m = /^pid (\d+) on (.+)$/.exec(holder);
  if (!m || m[2] !== hostname) return false;
  const pid = Number(m[1]);
  return pid !== process.pid && !processAlive(pid);
}

/**
 * Who holds an agent's identity claim in NATS now (`pid N on host`), or undefined when nobody does: the
 * claim expired (its process stopped renewing it) or was released.
 */
export async function identityClaimHolder(
  fabric: Fabric,
  projectId: string,
  agentId: string,
): Promise<string | undefined> {
  const kv = await leaseBucket(fabric, buckets.agentIdentities(), IDENTITY_LEASE_TTL_MS);
  return Lease.holderOf(kv, keys.agentIdentity(projectId, agentId));
}

/** Agent ids (per role) held by an instance of this very process: the lock file cannot tell them apart. */
const heldInProcess = new Set<string>();

/** An agent identity is held by another live process (code `lease_held`). */
export class IdentityInUseError extends LoominalError {
  override name = "IdentityInUseError";
  constructor(agentId: string, holder: string, hint: string) {
    super("lease_held", `agent identity ${agentId} is in use by ${holder}; ${hint}`, {
      details: { agentId, holder },
    });
  }
}

function createExclusive(path: string, content: string): boolean {
  try {
    writeFileSync(path, content, { flag: "wx" });
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw err;
  }
}

function olderThan(path: string, ms: number): boolean {
  try {
    return Date.now() - statSync(path).mtimeMs > ms;
  } catch {
    return false;
  }
}

export interface AgentInstanceOptions {
  config: LoominalConfig;
  /**
   * Which server holds the identity (`warp`, `pattern`, `shuttle`, …). Each role locks an id on its own, so
   * the Warp, Pattern and Shuttle servers one MCP host starts in a directory are the same agent, and the
   * servers of a second session there are all instance 2.
   */
  role: string;
  /** Where per-host lock files live (default `LOOMINAL_LOCK_DIR`, else `<tmpdir>/loominal-agents`). */
  lockDir?: string;
  logger: Logger;
  /** The process whose children form one session (default this process's parent). */
  sessionPid?: number;
}

/**
 * One process's agent identity on this host: projectId, agentId, userId, agent name and instance.
 *
 * The agentId comes from the configuration (hostname + project path + agent name). Two sessions started in
 * the same directory on one host would derive the same id, so the first to start holds it through a lock
 * file, and a second gets the next instance (`<name>-2`, `<name>-3`, …) and a distinct id. A lock whose
 * process is gone is taken over, so a restarted agent gets its old identity (and inbox, and private
 * memories) back. Locks are per role, and a server prefers the instance its sibling servers of the same
 * session (same parent process) hold, so the three servers of one session agree on who they are.
 * `claim` also claims the id in NATS (KV `loom-agent-ids`, renewed, bucket TTL 30 s) for the role that
 * owns the inbox (Warp).
 */
export class AgentInstance {
  readonly projectId: string;
  readonly userId: string;
  readonly hostname: string;
  readonly agentId: string;
  /** The agent name this instance runs as (`default`, `default-2`, …). */
  readonly agentName: string;
  /** 1 for the first session of an agent name in a directory, 2 for the second, … */
  readonly instance: number;
  readonly role: string;
  #lockPath: string | undefined;
  #lease: Lease | undefined;
  #logger: Logger;
  #closed = false;

  private constructor(
    config: LoominalConfig,
    role: string,
    agentId: string,
    agentName: string,
    instance: number,
    lockPath: string | undefined,
    logger: Logger,
  ) {
    this.projectId = config.projectId;
    this.userId = config.userId;
    this.hostname = config.hostname;
    this.role = role;
    this.agentId = agentId;
    this.agentName = agentName;
    this.instance = instance;
    this.#lockPath = lockPath;
    this.#logger = logger;
  }

  /**
   * Picks this process's identity on this host (no NATS needed). Throws IdentityInUseError when the
   * agentId was set explicitly (`LOOMINAL_AGENT_ID`) and a live process already uses it, or when every
   * instance slot is taken.
   */
  static acquire(options: AgentInstanceOptions): AgentInstance {
    const { config, logger, role } = options;
    const explicitId =
      config.agentId !==
      deriveAgentId({
        hostname: config.hostname,
        projectPath: config.projectDir,
        agentName: config.agentName,
      });
    const lockDir = options.lockDir ?? defaultLockDir();
    let lockingWorks = true;
    try {
      mkdirSync(lockDir, { recursive: true });
    } catch (err) {
      lockingWorks = false;
      logger.warn(
        { lockDir, err: String(err) },
        "cannot create the identity lock directory; relying on the NATS claim alone",
      );
    }
    const slots: Array<{ instance: number; agentName: string; agentId: string }> = [];
    for (let instance = 1; instance <= (explicitId ? 1 : MAX_INSTANCES); instance++) {
      const agentName = instance === 1 ? config.agentName : `${config.agentName}-${instance}`;
      if (nameTokenProblem(agentName, "agent name")) break;
      const agentId =
        instance === 1
          ? config.agentId
          : deriveAgentId({ hostname: config.hostname, projectPath: config.projectDir, agentName });
      slots.push({ instance, agentName, agentId });
    }
    const sessionPid = options.sessionPid ?? process.ppid;
    const order = lockingWorks ? sessionFirst(slots, lockDir, role, sessionPid) : slots;
    let lastHolder = "";
    for (const slot of order) {
      const { agentId, agentName, instance } = slot;
      const inProcessKey = `${role}:${agentId}`;
      if (heldInProcess.has(inProcessKey)) {
        lastHolder = `another ${role} instance in this process (pid ${process.pid})`;
        continue;
      }
      if (!lockingWorks) {
        heldInProcess.add(inProcessKey);
        return new AgentInstance(config, role, agentId, agentName, instance, undefined, logger);
      }
      const lockPath = join(lockDir, lockFileName(agentId, role));
      const verdict = takeLock(lockPath, config.hostname);
      if (verdict === true) {
        heldInProcess.add(inProcessKey);
        if (instance > 1)
          logger.info(
            { agentId, agentName, role },
            "another live session uses the base identity; running as a new instance",
          );
        return new AgentInstance(config, role, agentId, agentName, instance, lockPath, logger);
      }
      lastHolder = verdict;
    }
    throw new IdentityInUseError(
      config.agentId,
      lastHolder,
      explicitId
        ? "stop that process, or give this one another LOOMINAL_AGENT_ID"
        : `all ${MAX_INSTANCES} instance slots are taken; stop some of them or set LOOMINAL_AGENT_NAME`,
    );
  }

  /**
   * The identity the Warp server of this process's session holds in `config`'s directory, found without
   * taking any lock: the instance slot whose Warp lock file belongs to a live process whose parent is one of
   * `ancestors` (say, the Claude Code process that started both that server and a hook). Without such a
   * slot, the base identity (instance 1). What a short-lived helper of a session (`loominal hook`) uses to
   * act as the agent whose servers run beside it.
   */
  static locate(
    config: LoominalConfig,
    options: { ancestors: number[]; lockDir?: string },
  ): { agentId: string; agentName: string; instance: number } {
    const base = { agentId: config.agentId, agentName: config.agentName, instance: 1 };
    const explicitId =
      config.agentId !==
      deriveAgentId({
        hostname: config.hostname,
        projectPath: config.projectDir,
        agentName: config.agentName,
      });
    if (explicitId) return base;
    const lockDir = options.lockDir ?? defaultLockDir();
    const ancestors = new Set(options.ancestors);
    for (let instance = 1; instance <= MAX_INSTANCES; instance++) {
      const agentName = instance === 1 ? config.agentName : `${config.agentName}-${instance}`;
      if (nameTokenProblem(agentName, "agent name")) break;
      const agentId =
        instance === 1
          ? config.agentId
          : deriveAgentId({ hostname: config.hostname, projectPath: config.projectDir, agentName });
      const lock = readLock(join(lockDir, lockFileName(agentId, "warp")));
      if (
        typeof lock === "object" &&
        lock.ppid !== undefined &&
        ancestors.has(lock.ppid) &&
        processAlive(lock.pid)
      )
        return { agentId, agentName, instance };
    }
    return base;
  }

  /** The configuration with this instance's agent id and name (what a library opened with it should use). */
  applyTo(config: LoominalConfig): LoominalConfig {
    return { ...config, agentId: this.agentId, agentName: this.agentName };
  }

  /** The lock file this instance holds on this host (undefined when the lock directory was unusable). */
  get lockPath(): string | undefined {
    return this.#closed ? undefined : this.#lockPath;
  }

  /** Whether the NATS claim is currently held. */
  get claimed(): boolean {
    return this.#lease?.held === true;
  }

  /** How this process's identity claim names it in NATS (`pid N on host`). */
  get claimHolder(): string {
    return identityHolder(this.hostname);
  }

  /**
   * Claims the agentId in NATS (idempotent while held). A claim left by a dead process on this host is
   * taken over at once; one held by a live process (or another host, until its TTL passes) is refused.
   */
  async claim(fabric: Fabric): Promise<void> {
    if (this.#closed)
      throw new IdentityInUseError(this.agentId, "nobody: this identity was released", "open a new one");
    if (this.#lease?.held) return;
    const kv = await leaseBucket(fabric, buckets.agentIdentities(), IDENTITY_LEASE_TTL_MS);
    const key = keys.agentIdentity(this.projectId, this.agentId);
    const holder = this.claimHolder;
    for (let attempt = 0; attempt < 3; attempt++) {
      const lease = await Lease.tryAcquire(kv, key, {
        holder,
        renewIntervalMs: IDENTITY_RENEW_MS,
        logger: this.#logger,
      });
      if (lease) {
        this.#lease = lease;
        lease.onLost((reason) =>
          this.#logger.warn(
            { agentId: this.agentId, reason },
            "identity claim lost; reclaiming on the next call",
          ),
        );
        return;
      }
      const current = await Lease.holderOf(kv, key);
      const m = current ? /^pid (\d+) on (.+)$/.exec(current) : null;
      const pid = m ? Number(m[1]) : Number.NaN;
      const sameHost = m?.[2] === this.hostname;
      const stale = current === undefined || (sameHost && (pid === process.pid || !processAlive(pid)));
      if (!stale) {
        throw new IdentityInUseError(
          this.agentId,
          current ?? "another process",
          "two live processes must not share an inbox; stop the other one or set LOOMINAL_AGENT_NAME",
        );
      }
      // Left by a process that is gone (or by an earlier instance of this one): remove exactly that claim.
      const entry = await kv.get(key);
      if (entry && entry.operation === "PUT") {
        try {
          await kv.delete(key, { previousSeq: entry.revision });
        } catch (err) {
          if (!isCasConflict(err)) throw err;
        }
      }
    }
    throw new IdentityInUseError(this.agentId, "another process", "its claim keeps changing; try again");
  }

  /** Gives the identity up: the NATS claim and the lock file. */
  async release(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    heldInProcess.delete(`${this.role}:${this.agentId}`);
    try {
      await this.#lease?.release();
    } catch (err) {
      this.#logger.warn({ err: String(err) }, "could not release the identity claim; it expires by itself");
    }
    if (this.#lockPath) {
      const lock = readLock(this.#lockPath);
      if (typeof lock === "object" && lock.pid === process.pid) {
        try {
          unlinkSync(this.#lockPath);
        } catch {
          // Already gone.
        }
      }
    }
  }
}

/**
 * The slots in the order to try them: first one whose id another role holds for a live process of this
 * session (same parent), so the servers of one session agree; then slots no live process of another
 * session holds in any role; then the rest, each group in instance order.
 */
function sessionFirst<T extends { agentId: string }>(
  slots: T[],
  lockDir: string,
  role: string,
  sessionPid: number,
): T[] {
  let names: string[];
  try {
    names = readdirSync(lockDir);
  } catch {
    return slots;
  }
  const own = new Set(slots.map((s) => lockFileName(s.agentId, role)));
  const holders = (slot: T): LockRecord[] =>
    names
      .filter((n) => n.startsWith(`${slot.agentId}.`) && n.endsWith(".lock") && !own.has(n))
      .map((n) => readLock(join(lockDir, n)))
      .filter((l): l is LockRecord => typeof l === "object" && processAlive(l.pid));
  const ours: T[] = [];
  const free: T[] = [];
  const foreign: T[] = [];
  for (const slot of slots) {
    const held = holders(slot);
    if (sessionPid > 1 && held.some((l) => l.ppid === sessionPid)) ours.push(slot);
    else if (held.length === 0) free.push(slot);
    else foreign.push(slot);
  }
  return [...ours, ...free, ...foreign];
}

/** Takes the lock file, or says who holds it. */
function takeLock(path: string, hostname: string): true | string {
  const mine = JSON.stringify({
    pid: process.pid,
    ppid: process.ppid,
    hostname,
    startedAt: new Date().toISOString(),
  });
  for (let attempt = 0; attempt < 3; attempt++) {
    if (createExclusive(path, mine)) return true;
    const lock = readLock(path);
    if (lock === "missing") continue;
    if (lock === "torn" && !olderThan(path, TORN_LOCK_MS)) return "a process starting right now";
    if (typeof lock === "object" && lock.pid !== process.pid && processAlive(lock.pid))
      return `pid ${lock.pid} on this host`;
    // The holder is gone. Take over under a short-lived guard so two restarts cannot both win.
    const guard = `${path}.takeover`;
    if (!createExclusive(guard, String(process.pid))) {
      const guardPid = Number(readFileSync(guard, "utf8"));
      if (
        guardPid > 0 &&
        guardPid !== process.pid &&
        processAlive(guardPid) &&
        !olderThan(guard, TORN_LOCK_MS)
      )
        return `pid ${guardPid} on this host`;
      unlinkSync(guard);
      continue;
    }
    try {
      const again = readLock(path);
      const same =
        again === "missing" ||
        (again === "torn" && lock === "torn") ||
        (typeof again === "object" && typeof lock === "object" && again.pid === lock.pid);
      if (!same) continue;
      writeFileSync(path, mine);
      return true;
    } finally {
      try {
        unlinkSync(guard);
      } catch {
        // Removed already.
      }
    }
  }
  return "a process that keeps changing the lock";
}
