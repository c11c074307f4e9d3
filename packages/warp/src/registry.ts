import {
  type BucketSpec,
  casUpdate,
  ensureBucket,
  type Fabric,
  forgetRevision,
  jsonCodec,
  type KV,
  type Logger,
  readAll,
  streamVanished,
} from "@loominal/fabric";
import {
  type AgentPresence,
  type AgentRecord,
  type AgentStatus,
  agentRecordSchema,
  assertAgentId,
  assertNameToken,
  assertProjectId,
  buckets,
  canRead,
  effectiveAgentStatus,
  keys,
  LoominalError,
  type PresenceFilter,
  presenceMatches,
  type Scope,
  scopeSchema,
} from "@loominal/protocol";
import { AgentNotFoundError, NotRegisteredError } from "./errors.js";
import type { Identity } from "./identity.js";

const DAY_MS = 86_400_000;
const codec = jsonCodec(agentRecordSchema);

/**
 * The registry bucket. Every process that opens `loom-registry` must use this spec (a different one is
 * reported as a configuration mismatch): entries not rewritten for 24 h leave the bucket.
 */
export const REGISTRY_BUCKET: BucketSpec = { name: buckets.registry(), history: 1, ttlMs: DAY_MS };

/**
 * One agent's registry entry, read once without a Registry (no identity, heartbeat or reaper): what a
 * short-lived process such as a Claude Code hook uses to learn the capabilities the agent registered.
 * Undefined when there is no entry, or none that is valid under that key.
 */
export async function registryEntry(
  fabric: Fabric,
  projectId: string,
  agentId: string,
): Promise<AgentRecord | undefined> {
  const kv = await ensureBucket(fabric, REGISTRY_BUCKET);
  const key = keys.registry(projectId, agentId);
  const e = await kv.get(key);
  if (e?.operation !== "PUT") return undefined;
  const r = codec.safeDecode(e.value, `${REGISTRY_BUCKET.name}/${key}`);
  return r.ok && r.value.projectId === projectId && r.value.agentId === agentId ? r.value : undefined;
}

export const DISCOVER_DEFAULT_LIMIT = 50;
export const DISCOVER_MAX_LIMIT = 100;
/** The largest number of registry entries one read pulls per request. */
const SCAN_BATCH = 1_000;
const PULL_TIMEOUT_MS = 1_000;

/** A registry entry as readers see it: `status` is what it is now (busy, idle, or offline once heartbeats stop). */
export interface AgentView extends Omit<AgentRecord, "status"> {
  status: AgentPresence;
  /** The status the agent itself last reported. */
  reportedStatus: AgentStatus;
}

export interface RegisterInput {
  agentType: string;
  capabilities?: string[];
  boundaries?: string[];
  scope?: Scope;
  maxConcurrentTasks?: number;
  /** The spin-up that started this process (`LOOMINAL_SPINUP_ID`); Weft counts a spin-up done when it sees it. */
  spinUpId?: string;
  /** The spin-up target that started this process (`LOOMINAL_TARGET_ID`). */
  targetId?: string;
}

export interface PresenceUpdate {
  status?: "online" | "busy";
  currentTaskCount?: number;
  capabilities?: string[];
}

export interface DiscoverFilter {
  agentType?: string;
  capability?: string;
  /** Agents that accept work in this boundary (those registered with no boundaries accept all). */
  boundary?: string;
  /** A presence (`idle`, `busy`, `offline`), or `online` for every live agent. */
  status?: PresenceFilter;
  /** Only agents registered with this scope. `public` and `personal` also search other projects. */
  scope?: Scope;
  includeOffline?: boolean;
  limit?: number;
  cursor?: string;
}

export interface DiscoverPage {
  agents: AgentView[];
  count: number;
  hasMore: boolean;
  /** Pass as `cursor` for the next page; null on the last page. */
  nextCursor: string | null;
}

export interface RegistryOptions {
  fabric: Fabric;
  identity: Identity;
  /** How often this agent rewrites its entry; readers show it offline after 3 missed intervals. */
  heartbeatIntervalMs: number;
  logger: Logger;
  /**
   * What this process holds right now (work claims, file leases). Written into the entry with every
   * heartbeat and whenever `holdingsChanged()` is called, so readers show the agent `busy` while it holds
   * anything, without the agent reporting it.
   */
  holdings?: () => Holdings;
}

/** Counts of what an agent's process holds; any of them above zero makes it `busy`. */
export interface Holdings {
  claims: number;
  leases: number;
}

const CURSOR_RE = /^[a-z0-9][a-z0-9-]{0,47}\.[0-9a-f]{32}$/;

/**
 * The agent registry: KV `loom-registry`, key `<projectId>.<agentId>`.
 *
 * A registered agent rewrites its entry every heartbeat interval. Readers compute `offline` from an
 * overdue heartbeat (3 intervals, using the interval the entry itself records), and a reaper running in
 * every live Warp also writes `offline` into entries whose heartbeats stopped, for readers of raw KV.
 * Discovery reads all entries of a project with one pull request and enforces each entry's scope.
 */
export class Registry {
  #fabric: Fabric;
  #identity: Identity;
  #logger: Logger;
  #intervalMs: number;
  #heartbeat: NodeJS.Timeout | undefined;
  #reaper: NodeJS.Timeout | undefined;
  /** What this agent last reported, so a heartbeat restores it after a reaper marked the entry offline. */
  #reported: { status: "online" | "busy" } | undefined;
  /** This agent's entry as this process last wrote or read it: what is written back if the bucket vanishes. */
  #last: AgentRecord | undefined;
  #closed = false;
  #agentType: string | undefined;
  #holdings: () => Holdings;
  #unwatchConnection: (() => void) | undefined;
  /** The holdings write in flight, and whether another is wanted after it. */
  #holdingsWrite: Promise<void> | undefined;
  #holdingsDirty = false;

  constructor(options: RegistryOptions) {
    this.#fabric = options.fabric;
    this.#identity = options.identity;
    this.#logger = options.logger;
    this.#intervalMs = options.heartbeatIntervalMs;
    this.#holdings = options.holdings ?? (() => ({ claims: 0, leases: 0 }));
  }

  get heartbeatIntervalMs(): number {
    return this.#intervalMs;
  }

  /** The agent type this process registered with, if it did (claims are checked against boundary policies with it). */
  get agentType(): string | undefined {
    return this.registered ? this.#agentType : undefined;
  }

  /** Whether this process registered (and has not deregistered) its agent. */
  get registered(): boolean {
    return this.#reported !== undefined;
  }

  #kv(): Promise<KV> {
    return ensureBucket(this.#fabric, REGISTRY_BUCKET);
  }

  /**
   * Runs `op`; if it failed because the registry bucket vanished (deleted, or a server that lost its
   * store), creates the bucket again, writes this agent's own entry back (when registered) and retries
   * once, so heartbeats and reads carry on instead of failing until a restart.
   */
  async #recovering<T>(op: () => Promise<T>): Promise<T> {
    try {
      return await op();
    } catch (err) {
      if (!(await streamVanished(this.#fabric, `KV_${REGISTRY_BUCKET.name}`, err))) throw err;
    }
    const last = this.#last;
    if (last && this.#reported) {
      const kv = await this.#kv();
      const now = new Date().toISOString();
      await casUpdate(kv, this.#key, codec, (cur) =>
        cur ? undefined : { ...last, status: this.#reported?.status ?? last.status, lastHeartbeat: now },
      );
    }
    return op();
  }

  get #key(): string {
    return keys.registry(this.#identity.projectId, this.#identity.agentId);
  }

  /** Registers (or re-registers) this agent and starts heartbeats. */
  async register(input: RegisterInput): Promise<AgentView> {
    const agentType = assertNameToken(input.agentType, "agent type");
    const capabilities = uniqueTokens(input.capabilities ?? [], "capability");
    const boundaries = uniqueTokens(input.boundaries ?? [], "boundary");
    const maxConcurrentTasks = input.maxConcurrentTasks ?? 1;
    if (!Number.isInteger(maxConcurrentTasks) || maxConcurrentTasks < 1)
      throw new LoominalError("invalid_input", "maxConcurrentTasks must be a positive integer");
    const scope = input.scope ?? "team";
    if (!scopeSchema.safeParse(scope).success)
      throw new LoominalError(
        "invalid_input",
        `scope must be one of private, personal, team, public; got ${String(scope)}`,
      );
    for (const [field, value] of [
      ["spinUpId", input.spinUpId],
      ["targetId", input.targetId],
    ] as const)
      if (value !== undefined && !/^[0-9a-f]{32}$/.test(value))
        throw new LoominalError("invalid_input", `${field} must be 32 lower-case hex characters`);
    const id = this.#identity;
    const now = new Date().toISOString();
    const write = async () =>
      casUpdate(await this.#kv(), this.#key, codec, (current) => ({
        agentId: id.agentId,
        projectId: id.projectId,
        userId: id.userId,
        handle: id.handle,
        agentType,
        capabilities,
        boundaries,
        scope,
        status: "online" as const,
        // Tasks are counted by the process that holds them: a new process (a restart) starts at none.
        currentTaskCount:
          current?.agentId === id.agentId && current.pid === process.pid && current.hostname === id.hostname
            ? current.currentTaskCount
            : 0,
        maxConcurrentTasks,
        hostname: id.hostname,
        pid: process.pid,
        registeredAt: now,
        lastHeartbeat: now,
        heartbeatIntervalMs: this.#intervalMs,
        ...(input.spinUpId !== undefined ? { spinUpId: input.spinUpId } : {}),
        ...(input.targetId !== undefined ? { targetId: input.targetId } : {}),
        ...this.#holdingFields(),
      }));
    const r = await this.#recovering(write);
    this.#last = r.value;
    this.#agentType = agentType;
    this.#reported = { status: "online" };
    this.#startHeartbeat();
    return this.#view(r.value);
  }

  /** Changes what this agent reports about itself. */
  async updatePresence(update: PresenceUpdate): Promise<AgentView> {
    if (!this.registered) throw new NotRegisteredError(this.#identity.agentId, "update its presence");
    if (
      update.currentTaskCount !== undefined &&
      (!Number.isInteger(update.currentTaskCount) || update.currentTaskCount < 0)
    )
      throw new LoominalError("invalid_input", "currentTaskCount must be a non-negative integer");
    const capabilities = update.capabilities ? uniqueTokens(update.capabilities, "capability") : undefined;
    const r = await this.#rewrite((cur) => ({
      ...cur,
      ...(update.status ? { status: update.status } : {}),
      ...(update.currentTaskCount !== undefined
        ? { currentTaskCount: update.currentTaskCount, lastWorkAt: new Date().toISOString() }
        : {}),
      ...(capabilities ? { capabilities } : {}),
    }));
    if (update.status) this.#reported = { status: update.status };
    return this.#view(r);
  }

  /** Writes this agent's current handle into its entry, if it is registered. */
  async updateHandle(): Promise<void> {
    if (!this.registered) return;
    await this.#rewrite((cur) => ({ ...cur, handle: this.#identity.handle }));
  }

  /** Removes this agent's entry and stops heartbeats. */
  async deregister(): Promise<{ agentId: string }> {
    if (!this.registered) throw new NotRegisteredError(this.#identity.agentId, "deregister");
    this.#stopHeartbeat();
    this.#reported = undefined;
    this.#last = undefined;
    await this.#recovering(async () => {
      const kv = await this.#kv();
      await kv.delete(this.#key);
      forgetRevision(kv, this.#key);
    });
    return { agentId: this.#identity.agentId };
  }

  /** This agent's own entry, if any (for example left by an earlier run of the same identity). */
  async own(): Promise<AgentRecord | undefined> {
    return this.#recovering(() => this.#own());
  }

  async #own(): Promise<AgentRecord | undefined> {
    const kv = await this.#kv();
    const e = await kv.get(this.#key);
    if (e?.operation !== "PUT") return undefined;
    const r = codec.safeDecode(e.value, `${REGISTRY_BUCKET.name}/${this.#key}`);
    return r.ok ? r.value : undefined;
  }

  /**
   * One agent the reader may see. Without `projectId`: the agent of this project with that id, or else
   * one registered in another project whose entry's scope lets this reader see it (`public`, or
   * `personal` of the same user), as `discover({ scope })` finds them. With `projectId`: only there.
   * Throws AgentNotFoundError when there is none, and `conflict` when several other projects have a
   * visible agent with that id (pass `projectId` then).
   */
  async getInfo(agentId: string, options: { projectId?: string } = {}): Promise<AgentView> {
    assertAgentId(agentId);
    const own = this.#identity.projectId;
    const projectId = options.projectId === undefined ? own : assertProjectId(options.projectId);
    const record = await this.#entry(projectId, agentId);
    if (record && this.#visible(record)) return this.#view(record);
    if (options.projectId !== undefined) throw new AgentNotFoundError(agentId, projectId);

    const elsewhere = (await this.#scan(`*.${agentId}`))
      .map((e) => e.record)
      .filter((r) => r.projectId !== own && r.agentId === agentId && this.#visible(r));
    const [only, ...more] = elsewhere;
    if (!only) throw new AgentNotFoundError(agentId, own, { otherProjects: true });
    if (more.length > 0) {
      const projects = elsewhere.map((r) => r.projectId).sort();
      throw new LoominalError(
        "conflict",
        `agent ${agentId} is registered in several projects you may see (${projects.join(", ")}); pass projectId to choose one`,
        { details: { agentId, projects } },
      );
    }
    return this.#view(only);
  }

  /** The registry entry under `<projectId>.<agentId>`, if there is a valid one. */
  #entry(projectId: string, agentId: string): Promise<AgentRecord | undefined> {
    return this.#recovering(() => this.#entryOnce(projectId, agentId));
  }

  async #entryOnce(projectId: string, agentId: string): Promise<AgentRecord | undefined> {
    const kv = await this.#kv();
    const key = keys.registry(projectId, agentId);
    const e = await kv.get(key);
    if (e?.operation !== "PUT") return undefined;
    const r = codec.safeDecode(e.value, `${REGISTRY_BUCKET.name}/${key}`);
    if (!r.ok) {
      this.#logger.warn({ err: r.error.message }, "invalid registry entry");
      return undefined;
    }
    // A record filed under another key is not what the key promises.
    return r.value.projectId === projectId && r.value.agentId === agentId ? r.value : undefined;
  }

  /** Finds agents by type, capability, boundary, status and scope, a page at a time. */
  async discover(filter: DiscoverFilter = {}): Promise<DiscoverPage> {
    const limit = filter.limit ?? DISCOVER_DEFAULT_LIMIT;
    if (!Number.isInteger(limit) || limit < 1 || limit > DISCOVER_MAX_LIMIT)
      throw new LoominalError("invalid_input", `limit must be an integer from 1 to ${DISCOVER_MAX_LIMIT}`);
    if (filter.cursor !== undefined && !CURSOR_RE.test(filter.cursor))
      throw new LoominalError(
        "invalid_input",
        "cursor is not one this tool returned; pass nextCursor unchanged",
      );
    if (filter.agentType !== undefined) assertNameToken(filter.agentType, "agent type");
    if (filter.capability !== undefined) assertNameToken(filter.capability, "capability");
    if (filter.boundary !== undefined) assertNameToken(filter.boundary, "boundary");
    const crossProject = filter.scope === "public" || filter.scope === "personal";
    const entries = await this.#scan(crossProject ? ">" : keys.registryPrefix(this.#identity.projectId));
    const now = Date.now();
    const includeOffline = filter.includeOffline === true || filter.status === "offline";
    const matches = entries
      .filter(({ record }) => {
        if (!this.#visible(record)) return false;
        if (filter.scope && record.scope !== filter.scope) return false;
        if (filter.agentType && record.agentType !== filter.agentType) return false;
        if (filter.capability && !record.capabilities.includes(filter.capability)) return false;
        if (filter.boundary && record.boundaries.length > 0 && !record.boundaries.includes(filter.boundary))
          return false;
        const status = effectiveAgentStatus(record, now);
        if (!includeOffline && status === "offline") return false;
        if (filter.status && !presenceMatches(status, filter.status)) return false;
        return true;
      })
      .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    const after = filter.cursor;
    const rest = after === undefined ? matches : matches.filter((m) => m.key > after);
    const page = rest.slice(0, limit);
    const hasMore = rest.length > page.length;
    const last = page[page.length - 1];
    return {
      agents: page.map((m) => this.#view(m.record, now)),
      count: page.length,
      hasMore,
      nextCursor: hasMore && last ? last.key : null,
    };
  }

  /** Marks every entry of this project whose heartbeats stopped as offline. Returns how many it marked. */
  reapOnce(): Promise<number> {
    return this.#recovering(() => this.#reapOnce());
  }

  async #reapOnce(): Promise<number> {
    const kv = await this.#kv();
    const entries = await this.#scan(keys.registryPrefix(this.#identity.projectId));
    const now = Date.now();
    let marked = 0;
    for (const { key, record } of entries) {
      if (record.status === "offline" || effectiveAgentStatus(record, now) !== "offline") continue;
      const r = await casUpdate(kv, key, codec, (cur) =>
        cur && cur.status !== "offline" && effectiveAgentStatus(cur, Date.now()) === "offline"
          ? { ...cur, status: "offline" as const }
          : undefined,
      );
      if (r.changed) marked++;
    }
    return marked;
  }

  /** Runs the reaper every heartbeat interval while connected. */
  startReaper(): void {
    if (this.#reaper || this.#closed) return;
    this.#reaper = setInterval(() => {
      if (!this.#fabric.isConnected) return;
      this.reapOnce().then(
        (n) => {
          if (n > 0) this.#logger.info({ marked: n }, "marked agents with stopped heartbeats offline");
        },
        (err: unknown) => this.#logger.debug({ err: String(err) }, "registry reaper pass failed"),
      );
    }, this.#intervalMs);
    this.#reaper.unref();
  }

  /** Stops timers and, if registered, marks this agent offline (it is shutting down). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#reaper);
    this.#stopHeartbeat();
    if (this.registered && this.#fabric.isConnected) {
      try {
        await this.#rewrite((cur) => ({ ...cur, status: "offline" }));
      } catch (err) {
        this.#logger.warn(
          { err: String(err) },
          "could not mark this agent offline; readers will see it soon anyway",
        );
      }
    }
  }

  async heartbeat(): Promise<void> {
    const reported = this.#reported;
    if (!reported) return;
    await this.#rewrite((cur) => ({
      ...cur,
      status: cur.status === "offline" ? reported.status : cur.status,
      lastHeartbeat: new Date().toISOString(),
      heartbeatIntervalMs: this.#intervalMs,
      pid: process.pid,
      ...this.#holdingFields(),
    }));
  }

  /**
   * Writes what this process holds into its entry now (coalesced: calls during a write cause one more
   * write after it). Call it when a claim or lease is taken or given up; heartbeats write it too.
   */
  holdingsChanged(): Promise<void> {
    if (!this.registered || this.#closed) return Promise.resolve();
    if (this.#holdingsWrite) {
      this.#holdingsDirty = true;
      return this.#holdingsWrite;
    }
    const write = async (): Promise<void> => {
      do {
        this.#holdingsDirty = false;
        if (!this.registered || !this.#fabric.isConnected) return;
        try {
          await this.#rewrite((cur) => ({ ...cur, ...this.#holdingFields() }));
        } catch (err) {
          this.#logger.debug({ err: String(err) }, "could not write holdings; the next heartbeat will");
          return;
        }
      } while (this.#holdingsDirty);
    };
    this.#holdingsWrite = write().finally(() => {
      this.#holdingsWrite = undefined;
    });
    return this.#holdingsWrite;
  }

  #holdingFields(): { activeClaims: number; activeLeases: number } {
    const h = this.#holdings();
    return { activeClaims: h.claims, activeLeases: h.leases };
  }

  #startHeartbeat(): void {
    this.#stopHeartbeat();
    // A connection that comes back heartbeats at once rather than at the next tick, so an agent whose
    // connection blipped (shorter than the offline window) is never shown offline.
    this.#unwatchConnection = this.#fabric.onStateChange((state) => {
      if (state === "connected") void this.#heartbeatAfterReconnect();
    });
    this.#heartbeat = setInterval(() => {
      if (!this.#fabric.isConnected) return;
      this.heartbeat().catch((err: unknown) => {
        if (err instanceof NotRegisteredError) {
          // The entry was removed elsewhere (an operator deregistered it): stop pretending.
          this.#reported = undefined;
          this.#stopHeartbeat();
        }
        this.#logger.warn({ err: String(err) }, "heartbeat failed");
      });
    }, this.#intervalMs);
    this.#heartbeat.unref();
  }

  /**
   * Heartbeats right after a reconnect. A restarted server may answer JetStream requests only a moment
   * later, so a failed attempt is retried a few times with a short backoff within one interval.
   */
  async #heartbeatAfterReconnect(): Promise<void> {
    let delayMs = Math.min(100, this.#intervalMs / 8);
    const deadline = Date.now() + this.#intervalMs;
    for (;;) {
      if (!this.#heartbeat || !this.#fabric.isConnected) return;
      try {
        await this.heartbeat();
        return;
      } catch (err) {
        if (err instanceof NotRegisteredError || Date.now() + delayMs >= deadline) {
          this.#logger.warn({ err: String(err) }, "heartbeat after reconnecting failed");
          return;
        }
      }
      await new Promise((resolve) => setTimeout(resolve, delayMs).unref());
      delayMs *= 2;
    }
  }

  #stopHeartbeat(): void {
    clearInterval(this.#heartbeat);
    this.#heartbeat = undefined;
    this.#unwatchConnection?.();
    this.#unwatchConnection = undefined;
  }

  /** Compare-and-set on this agent's entry; NotRegisteredError when it is gone. */
  async #rewrite(change: (current: AgentRecord) => AgentRecord): Promise<AgentRecord> {
    let missing = false;
    const r = await this.#recovering(async () =>
      casUpdate(await this.#kv(), this.#key, codec, (cur, revision) => {
        // Revision 0: the key never existed in this bucket, so the bucket was created again (by this
        // process or another); a deregistration leaves a delete marker instead. Write the entry back.
        const base = cur ?? (revision === 0 && this.#reported ? this.#last : undefined);
        missing = base === undefined;
        return base ? change(base) : undefined;
      }),
    );
    if (missing || !r.value)
      throw new NotRegisteredError(this.#identity.agentId, "update its registry entry");
    this.#last = r.value;
    return r.value;
  }

  #visible(record: AgentRecord): boolean {
    const id = this.#identity;
    return canRead(
      record.scope,
      { projectId: record.projectId, agentId: record.agentId, userId: record.userId },
      { projectId: id.projectId, agentId: id.agentId, userId: id.userId },
    );
  }

  #view(record: AgentRecord | undefined, now = Date.now()): AgentView {
    if (!record) throw new NotRegisteredError(this.#identity.agentId, "read its registry entry");
    return { ...record, status: effectiveAgentStatus(record, now), reportedStatus: record.status };
  }

  /**
   * The latest value of every key matching `keyFilter` (`<p>.>` for one project, `>` for all, `*.<agentId>`
   * for one agent in every project) in one pull: an ephemeral consumer on the bucket's stream delivering
   * the last message per subject.
   */
  #scan(keyFilter: string): Promise<Array<{ key: string; record: AgentRecord }>> {
    return this.#recovering(() => this.#scanOnce(keyFilter));
  }

  async #scanOnce(keyFilter: string): Promise<Array<{ key: string; record: AgentRecord }>> {
    await this.#kv();
    const stream = `KV_${REGISTRY_BUCKET.name}`;
    const prefix = `$KV.${REGISTRY_BUCKET.name}.`;
    const pulled = await readAll(this.#fabric, stream, {
      filterSubject: `${prefix}${keyFilter}`,
      start: { from: "lastPerSubject" },
      idleMs: 10_000,
      batch: SCAN_BATCH,
      pullTimeoutMs: PULL_TIMEOUT_MS,
    });
    const out: Array<{ key: string; record: AgentRecord }> = [];
    for (const m of pulled.messages) {
      const op = m.headers?.get("KV-Operation");
      if (op === "DEL" || op === "PURGE") continue;
      const key = m.subject.slice(prefix.length);
      const r = codec.safeDecode(m.data, `${REGISTRY_BUCKET.name}/${key}`);
      if (!r.ok) {
        this.#logger.warn({ err: r.error.message }, "skipping an invalid registry entry");
        continue;
      }
      // Write permissions confine each project to its own keys, so only a record whose key matches
      // its body is believed: one claiming another project or agent is forged and never listed.
      if (key !== keys.registry(r.value.projectId, r.value.agentId)) {
        this.#logger.warn(
          { key, claims: { projectId: r.value.projectId, agentId: r.value.agentId } },
          "skipping a registry entry whose key does not match its record",
        );
        continue;
      }
      out.push({ key, record: r.value });
    }
    return out;
  }
}

function uniqueTokens(values: string[], kind: "capability" | "boundary"): string[] {
  if (!Array.isArray(values))
    throw new LoominalError("invalid_input", `${kind} list must be an array of names`);
  return [...new Set(values.map((v) => assertNameToken(v, kind)))];
}
