import {
  type BucketSpec,
  ensureBucket,
  type Fabric,
  isCasConflict,
  jsonCodec,
  type Logger,
  type LoominalConfig,
  silentLogger,
  streamInfo,
} from "@loominal/fabric";
import {
  buckets,
  LoominalError,
  type MemoryCategory,
  type MemoryOrigin,
  type MemoryRecord,
  memoryCategorySchema,
  memoryIdSchema,
  memoryPairProblem,
  memoryRecordSchema,
  randomId,
  SCOPES,
  type Scope,
} from "@loominal/protocol";
import type { KV } from "@nats-io/kv";
import {
  type BucketRole,
  candidateLocations,
  isEphemeral,
  locationOf,
  type MemoryIdentity,
  type MemoryLocation,
  readableSlices,
  recallRank,
  resolveScopeCategory,
} from "./categories.js";
import {
  CoreMemoryLimitError,
  ForceRequiredError,
  InvalidMemoryInputError,
  MemoryNotFoundError,
  NotAuthorError,
  WrongMemoryKindError,
} from "./errors.js";
import { contentSchema, parseInput, type RememberInput, rememberInputSchema } from "./inputs.js";
import {
  type HeldMemory,
  type Memory,
  type RecallResult,
  recall,
  type SearchHit,
  search,
  toMemory,
} from "./recall.js";
import { detectSecrets, secretWarning } from "./secrets.js";
import { MemoryView } from "./view.js";

const DAY_MS = 86_400_000;
const codec = jsonCodec(memoryRecordSchema);

export interface MemoryStoreOptions {
  fabric: Fabric;
  identity: MemoryIdentity;
  /** TTL of the ephemeral bucket (`recent`, `tasks`), ms from each key's last write. Default 24 h. */
  ephemeralTtlMs?: number;
  /** Most `core` memories one user may hold. Default 100. */
  maxCoreMemories?: number;
  logger?: Logger;
  /** How long an operation waits for a NATS connection before failing with nats_unavailable. Default 2000 ms. */
  readyTimeoutMs?: number;
}

/** The result of writing one memory. `warnings` says when the content looks like a secret. */
export interface WriteResult {
  memory: Memory;
  warnings: string[];
}

export type BulkOutcome<T> = ({ ok: true } & T) | { ok: false; error: { code: string; message: string } };

export interface ForgetResult {
  memoryId: string;
  /** Where it was removed from (more than one only when an interrupted move left two copies). */
  removed: Array<{ scope: Scope; category: MemoryCategory }>;
}

export interface RecallContextOptions {
  scopes?: readonly Scope[];
  categories?: readonly MemoryCategory[];
  tags?: readonly string[];
  search?: string;
  /** ISO-8601 time: only memories updated at or after it. */
  since?: string;
  limit?: number;
  maxBytes?: number;
}

export interface CleanupOptions {
  /** Private categories to clean (default recent and tasks). */
  categories?: readonly MemoryCategory[];
  /** Forget the caller's memories in those categories not updated for this long. Absent: forget nothing. */
  olderThanMs?: number;
  dryRun?: boolean;
}

export interface CleanupResult {
  /** Memories forgotten (or, with dryRun, that would be). */
  forgotten: number;
  memoryIds: string[];
  dryRun: boolean;
  /** Ephemeral memories of the caller still held (NATS expires them by itself). */
  ephemeralRemaining: number;
}

export interface BucketHealth {
  role: BucketRole;
  name: string;
  exists: boolean;
  values?: number;
  bytes?: number;
  ttlMs?: number;
}

export interface StoreHealth {
  status: "ok" | "unavailable" | "degraded";
  nats: { url: string; state: string; serverVersion?: string; error?: string };
  identity: MemoryIdentity;
  settings: { ephemeralTtlMs: number; maxCoreMemories: number };
  buckets: BucketHealth[];
  views: Array<{ bucket: string; prefix: string; memories: number; invalidSkipped: number }>;
}

export interface ImportSummary {
  imported: Array<{ fromId: string; memoryId: string }>;
  skipped: Array<{ fromId: string; reason: string }>;
  warnings: string[];
}

interface Found {
  location: MemoryLocation;
  record: MemoryRecord;
  revision: number;
  writtenAtMs: number;
}

/** Largest batch a bulk call accepts. */
export const BULK_MAX = 1_000;
/** Cleanup forgets at most this many memories per call. */
const CLEANUP_MAX = 10_000;

/**
 * Scoped agent memory on NATS KV.
 *
 * Keys begin with their owner (see `keys.memory*` in protocol), and every prefix this class lists is
 * derived from its own identity, so an agent can only ever list its own private and personal memories,
 * its project's team memories and public ones. Ephemeral categories live in a bucket whose TTL NATS
 * enforces by itself.
 */
export class MemoryStore {
  readonly identity: MemoryIdentity;
  readonly ephemeralTtlMs: number;
  readonly maxCoreMemories: number;
  #fabric: Fabric;
  #logger: Logger;
  #readyTimeoutMs: number;
  #buckets = new Map<BucketRole, Promise<KV>>();
  #views = new Map<string, MemoryView>();
  #coreTail: Promise<unknown> = Promise.resolve();
  #closed = false;

  constructor(options: MemoryStoreOptions) {
    this.#fabric = options.fabric;
    this.identity = { ...options.identity };
    this.ephemeralTtlMs = options.ephemeralTtlMs ?? DAY_MS;
    this.maxCoreMemories = options.maxCoreMemories ?? 100;
    this.#logger = options.logger ?? silentLogger();
    this.#readyTimeoutMs = options.readyTimeoutMs ?? 2_000;
  }

  /** A store for the agent a loaded configuration describes. */
  static fromConfig(fabric: Fabric, config: LoominalConfig, logger?: Logger): MemoryStore {
    return new MemoryStore({
      fabric,
      identity: {
        projectId: config.projectId,
        agentId: config.agentId,
        userId: config.userId,
        agentName: config.agentName,
      },
      ephemeralTtlMs: config.file.pattern.ephemeralTtlMs,
      maxCoreMemories: config.file.pattern.maxCoreMemories,
      ...(logger ? { logger } : {}),
    });
  }

  /** The bucket name behind each role. */
  bucketName(role: BucketRole): string {
    switch (role) {
      case "project":
        return buckets.memory(this.identity.projectId);
      case "ephemeral":
        return buckets.memoryEphemeral(this.identity.projectId);
      case "personal":
        return buckets.memoryPersonal();
      case "public":
        return buckets.memoryPublic();
    }
  }

  #bucketSpec(role: BucketRole): BucketSpec {
    const spec: BucketSpec = { name: this.bucketName(role), history: 1 };
    if (role === "ephemeral") spec.ttlMs = this.ephemeralTtlMs;
    return spec;
  }

  async #kv(role: BucketRole): Promise<KV> {
    if (this.#closed) throw new LoominalError("invalid_transition", "this memory store is closed");
    await this.#fabric.ready(this.#readyTimeoutMs);
    let p = this.#buckets.get(role);
    if (!p) {
      p = ensureBucket(this.#fabric, this.#bucketSpec(role));
      this.#buckets.set(role, p);
      p.catch(() => this.#buckets.delete(role));
    }
    return p;
  }

  /** Runs `op`, reporting "NATS not there" errors as nats_unavailable. */
  async #guard<T>(op: () => Promise<T>): Promise<T> {
    try {
      return await op();
    } catch (err) {
      throw this.#fabric.mapError(err);
    }
  }

  async #view(role: BucketRole, prefix: string): Promise<MemoryView> {
    await this.#kv(role);
    const id = `${role}|${prefix}`;
    let view = this.#views.get(id);
    if (view?.failed) {
      await view.stop();
      view = undefined;
    }
    if (!view) {
      view = new MemoryView({
        js: this.#fabric.js,
        bucket: this.bucketName(role),
        prefix,
        ttlMs: role === "ephemeral" ? this.ephemeralTtlMs : 0,
        logger: this.#logger,
      });
      this.#views.set(id, view);
    }
    const started = view;
    try {
      await started.start();
    } catch (err) {
      if (this.#views.get(id) === started) this.#views.delete(id);
      throw err;
    }
    return started;
  }

  /** The view (if one is running) that holds keys written at `location` by this identity. */
  #viewFor(location: MemoryLocation): MemoryView | undefined {
    const slice = readableSlices(location.scope, this.identity).find((s) => s.role === location.role);
    return slice ? this.#views.get(`${slice.role}|${slice.prefix}`) : undefined;
  }

  /** Every memory the caller may read in `scopes`, from the views (started on first use). */
  async #held(scopes: readonly Scope[]): Promise<HeldMemory[]> {
    const slices = [...new Set(scopes)].flatMap((s) => readableSlices(s, this.identity));
    const views = await Promise.all(slices.map((s) => this.#view(s.role, s.prefix)));
    const now = Date.now();
    const out: HeldMemory[] = [];
    for (const view of views) {
      for (const entry of view.memories(now)) out.push({ entry, expiresAtMs: view.expiresAtMs(entry) });
    }
    return out;
  }

  async #write(location: MemoryLocation, record: MemoryRecord): Promise<Memory> {
    const kv = await this.#kv(location.role);
    const revision = await kv.put(location.key, codec.encode(record));
    this.#viewFor(location)?.applyWrite(location.key, record, revision);
    return location.role === "ephemeral"
      ? { ...record, expiresAt: new Date(Date.now() + this.ephemeralTtlMs).toISOString() }
      : record;
  }

  async #delete(found: Found, options: { ifUnchanged: boolean }): Promise<void> {
    const kv = await this.#kv(found.location.role);
    try {
      await kv.delete(found.location.key, options.ifUnchanged ? { previousSeq: found.revision } : undefined);
    } catch (err) {
      if (isCasConflict(err)) {
        throw new LoominalError(
          "conflict",
          `memory ${found.record.id} changed while it was being removed; read it again and retry`,
          { cause: err, details: { memoryId: found.record.id } },
        );
      }
      throw err;
    }
    this.#viewFor(found.location)?.applyDelete(found.location.key, found.revision);
  }

  #author(): MemoryRecord["author"] {
    const { projectId, agentId, userId, agentName } = this.identity;
    return agentName === undefined
      ? { projectId, agentId, userId }
      : { projectId, agentId, userId, agentName };
  }

  #isAuthor(record: MemoryRecord): boolean {
    return (
      record.author.agentId === this.identity.agentId && record.author.projectId === this.identity.projectId
    );
  }

  /** Serialises core writes in this process so the limit check and the write do not interleave. */
  #withCoreSlot<T>(op: () => Promise<T>): Promise<T> {
    const run = this.#coreTail.then(async () => {
      const slice = readableSlices("personal", this.identity)[0];
      if (!slice) throw new Error("personal scope has no slice");
      const view = await this.#view(slice.role, slice.prefix);
      const count = view.memories().filter((m) => m.record.category === "core").length;
      if (count >= this.maxCoreMemories) throw new CoreMemoryLimitError(count, this.maxCoreMemories);
      return op();
    });
    this.#coreTail = run.catch(() => undefined);
    return run;
  }

  /**
   * Stores a new memory. Scope and category default from each other (see resolveScopeCategory);
   * an invalid pair is rejected with the list of valid ones.
   */
  remember(input: RememberInput): Promise<WriteResult> {
    return this.#guard(async () => {
      const fields = parseInput(rememberInputSchema, input);
      const { scope, category } = resolveScopeCategory(fields.scope, fields.category);
      const now = new Date().toISOString();
      const record: MemoryRecord = {
        v: 1,
        id: randomId(),
        scope,
        category,
        content: fields.content,
        tags: dedupe(fields.tags ?? []),
        priority: fields.priority ?? 2,
        relatedTo: dedupe(fields.relatedTo ?? []),
        author: this.#author(),
        createdAt: now,
        updatedAt: now,
      };
      return this.#create(record);
    });
  }

  #create(record: MemoryRecord): Promise<WriteResult> {
    const write = async () => {
      const memory = await this.#write(
        locationOf(record.scope, record.category, record.id, this.identity),
        record,
      );
      return { memory, warnings: this.#secretWarnings(record) };
    };
    return record.category === "core" ? this.#withCoreSlot(write) : write();
  }

  #secretWarnings(record: MemoryRecord): string[] {
    const kinds = detectSecrets(record.content);
    return kinds.length > 0 ? [secretWarning(record.id, kinds)] : [];
  }

  /** Stores many memories; each succeeds or fails on its own. At most BULK_MAX per call. */
  rememberBulk(inputs: readonly RememberInput[]): Promise<Array<BulkOutcome<WriteResult>>> {
    if (inputs.length > BULK_MAX) {
      return Promise.reject(
        new InvalidMemoryInputError(`at most ${BULK_MAX} memories per bulk call; split the batch`),
      );
    }
    return mapBounded(inputs, 64, async (input) => {
      try {
        return { ok: true as const, ...(await this.remember(input)) };
      } catch (err) {
        return { ok: false as const, error: describeError(err) };
      }
    });
  }

  /** Every copy of `memoryId` the caller may read, found with one direct get per possible key. */
  async #locate(memoryId: string): Promise<Found[]> {
    const id = parseInput(memoryIdSchema, memoryId);
    const locations = candidateLocations(id, this.identity, SCOPES);
    const now = Date.now();
    const found = await Promise.all(
      locations.map(async (location): Promise<Found | undefined> => {
        const kv = await this.#kv(location.role);
        const entry = await kv.get(location.key);
        if (entry?.operation !== "PUT") return undefined;
        const writtenAtMs = entry.created.getTime();
        if (location.role === "ephemeral" && writtenAtMs + this.ephemeralTtlMs <= now) return undefined;
        const decoded = codec.safeDecode(entry.value, `${this.bucketName(location.role)}/${location.key}`);
        if (!decoded.ok) {
          this.#logger.warn({ key: location.key, err: decoded.error.message }, "skipping invalid memory");
          return undefined;
        }
        return { location, record: decoded.value, revision: entry.revision, writtenAtMs };
      }),
    );
    return found
      .filter((f): f is Found => f !== undefined)
      .sort(
        (a, b) =>
          recallRank(a.location.scope, a.location.category) -
          recallRank(b.location.scope, b.location.category),
      );
  }

  #found(f: Found): Memory {
    return f.location.role === "ephemeral"
      ? { ...f.record, expiresAt: new Date(f.writtenAtMs + this.ephemeralTtlMs).toISOString() }
      : f.record;
  }

  /** One memory the caller may read. */
  get(memoryId: string): Promise<Memory> {
    return this.#guard(async () => {
      const [first] = await this.#locate(memoryId);
      if (!first) throw new MemoryNotFoundError(memoryId);
      return this.#found(first);
    });
  }

  /**
   * Makes a private `recent` or `tasks` memory permanent: it moves (same id) to `longterm`, optionally
   * with new content, and no longer expires.
   */
  commitInsight(memoryId: string, newContent?: string): Promise<WriteResult> {
    return this.#guard(async () => {
      const content = newContent === undefined ? undefined : parseInput(contentSchema, newContent);
      const found = await this.#locate(memoryId);
      const source = found.find((f) => f.location.scope === "private" && isEphemeral(f.location.category));
      if (!source) {
        const other = found[0];
        if (!other) throw new MemoryNotFoundError(memoryId);
        throw new WrongMemoryKindError(
          memoryId,
          `memory ${memoryId} is ${other.location.scope}/${other.location.category}; only private recent or tasks memories can be committed to longterm`,
        );
      }
      const now = new Date().toISOString();
      const origin: MemoryOrigin = { kind: "committed", memoryId: source.record.id, at: now };
      const record: MemoryRecord = {
        ...source.record,
        category: "longterm",
        content: content ?? source.record.content,
        updatedAt: now,
        origin,
      };
      const memory = await this.#write(locationOf("private", "longterm", record.id, this.identity), record);
      await this.#delete(source, { ifUnchanged: false });
      return { memory, warnings: this.#secretWarnings(record) };
    });
  }

  /**
   * Shares a private memory with every agent of the project as a team memory (default category
   * `learnings`). It moves with its id, or with keepOriginal a copy with a new id is shared.
   */
  shareLearning(
    memoryId: string,
    options: { category?: MemoryCategory; keepOriginal?: boolean } = {},
  ): Promise<WriteResult & { originalKept: boolean }> {
    return this.#guard(async () => {
      const category =
        options.category === undefined ? "learnings" : parseInput(memoryCategorySchema, options.category);
      const problem = memoryPairProblem("team", category);
      if (problem) throw new InvalidMemoryInputError(problem, { category });
      const found = await this.#locate(memoryId);
      const source = found.find((f) => f.location.scope === "private");
      if (!source) {
        const other = found[0];
        if (!other) throw new MemoryNotFoundError(memoryId);
        throw new WrongMemoryKindError(
          memoryId,
          `memory ${memoryId} is ${other.location.scope}/${other.location.category}; only private memories can be shared with the team`,
        );
      }
      const keep = options.keepOriginal === true;
      const now = new Date().toISOString();
      const record: MemoryRecord = {
        ...source.record,
        id: keep ? randomId() : source.record.id,
        scope: "team",
        category,
        author: this.#author(),
        updatedAt: now,
        origin: { kind: "shared", memoryId: source.record.id, at: now },
      };
      const memory = await this.#write(locationOf("team", category, record.id, this.identity), record);
      if (!keep) await this.#delete(source, { ifUnchanged: false });
      return { memory, warnings: this.#secretWarnings(record), originalKept: keep };
    });
  }

  /**
   * Forgets a memory. Team and public memories may be forgotten only by their author; core memories
   * need `force`. Checks happen before anything is removed.
   */
  forget(memoryId: string, options: { force?: boolean } = {}): Promise<ForgetResult> {
    return this.#guard(async () => {
      const found = await this.#locate(memoryId);
      if (found.length === 0) throw new MemoryNotFoundError(memoryId);
      for (const f of found) {
        if ((f.location.scope === "team" || f.location.scope === "public") && !this.#isAuthor(f.record)) {
          throw new NotAuthorError(memoryId, f.location.scope);
        }
        if (f.location.category === "core" && options.force !== true) throw new ForceRequiredError(memoryId);
      }
      for (const f of found) await this.#delete(f, { ifUnchanged: true });
      return {
        memoryId,
        removed: found.map((f) => ({ scope: f.location.scope, category: f.location.category })),
      };
    });
  }

  /** Forgets many memories; each succeeds or fails on its own. At most BULK_MAX per call. */
  forgetBulk(
    memoryIds: readonly string[],
    options: { force?: boolean } = {},
  ): Promise<Array<BulkOutcome<ForgetResult>>> {
    if (memoryIds.length > BULK_MAX) {
      return Promise.reject(
        new InvalidMemoryInputError(`at most ${BULK_MAX} memory ids per bulk call; split the batch`),
      );
    }
    return mapBounded(memoryIds, 16, async (id) => {
      try {
        return { ok: true as const, ...(await this.forget(id, options)) };
      } catch (err) {
        return { ok: false as const, error: describeError(err) };
      }
    });
  }

  /** Every memory the caller may read, optionally narrowed by scope and category. */
  list(
    options: { scopes?: readonly Scope[]; categories?: readonly MemoryCategory[] } = {},
  ): Promise<Memory[]> {
    return this.#guard(async () => {
      const held = await this.#held(options.scopes ?? SCOPES);
      const cats = options.categories;
      return held.filter((h) => !cats || cats.includes(h.entry.record.category)).map(toMemory);
    });
  }

  /**
   * The memories an agent should load at the start of a session, in priority order (core, longterm,
   * team decisions/architecture/learnings, recent, tasks, public), with a summary of at most
   * `maxBytes` (default 4 KiB). Reads the in-process views: cost grows with what the caller may read.
   */
  recallContext(options: RecallContextOptions = {}): Promise<RecallResult> {
    return this.#guard(async () => {
      const sinceMs = options.since === undefined ? undefined : Date.parse(options.since);
      if (sinceMs !== undefined && Number.isNaN(sinceMs)) {
        throw new InvalidMemoryInputError(`since ${JSON.stringify(options.since)} is not an ISO-8601 time`);
      }
      const held = await this.#held(options.scopes ?? SCOPES);
      return recall(held, {
        ...(options.categories ? { categories: options.categories } : {}),
        ...(options.tags ? { tags: options.tags } : {}),
        ...(options.search ? { search: options.search } : {}),
        ...(sinceMs !== undefined ? { sinceMs } : {}),
        limit: options.limit ?? 50,
        maxBytes: options.maxBytes ?? 4_096,
      });
    });
  }

  /** Ranked text search over every memory the caller may read in `scopes`. */
  search(
    query: string,
    options: { scopes?: readonly Scope[]; limit?: number } = {},
  ): Promise<{ hits: SearchHit[]; matched: number }> {
    return this.#guard(async () => {
      const held = await this.#held(options.scopes ?? SCOPES);
      return search(held, query, options.limit ?? 10);
    });
  }

  /**
   * Forgets the caller's own private memories in `categories` not updated for `olderThanMs`. Never
   * touches another agent's keys: it lists only `a.<own agentId>.>`. Expiry itself needs no cleanup.
   */
  cleanup(options: CleanupOptions = {}): Promise<CleanupResult> {
    return this.#guard(async () => {
      const categories = options.categories ?? ["recent", "tasks"];
      for (const c of categories) {
        const problem = memoryPairProblem("private", c);
        if (problem)
          throw new InvalidMemoryInputError(`cleanup works on your private memories only: ${problem}`);
      }
      const held = await this.#held(["private"]);
      const ephemeralRemaining = held.filter((h) => isEphemeral(h.entry.record.category)).length;
      const dryRun = options.dryRun === true;
      if (options.olderThanMs === undefined)
        return { forgotten: 0, memoryIds: [], dryRun, ephemeralRemaining };
      const cutoff = Date.now() - options.olderThanMs;
      const targets = held
        .filter((h) => categories.includes(h.entry.record.category) && h.entry.updatedAtMs <= cutoff)
        .slice(0, CLEANUP_MAX);
      const ids: string[] = [];
      if (!dryRun) {
        await mapBounded(targets, 16, async (h) => {
          const r = h.entry.record;
          const location = locationOf(r.scope, r.category, r.id, this.identity);
          try {
            await this.#delete(
              { location, record: r, revision: h.entry.revision, writtenAtMs: h.entry.writtenAtMs },
              { ifUnchanged: true },
            );
            ids.push(r.id);
          } catch (err) {
            // Changed since it was listed: it is no longer old, so it stays.
            if (!(err instanceof LoominalError && err.code === "conflict")) throw err;
          }
        });
      } else {
        for (const h of targets) ids.push(h.entry.record.id);
      }
      return {
        forgotten: ids.length,
        memoryIds: ids,
        dryRun,
        ephemeralRemaining: dryRun ? ephemeralRemaining : ephemeralRemaining - countEphemeral(targets, ids),
      };
    });
  }

  /**
   * Writes exported memories under the caller's identity, with new ids (relations between imported
   * memories are carried over). Duplicates of memories the caller can already read (same scope,
   * category and content) are skipped unless `skipDuplicates` is false.
   */
  importRecords(
    records: readonly MemoryRecord[],
    options: { skipDuplicates?: boolean } = {},
  ): Promise<ImportSummary> {
    return this.#guard(async () => {
      const skipDuplicates = options.skipDuplicates !== false;
      const existing = new Set(
        skipDuplicates
          ? (await this.#held(SCOPES)).map((h) =>
              dupKey(h.entry.record.scope, h.entry.record.category, h.entry.record.content),
            )
          : [],
      );
      const newIds = new Map(records.map((r) => [r.id, randomId()]));
      const summary: ImportSummary = { imported: [], skipped: [], warnings: [] };
      const now = new Date().toISOString();
      await mapBounded(records, 32, async (r) => {
        const k = dupKey(r.scope, r.category, r.content);
        if (existing.has(k)) {
          summary.skipped.push({ fromId: r.id, reason: "duplicate of a memory you can already read" });
          return;
        }
        existing.add(k);
        const record: MemoryRecord = {
          v: 1,
          id: newIds.get(r.id) ?? randomId(),
          scope: r.scope,
          category: r.category,
          content: r.content,
          tags: r.tags,
          priority: r.priority,
          relatedTo: r.relatedTo.map((id) => newIds.get(id) ?? id),
          author: this.#author(),
          createdAt: r.createdAt,
          updatedAt: now,
          origin: { kind: "imported", memoryId: r.id, at: now },
        };
        try {
          const result = await this.#create(record);
          summary.imported.push({ fromId: r.id, memoryId: record.id });
          summary.warnings.push(...result.warnings);
        } catch (err) {
          if (!(err instanceof LoominalError) || err.code === "nats_unavailable") throw err;
          summary.skipped.push({ fromId: r.id, reason: err.message });
        }
      });
      return summary;
    });
  }

  /** Connection, identity, settings and bucket sizes. Never includes credentials; never throws for a NATS outage. */
  async health(): Promise<StoreHealth> {
    const base = {
      identity: { ...this.identity },
      settings: { ephemeralTtlMs: this.ephemeralTtlMs, maxCoreMemories: this.maxCoreMemories },
      views: [...this.#views.values()].map((v) => ({
        bucket: v.bucket,
        prefix: v.prefix,
        memories: v.size,
        invalidSkipped: v.invalidRecords,
      })),
    };
    const roles: BucketRole[] = ["project", "ephemeral", "personal", "public"];
    if (!this.#fabric.isConnected) {
      return {
        status: "unavailable",
        nats: { url: this.#fabric.url, state: this.#fabric.state, error: this.#fabric.unavailable().message },
        buckets: roles.map((role) => ({ role, name: this.bucketName(role), exists: false })),
        ...base,
      };
    }
    try {
      const jsm = await this.#fabric.jsm();
      const infos = await Promise.all(roles.map((role) => streamInfo(jsm, `KV_${this.bucketName(role)}`)));
      const bucketHealth = roles.map((role, i): BucketHealth => {
        const info = infos[i];
        const name = this.bucketName(role);
        if (!info) return { role, name, exists: false };
        return {
          role,
          name,
          exists: true,
          values: info.state.messages,
          bytes: info.state.bytes,
          ttlMs: Math.round(info.config.max_age / 1_000_000),
        };
      });
      const degraded = base.views.some((v) => v.invalidSkipped > 0);
      return {
        status: degraded ? "degraded" : "ok",
        nats: {
          url: this.#fabric.url,
          state: this.#fabric.state,
          serverVersion: this.#fabric.features.version.text,
        },
        buckets: bucketHealth,
        ...base,
      };
    } catch (err) {
      const mapped = this.#fabric.mapError(err);
      return {
        status: "unavailable",
        nats: {
          url: this.#fabric.url,
          state: this.#fabric.state,
          error: mapped instanceof Error ? mapped.message : String(mapped),
        },
        buckets: roles.map((role) => ({ role, name: this.bucketName(role), exists: false })),
        ...base,
      };
    }
  }

  /** Stops the views. The fabric stays open (it belongs to the caller). */
  async close(): Promise<void> {
    this.#closed = true;
    const views = [...this.#views.values()];
    this.#views.clear();
    await Promise.all(views.map((v) => v.stop()));
  }
}

function dedupe<T>(xs: readonly T[]): T[] {
  return [...new Set(xs)];
}

function dupKey(scope: Scope, category: MemoryCategory, content: string): string {
  return `${scope}\u0000${category}\u0000${content}`;
}

function countEphemeral(targets: readonly HeldMemory[], ids: readonly string[]): number {
  const gone = new Set(ids);
  return targets.filter((h) => gone.has(h.entry.record.id) && isEphemeral(h.entry.record.category)).length;
}

function describeError(err: unknown): { code: string; message: string } {
  if (err instanceof LoominalError) return { code: err.code, message: err.message };
  return { code: "internal", message: err instanceof Error ? err.message : String(err) };
}

/** Runs `fn` over `items` with at most `concurrency` in flight; results keep the input order. */
export async function mapBounded<T, R>(
  items: readonly T[],
  concurrency: number,
  fn: (item: T) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
  return results;
}
