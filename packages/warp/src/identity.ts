import { mkdirSync, readFileSync, statSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  type Fabric,
  isCasConflict,
  Lease,
  type Logger,
  type LoominalConfig,
  leaseBucket,
  processAlive,
} from "@loominal/fabric";
import { assertNameToken, buckets, deriveAgentId, keys, nameTokenProblem } from "@loominal/protocol";
import { IdentityInUseError } from "./errors.js";

/** TTL of an identity claim in NATS: a claim not renewed for this long may be taken by another process. */
export const IDENTITY_LEASE_TTL_MS = 30_000;
const IDENTITY_RENEW_MS = 10_000;
/** How many instances of one agent name may run side by side in one directory (`name`, `name-2`, …). */
export const MAX_INSTANCES = 16;
/** A lock file nobody finished writing for this long is left over from a crash. */
const TORN_LOCK_MS = 10_000;

/** Agent ids held by a Warp of this very process: the lock file alone cannot tell two of them apart. */
const heldInProcess = new Set<string>();

interface LockRecord {
  pid: number;
  hostname: string;
  startedAt: string;
}

/** Whether a process with this pid exists on this host (the fabric's check, re-exported). */
export { processAlive };

function readLock(path: string): LockRecord | "missing" | "torn" {
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
      return { pid: raw.pid, hostname: raw.hostname, startedAt: String(raw.startedAt) };
  } catch {
    // Written by a process that crashed mid-write, or being written right now.
  }
  return "torn";
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

export interface IdentityOptions {
  config: LoominalConfig;
  /** Where per-host lock files live (default `<tmpdir>/loominal-agents`). */
  lockDir?: string;
  logger: Logger;
}

/**
 * Who this Warp is: projectId, agentId, userId, handle.
 *
 * The agentId comes from the configuration (hostname + project path + agent name). Two processes started
 * in the same directory on one host would derive the same id, so the first one to start holds it through a
 * lock file on this host, and a second gets the next instance (`<name>-2`, `<name>-3`, …) and a distinct id.
 * A lock whose process is gone is taken over, so a restarted agent gets its old identity (and inbox) back.
 * Across hosts the id is also claimed in NATS (KV `loom-agent-ids`, renewed, bucket TTL 30 s); a claim
 * held by another live process turns every tool call into IdentityInUseError rather than a shared inbox.
 */
export class Identity {
  readonly projectId: string;
  readonly userId: string;
  readonly hostname: string;
  readonly agentId: string;
  /** The agent name this instance runs as (`default`, `default-2`, …). */
  readonly agentName: string;
  /** 1 for the first process of an agent name in a directory, 2 for the second, … */
  readonly instance: number;
  #handle: string;
  #handleChosen = false;
  #lockPath: string | undefined;
  #lease: Lease | undefined;
  #logger: Logger;
  #closed = false;

  private constructor(
    config: LoominalConfig,
    agentId: string,
    agentName: string,
    instance: number,
    lockPath: string | undefined,
    logger: Logger,
  ) {
    this.projectId = config.projectId;
    this.userId = config.userId;
    this.hostname = config.hostname;
    this.agentId = agentId;
    this.agentName = agentName;
    this.instance = instance;
    this.#lockPath = lockPath;
    this.#logger = logger;
    // "default", "default-2", … say nothing about the agent; a piece of its id at least tells them apart.
    this.#handle = /^default(-\d+)?$/.test(agentName) ? `agent-${agentId.slice(0, 8)}` : agentName;
  }

  /**
   * Picks this process's identity on this host (no NATS needed). Throws IdentityInUseError when the
   * agentId was set explicitly (`LOOMINAL_AGENT_ID`) and a live process already uses it, or when every
   * instance slot is taken.
   */
  static acquire(options: IdentityOptions): Identity {
    const { config, logger } = options;
    const explicitId =
      config.agentId !==
      deriveAgentId({
        hostname: config.hostname,
        projectPath: config.projectDir,
        agentName: config.agentName,
      });
    const lockDir = options.lockDir ?? join(tmpdir(), "loominal-agents");
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
    const slots = explicitId ? 1 : MAX_INSTANCES;
    let lastHolder = "";
    for (let instance = 1; instance <= slots; instance++) {
      const agentName = instance === 1 ? config.agentName : `${config.agentName}-${instance}`;
      if (nameTokenProblem(agentName, "agent name")) break;
      const agentId =
        instance === 1
          ? config.agentId
          : deriveAgentId({ hostname: config.hostname, projectPath: config.projectDir, agentName });
      if (heldInProcess.has(agentId)) {
        lastHolder = `another Warp in this process (pid ${process.pid})`;
        continue;
      }
      if (!lockingWorks) {
        heldInProcess.add(agentId);
        return new Identity(config, agentId, agentName, instance, undefined, logger);
      }
      const lockPath = join(lockDir, `${agentId}.lock`);
      const verdict = takeLock(lockPath, config.hostname);
      if (verdict === true) {
        heldInProcess.add(agentId);
        if (instance > 1)
          logger.info(
            { agentId, agentName },
            "another live process uses the base identity; running as a new instance",
          );
        return new Identity(config, agentId, agentName, instance, lockPath, logger);
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

  get handle(): string {
    return this.#handle;
  }

  /** Sets the readable name other agents see on this agent's messages. */
  setHandle(handle: string): void {
    this.#handle = assertNameToken(handle, "handle");
    this.#handleChosen = true;
  }

  /** Takes a handle remembered from an earlier run, unless one was chosen in this run already. */
  adoptHandle(handle: string): void {
    if (!this.#handleChosen) this.#handle = assertNameToken(handle, "handle");
  }

  /** Whether the NATS claim is currently held. */
  get claimed(): boolean {
    return this.#lease?.held === true;
  }

  /**
   * Claims the agentId in NATS (idempotent while held). A claim left by a dead process on this host is
   * taken over at once; one held by a live process (or another host, until its TTL passes) is refused.
   */
  async claim(fabric: Fabric): Promise<void> {
    if (this.#closed)
      throw new IdentityInUseError(this.agentId, "nobody: this Warp is closed", "open a new one");
    if (this.#lease?.held) return;
    const kv = await leaseBucket(fabric, buckets.agentIdentities(), IDENTITY_LEASE_TTL_MS);
    const key = keys.agentIdentity(this.projectId, this.agentId);
    const holder = `pid ${process.pid} on ${this.hostname}`;
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
      // Left by a process that is gone (or by an earlier Warp of this one): remove exactly that claim.
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
    heldInProcess.delete(this.agentId);
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

/** Takes the lock file, or says who holds it. */
function takeLock(path: string, hostname: string): true | string {
  const mine = JSON.stringify({ pid: process.pid, hostname, startedAt: new Date().toISOString() });
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
