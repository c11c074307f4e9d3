import {
  type BucketSpec,
  casUpdate,
  ensureBucket,
  entryValue,
  type Fabric,
  forgetRevision,
  identityClaimHolder,
  identityHolderGone,
  isUnavailableError,
  jsonCodec,
  type KV,
  type Logger,
} from "@loominal/fabric";
import {
  agentIdSchema,
  buckets,
  type FileLease,
  type FileLeaseTable,
  fileLeaseTableSchema,
  keys,
  LEASE_PATHS_MAX,
  LEASE_REASON_MAX_CHARS,
  LEASE_TTL_DEFAULT_MS,
  LEASE_TTL_MAX_MS,
  LEASE_TTL_MIN_MS,
  LEASES_PER_PROJECT_MAX,
  type LeaseMode,
  LoominalError,
  randomId,
} from "@loominal/protocol";
import { leasePathMatches, leasePathsOverlap, normaliseLeasePath } from "./globs.js";

const codec = jsonCodec(fileLeaseTableSchema);
const EMPTY: FileLeaseTable = { leases: [] };
/** Tries of one acquire when NATS does not answer (each one checks whether the last one landed). */
const ACQUIRE_ATTEMPTS = 3;

/** The project's file-lease bucket: one key, no TTL (leases carry their own expiry), one value kept. */
export function fileLeaseBucketSpec(projectId: string): BucketSpec {
  return { name: buckets.fileLeases(projectId), history: 1 };
}

/** One way a requested path meets a lease someone else holds. */
export interface LeaseConflict {
  leaseId: string;
  agentId: string;
  handle: string;
  mode: LeaseMode;
  /** The held lease's path or glob that overlaps. */
  heldPath: string;
  /** The requested path (or touched file) it overlaps. */
  path: string;
  reason: string;
  expiresAt: string;
}

export type AcquireResult =
  | { acquired: true; lease: FileLease }
  | { acquired: false; conflicts: LeaseConflict[] };

export interface AcquireInput {
  paths: string[];
  mode: LeaseMode;
  /** Default LEASE_TTL_DEFAULT_MS. */
  ttlMs?: number;
  reason: string;
}

/** Who is acting: the agent and the process holding its identity claim (`pid N on host`). */
export interface LeaseHolder {
  projectId: string;
  agentId: string;
  handle: string;
  /** The identity claim's holder string of this process. */
  holder: string;
  hostname: string;
}

/**
 * Decides whether a lease's holder is still alive: its lease has not passed `expiresAt`, and the identity
 * claim of its agent is still held by the very process that took it (an expired claim means the process
 * stopped renewing it: it died or lost NATS for longer than the claim's TTL; another process holding the
 * claim means the agent was restarted). A holder process on this host that no longer exists is dead at once.
 * Answers are cached for the life of one checker (one operation).
 */
export class HolderCheck {
  #fabric: Fabric;
  #projectId: string;
  #hostname: string;
  #now: number;
  #claims = new Map<string, Promise<string | undefined>>();

  constructor(fabric: Fabric, projectId: string, hostname: string, now = Date.now()) {
    this.#fabric = fabric;
    this.#projectId = projectId;
    this.#hostname = hostname;
    this.#now = now;
  }

  get now(): number {
    return this.#now;
  }

  async live(lease: FileLease): Promise<boolean> {
    if (Date.parse(lease.expiresAt) <= this.#now) return false;
    if (identityHolderGone(lease.holder, this.#hostname)) return false;
    let claim = this.#claims.get(lease.agentId);
    if (!claim) {
      claim = identityClaimHolder(this.#fabric, this.#projectId, lease.agentId);
      this.#claims.set(lease.agentId, claim);
    }
    return (await claim) === lease.holder;
  }

  /** The live leases of a table, in its order. */
  async liveOf(leases: FileLease[]): Promise<FileLease[]> {
    const flags = await Promise.all(leases.map((l) => this.live(l)));
    return leases.filter((_, i) => flags[i]);
  }
}

/** The project's lease table as stored (every lease, live or not). */
export async function readLeaseTable(
  fabric: Fabric,
  projectId: string,
): Promise<{ table: FileLeaseTable; revision: number }> {
  const kv = await ensureBucket(fabric, fileLeaseBucketSpec(projectId));
  const { value, revision } = entryValue(
    await kv.get(keys.fileLeaseTable()),
    codec,
    `${buckets.fileLeases(projectId)}/${keys.fileLeaseTable()}`,
  );
  return { table: value ?? EMPTY, revision };
}

/** Every live lease of a project (read only: what `loominal guard` and `loominal hook` check files against). */
export async function liveFileLeases(
  fabric: Fabric,
  projectId: string,
  hostname: string,
): Promise<FileLease[]> {
  const { table } = await readLeaseTable(fabric, projectId);
  return new HolderCheck(fabric, projectId, hostname).liveOf(table.leases);
}

/**
 * Which of `files` (paths relative to the project directory) fall under a lease another agent holds
 * (`exclusive` only, unless `modes` says otherwise). One entry per file and lease.
 */
export function leaseConflictsFor(
  leases: FileLease[],
  files: string[],
  agentId: string,
  modes: LeaseMode[] = ["exclusive"],
): LeaseConflict[] {
  const out: LeaseConflict[] = [];
  for (const lease of leases) {
    if (lease.agentId === agentId || !modes.includes(lease.mode)) continue;
    for (const file of files) {
      const heldPath = lease.paths.find((p) => leasePathMatches(p, file));
      if (heldPath !== undefined) out.push(conflictOf(lease, heldPath, file));
    }
  }
  return out;
}

function conflictOf(lease: FileLease, heldPath: string, path: string): LeaseConflict {
  return {
    leaseId: lease.leaseId,
    agentId: lease.agentId,
    handle: lease.handle,
    mode: lease.mode,
    heldPath,
    path,
    reason: lease.reason,
    expiresAt: lease.expiresAt,
  };
}

/** Overlaps between requested paths and a held lease that the modes make a conflict. */
function overlapsWith(lease: FileLease, paths: string[], mode: LeaseMode): LeaseConflict[] {
  if (lease.mode === "shared" && mode === "shared") return [];
  const out: LeaseConflict[] = [];
  for (const path of paths) {
    const heldPath = lease.paths.find((p) => leasePathsOverlap(p, path));
    if (heldPath !== undefined) out.push(conflictOf(lease, heldPath, path));
  }
  return out;
}

export interface FileLeasesOptions {
  fabric: Fabric;
  /** Who acts; read at each call (a handle may change). */
  holder: () => LeaseHolder;
  /** The directory lease paths are relative to; absolute paths inside it are accepted. */
  projectDir: string;
  logger: Logger;
}

/**
 * Advisory file and path leases of one project, for one agent.
 *
 * Every lease of the project lives in one KV value (`loom-file-leases-<p>`, key `table`) changed only by
 * compare-and-set, so deciding "does this overlap anything held" and "take it" is one atomic step: of two
 * agents racing for overlapping exclusive paths exactly one wins, whatever processes or machines they run
 * on. An exclusive lease conflicts with any overlapping lease of another agent; shared leases conflict only
 * with exclusive ones. Leases end when released, at `expiresAt` (renew to extend), or when the holder's
 * identity claim expires or passes to another process (see HolderCheck): nats-server 2.9 has no per-key
 * TTL, so expiry is computed from the stored times, and dead entries are dropped by the next write.
 */
export class FileLeases {
  #fabric: Fabric;
  #holder: () => LeaseHolder;
  #projectDir: string;
  #logger: Logger;
  /** Leases this process took and has not released: id → expiresAt (ms). */
  #held = new Map<string, number>();
  #heldListeners = new Set<() => void>();

  constructor(options: FileLeasesOptions) {
    this.#fabric = options.fabric;
    this.#holder = options.holder;
    this.#projectDir = options.projectDir;
    this.#logger = options.logger;
  }

  /**
   * How many leases this process holds now, as far as it knows (taken, not released, not past their
   * expiry). What makes the registry show the agent `busy`.
   */
  get heldCount(): number {
    const now = Date.now();
    let n = 0;
    for (const until of this.#held.values()) if (until > now) n++;
    return n;
  }

  /** Calls `listener` whenever this process takes, renews or gives up a lease. Returns an unsubscribe. */
  onHeldChange(listener: () => void): () => void {
    this.#heldListeners.add(listener);
    return () => this.#heldListeners.delete(listener);
  }

  #setHeld(update: (held: Map<string, number>) => void): void {
    update(this.#held);
    for (const l of this.#heldListeners) l();
  }

  /** Normalises paths as leases store them (relative, `/`-separated); throws invalid_input naming the bad one. */
  normalise(paths: string[]): string[] {
    if (paths.length === 0)
      throw new LoominalError("invalid_input", "give at least one path or glob to lease");
    if (paths.length > LEASE_PATHS_MAX)
      throw new LoominalError(
        "invalid_input",
        `a lease names at most ${LEASE_PATHS_MAX} paths; got ${paths.length}`,
      );
    return [...new Set(paths.map((p) => normaliseLeasePath(p, this.#projectDir)))];
  }

  /**
   * The bucket, with this process's remembered revision of the table dropped: a decision not to write
   * (a conflict, a lease not found) must rest on the table as it is now, not as this process last saw it.
   */
  async #kv(projectId: string): Promise<KV> {
    const kv = await ensureBucket(this.#fabric, fileLeaseBucketSpec(projectId));
    forgetRevision(kv, keys.fileLeaseTable());
    return kv;
  }

  /**
   * Takes a lease on `paths` unless one of them overlaps a live lease of another agent that the modes
   * make a conflict; then nothing is taken and the conflicts say who holds what, why, until when.
   * This agent's own leases never conflict with it.
   */
  async acquire(input: AcquireInput): Promise<AcquireResult> {
    const paths = this.normalise(input.paths);
    const ttlMs = checkTtl(input.ttlMs ?? LEASE_TTL_DEFAULT_MS);
    const reason = checkReason(input.reason);
    const me = this.#holder();
    const kv = await this.#kv(me.projectId);
    // One id for every attempt: after a write whose answer was lost, the table tells whether it landed.
    const leaseId = randomId();
    for (let attempt = 1; ; attempt++) {
      try {
        const outcome = await this.#tryAcquire(kv, me, { paths, mode: input.mode, ttlMs, reason, leaseId });
        if (outcome.acquired) {
          const { expiresAt } = outcome.lease;
          this.#setHeld((h) => h.set(leaseId, Date.parse(expiresAt)));
        }
        return outcome;
      } catch (err) {
        if (!isUnavailableError(err) || attempt >= ACQUIRE_ATTEMPTS) throw err;
        // The write may have landed though its answer did not arrive; the next try finds it by its id.
        forgetRevision(kv, keys.fileLeaseTable());
        this.#logger.warn(
          { err: String(err), attempt, leaseId },
          "lease acquire got no answer from NATS; trying again",
        );
      }
    }
  }

  async #tryAcquire(
    kv: KV,
    me: LeaseHolder,
    want: { paths: string[]; mode: LeaseMode; ttlMs: number; reason: string; leaseId: string },
  ): Promise<AcquireResult> {
    const check = new HolderCheck(this.#fabric, me.projectId, me.hostname);
    let outcome = { acquired: false, conflicts: [] } as AcquireResult;
    await casUpdate(kv, keys.fileLeaseTable(), codec, async (current) => {
      const now = Date.now();
      const landed = current?.leases.find((l) => l.leaseId === want.leaseId);
      if (landed) {
        // An earlier try of this acquire wrote it; its answer was lost.
        outcome = { acquired: true, lease: landed };
        return undefined;
      }
      const live = await check.liveOf(current?.leases ?? []);
      const conflicts = live
        .filter((l) => l.agentId !== me.agentId)
        .flatMap((l) => overlapsWith(l, want.paths, want.mode));
      if (conflicts.length > 0) {
        outcome = { acquired: false, conflicts };
        return undefined;
      }
      if (live.length >= LEASES_PER_PROJECT_MAX)
        throw new LoominalError(
          "conflict",
          `the project holds ${live.length} leases, the most it may; release some (warp_lease_release) first`,
        );
      const at = new Date(now).toISOString();
      const lease: FileLease = {
        leaseId: want.leaseId,
        agentId: me.agentId,
        handle: me.handle,
        holder: me.holder,
        mode: want.mode,
        paths: want.paths,
        reason: want.reason,
        acquiredAt: at,
        renewedAt: at,
        expiresAt: new Date(now + want.ttlMs).toISOString(),
        ttlMs: want.ttlMs,
      };
      outcome = { acquired: true, lease };
      return { leases: [...live, lease] };
    });
    return outcome;
  }

  /** Extends this agent's live lease to `ttlMs` (default: its own TTL) from now. */
  async renew(leaseId: string, ttlMs?: number): Promise<FileLease> {
    const ttl = ttlMs === undefined ? undefined : checkTtl(ttlMs);
    const me = this.#holder();
    const kv = await this.#kv(me.projectId);
    const check = new HolderCheck(this.#fabric, me.projectId, me.hostname);
    let renewed: FileLease | undefined;
    await casUpdate(kv, keys.fileLeaseTable(), codec, async (current) => {
      const now = Date.now();
      const live = await check.liveOf(current?.leases ?? []);
      const lease = live.find((l) => l.leaseId === leaseId);
      if (!lease) {
        const any = current?.leases.find((l) => l.leaseId === leaseId);
        throw new LoominalError(
          "not_found",
          any
            ? `lease ${leaseId} has expired (or its holder is gone); acquire the paths again with warp_lease_acquire`
            : `no lease ${leaseId}; see warp_lease_list for the leases held now`,
        );
      }
      if (lease.agentId !== me.agentId)
        throw new LoominalError(
          "forbidden",
          `lease ${leaseId} is held by ${lease.handle} (${lease.agentId}), not you`,
        );
      const next: FileLease = {
        ...lease,
        holder: me.holder,
        handle: me.handle,
        renewedAt: new Date(now).toISOString(),
        expiresAt: new Date(now + (ttl ?? lease.ttlMs)).toISOString(),
        ttlMs: ttl ?? lease.ttlMs,
      };
      renewed = next;
      return { leases: live.map((l) => (l.leaseId === leaseId ? next : l)) };
    });
    if (!renewed) throw new LoominalError("internal", `lease ${leaseId} was not renewed`);
    const until = Date.parse(renewed.expiresAt);
    this.#setHeld((h) => h.set(leaseId, until));
    return renewed;
  }

  /**
   * Releases this agent's leases: those named (each must be this agent's), or every one it holds.
   * Returns the ids released; releasing a lease that has already ended is not an error.
   */
  async release(leaseIds?: string[]): Promise<string[]> {
    const me = this.#holder();
    const kv = await this.#kv(me.projectId);
    const check = new HolderCheck(this.#fabric, me.projectId, me.hostname);
    let released: string[] = [];
    const wanted = leaseIds === undefined ? undefined : new Set(leaseIds);
    await casUpdate(kv, keys.fileLeaseTable(), codec, async (current) => {
      const all = current?.leases ?? [];
      const mine = (l: FileLease) => l.agentId === me.agentId;
      if (wanted) {
        const foreign = all.find((l) => wanted.has(l.leaseId) && !mine(l));
        if (foreign)
          throw new LoominalError(
            "forbidden",
            `lease ${foreign.leaseId} is held by ${foreign.handle} (${foreign.agentId}), not you; only its holder releases it`,
          );
      }
      const drop = (l: FileLease) => mine(l) && (wanted === undefined || wanted.has(l.leaseId));
      released = all.filter(drop).map((l) => l.leaseId);
      const rest = await check.liveOf(all.filter((l) => !drop(l)));
      if (released.length === 0 && rest.length === all.length) return undefined;
      return { leases: rest };
    });
    this.#setHeld((h) => {
      for (const id of leaseIds ?? [...h.keys()]) h.delete(id);
    });
    return released;
  }

  /**
   * Releases every lease this process holds for this agent (on deregistration and clean exit). Leases
   * the same agent took in an earlier process are left to expire with that process's identity.
   */
  async releaseOwn(): Promise<string[]> {
    const me = this.#holder();
    const kv = await this.#kv(me.projectId);
    let released: string[] = [];
    await casUpdate(kv, keys.fileLeaseTable(), codec, (current) => {
      const all = current?.leases ?? [];
      const drop = (l: FileLease) => l.agentId === me.agentId && l.holder === me.holder;
      released = all.filter(drop).map((l) => l.leaseId);
      if (released.length === 0) return undefined;
      return { leases: all.filter((l) => !drop(l)) };
    });
    this.#setHeld((h) => h.clear());
    if (released.length > 0) this.#logger.info({ released: released.length }, "released file leases");
    return released;
  }

  /**
   * The live leases of the project, soonest to expire first: all, or those of one agent, or those whose
   * paths overlap `path` (a path or glob).
   */
  async list(filter: { agentId?: string; path?: string } = {}): Promise<FileLease[]> {
    const agentId = filter.agentId === undefined ? undefined : agentIdSchema.parse(filter.agentId);
    const path = filter.path === undefined ? undefined : normaliseLeasePath(filter.path, this.#projectDir);
    const me = this.#holder();
    const live = await liveFileLeases(this.#fabric, me.projectId, me.hostname);
    return live
      .filter((l) => agentId === undefined || l.agentId === agentId)
      .filter((l) => path === undefined || l.paths.some((p) => leasePathsOverlap(p, path)))
      .sort((a, b) => a.expiresAt.localeCompare(b.expiresAt));
  }
}

function checkTtl(ttlMs: number): number {
  if (!Number.isInteger(ttlMs) || ttlMs < LEASE_TTL_MIN_MS || ttlMs > LEASE_TTL_MAX_MS)
    throw new LoominalError(
      "invalid_input",
      `ttlMs must be an integer from ${LEASE_TTL_MIN_MS} (10 s) to ${LEASE_TTL_MAX_MS} (8 h); got ${ttlMs}`,
    );
  return ttlMs;
}

function checkReason(reason: string): string {
  const r = reason.trim();
  if (r.length === 0)
    throw new LoominalError(
      "invalid_input",
      "say why you lease these paths (reason), for whoever meets the lease",
    );
  if (r.length > LEASE_REASON_MAX_CHARS)
    throw new LoominalError(
      "invalid_input",
      `reason is ${r.length} characters; the limit is ${LEASE_REASON_MAX_CHARS}`,
    );
  return r;
}
