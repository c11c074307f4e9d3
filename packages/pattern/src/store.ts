import { createHash } from "node:crypto";
import {
  type BucketSpec,
  type EnvTable,
  ensureBucket,
  type Fabric,
  forgetBucket,
  isCasConflict,
  jsonCodec,
  type KV,
  type Logger,
  type LoominalConfig,
  mayMeanStreamMissing,
  parseEnv,
  silentLogger,
  streamInfo,
} from "@loominal/fabric";
import {
  buckets,
  ConfigError,
  keys,
  LoominalError,
  type MemoryCategory,
  type MemoryOrigin,
  type MemoryRecord,
  memoryExportSchema,
  memoryIdSchema,
  memoryRecordSchema,
  randomId,
  SCOPES,
  type Scope,
} from "@loominal/protocol";
import { z } from "zod";
import { type BulkOutcome, describeError, mapBounded } from "./bulk.js";
import {
  type BucketRole,
  candidateLocations,
  isEphemeral,
  keyProblem,
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
  MemoryNotFoundError,
  NotAuthorError,
  WrongMemoryKindError,
} from "./errors.js";
import { type StoreHealth, storeHealth } from "./health.js";
import {
  BULK_MAX,
  cleanupInputSchema,
  contentSchema,
  forgetOptionsSchema,
  listInputSchema,
  memoryIdsInputSchema,
  parseInput,
  type RememberInput,
  recallContextInputSchema,
  rememberBulkInputSchema,
  rememberInputSchema,
  searchInputSchema,
  shareOptionsSchema,
} from "./inputs.js";
import { memoryBucketSpec } from "./provision.js";
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

/** Default of `maxPublicMemories`. */
export const DEFAULT_MAX_PUBLIC_MEMORIES = 10_000;
/** Default of `maxTeamMemories`. */
export const DEFAULT_MAX_TEAM_MEMORIES = 10_000;
/** How long a core write waits to see every earlier core write of its user before giving up. */
const CORE_CONFIRM_TIMEOUT_MS = 5_000;

export interface MemoryStoreOptions {
  fabric: Fabric;
  identity: MemoryIdentity;
  /** TTL of the ephemeral bucket (`recent`, `tasks`), ms from each key's last write. Default 24 h. */
  ephemeralTtlMs?: number;
  /** Most `core` memories one user (`identity.userId`) may hold, across every process. Default 100. */
  maxCoreMemories?: number;
  /**
   * Most public memories this process holds in memory (every project's public memories share one
   * bucket). Beyond it the ones written longest ago are left out of recall and search. Default 10,000.
   */
  maxPublicMemories?: number;
  /**
   * Most team memories this process holds for recall and search (default 10,000); beyond it the one
   * written longest ago is dropped from the view, as for public memories.
   */
  maxTeamMemories?: number;
  logger?: Logger;
  /** How long an operation waits for a NATS connection before failing with nats_unavailable. Default 2000 ms. */
  readyTimeoutMs?: number;
}

/** The result of writing one memory. `warnings` says when the content looks like a secret. */
export interface WriteResult {
  memory: Memory;
  warnings: string[];
  /** The idempotency key was used before: `memory` is the one stored then, and nothing was written. */
  duplicate?: boolean;
}

/**
 * The memory id an idempotency key stands for: the same agent's retry with the same key names the same
 * memory (and so the same KV key), which cannot be stored twice.
 */
export function memoryIdForKey(identity: { projectId: string; agentId: string }, key: string): string {
  return createHash("sha256")
    .update(`${identity.projectId}\u0000${identity.agentId}\u0000${key}`)
    .digest("hex")
    .slice(0, 32);
}

export interface ForgetResult {
  memoryId: string;
  /** Where it was removed from (more than one only when an interrupted move left two copies). */
  removed: Array<{ scope: Scope; category: MemoryCategory }>;
}

/** Validated like pattern_recall_context's input (`recallContextInputSchema`). */
export interface RecallContextOptions {
  scopes?: readonly Scope[];
  categories?: readonly MemoryCategory[];
  tags?: readonly string[];
  search?: string;
  /** ISO-8601 time with offset: only memories updated at or after it. */
  since?: string;
  /** 1–500, default 50. */
  limit?: number;
  /** Bytes, 256–1,048,576, default 4096: the summary, and the content of the memories returned. */
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

export { type BulkOutcome, mapBounded } from "./bulk.js";
export type { BucketHealth, StoreHealth, ViewHealth } from "./health.js";
export { patternProvisionSpecs } from "./provision.js";
export { BULK_MAX };

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
  readonly maxPublicMemories: number;
  readonly maxTeamMemories: number;
  #fabric: Fabric;
  #logger: Logger;
  #readyTimeoutMs: number;
  /** Roles whose bucket this store has opened: what `#recover` checks after a failure. */
  #opened = new Set<BucketRole>();
  #views = new Map<string, MemoryView>();
  #closed = false;

  constructor(options: MemoryStoreOptions) {
    this.#fabric = options.fabric;
    this.identity = { ...options.identity };
    this.ephemeralTtlMs = options.ephemeralTtlMs ?? DAY_MS;
    this.maxCoreMemories = positiveInt("maxCoreMemories", options.maxCoreMemories ?? 100);
    this.maxPublicMemories = positiveInt(
      "maxPublicMemories",
      options.maxPublicMemories ?? DEFAULT_MAX_PUBLIC_MEMORIES,
    );
    this.maxTeamMemories = positiveInt(
      "maxTeamMemories",
      options.maxTeamMemories ?? DEFAULT_MAX_TEAM_MEMORIES,
    );
    this.#logger = options.logger ?? silentLogger();
    this.#readyTimeoutMs = options.readyTimeoutMs ?? 2_000;
  }

  /**
   * A store for the agent a loaded configuration describes. `overrides` carries settings that
   * `.loominal.json` has no key for yet (`maxPublicMemories`, which the bin reads from
   * `LOOMINAL_PATTERN_MAX_PUBLIC_MEMORIES`).
   */
  static fromConfig(
    fabric: Fabric,
    config: LoominalConfig,
    logger?: Logger,
    overrides: Pick<MemoryStoreOptions, "maxPublicMemories" | "maxTeamMemories"> = {},
  ): MemoryStore {
    return new MemoryStore({
      ...overrides,
      fabric,
      identity: {
        projectId: config.projectId,
        agentId: config.agentId,
        userId: config.userId,
        agentName: config.agentName,
      },
      ephemeralTtlMs: config.file.pattern.ephemeralTtlMs,
      maxCoreMemories: config.file.pattern.maxCoreMemories,
      maxPublicMemories: config.file.pattern.maxPublicMemories,
      ...(config.file.pattern.maxTeamMemories !== undefined
        ? { maxTeamMemories: config.file.pattern.maxTeamMemories }
        : {}),
      ...overrides,
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
    return memoryBucketSpec(this.bucketName(role), role, this.ephemeralTtlMs);
  }

  async #kv(role: BucketRole): Promise<KV> {
    if (this.#closed) throw new LoominalError("invalid_transition", "this memory store is closed");
    await this.#fabric.readyForCall(this.#readyTimeoutMs);
    // ensureBucket remembers what it verified (per connection, forgotten after a reconnect).
    const kv = await ensureBucket(this.#fabric, this.#bucketSpec(role));
    this.#opened.add(role);
    return kv;
  }

  /**
   * Runs `op`, reporting "NATS not there" errors as nats_unavailable. When it fails in a way that may
   * mean a bucket vanished (deleted, or a server restarted with an empty store) and one this store uses
   * is indeed gone, the bucket is created again, the views over it restarted, and `op` retried once.
   */
  async #guard<T>(op: () => Promise<T>): Promise<T> {
    try {
      return await op();
    } catch (err) {
      if (!mayMeanStreamMissing(err) || !(await this.#recover().catch(() => false)))
        throw this.#fabric.mapError(err);
    }
    try {
      return await op();
    } catch (err) {
      throw this.#fabric.mapError(err);
    }
  }

  /** Forgets the buckets (and stops the views) that no longer exist; true when there was one. */
  async #recover(): Promise<boolean> {
    const jsm = await this.#fabric.jsm();
    let missing = false;
    for (const role of this.#opened) {
      const name = this.bucketName(role);
      if (await streamInfo(jsm, `KV_${name}`)) continue;
      missing = true;
      this.#logger.warn({ bucket: name }, "memory bucket is missing; creating it again");
      this.#opened.delete(role);
      forgetBucket(this.#fabric, name);
      for (const [id, view] of this.#views) {
        if (view.bucket !== name) continue;
        this.#views.delete(id);
        await view.stop();
      }
    }
    return missing;
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
        jsm: () => this.#fabric.jsm(),
        bucket: this.bucketName(role),
        role,
        prefix,
        ttlMs: role === "ephemeral" ? this.ephemeralTtlMs : 0,
        ...(role === "public"
          ? { maxEntries: this.maxPublicMemories }
          : role === "project" && prefix === keys.memoryTeamPrefix()
            ? { maxEntries: this.maxTeamMemories }
            : {}),
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
    return (await this.#put(location, record)).memory;
  }

  async #put(location: MemoryLocation, record: MemoryRecord): Promise<{ memory: Memory; revision: number }> {
    const kv = await this.#kv(location.role);
    const revision = await kv.put(location.key, codec.encode(record));
    this.#viewFor(location)?.applyWrite(location.key, record, revision);
    const memory =
      location.role === "ephemeral"
        ? { ...record, expiresAt: new Date(Date.now() + this.ephemeralTtlMs).toISOString() }
        : record;
    return { memory, revision };
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

  /** The view of the caller's personal keys (started on first use). */
  async #personalView(): Promise<MemoryView> {
    const slice = readableSlices("personal", this.identity)[0];
    if (!slice) throw new Error("personal scope has no slice");
    return this.#view(slice.role, slice.prefix);
  }

  /**
   * Writes a core memory within the per-user limit, across processes. The view gives a quick refusal
   * when the user is already full; the write is then checked against NATS itself: once the view's
   * ordered consumer has delivered this write (stream sequence R), it has every earlier change to the
   * user's keys, and the write stands only if fewer than `maxCoreMemories` live core memories have a
   * lower sequence. Every writer ranks by the same sequences, so concurrent writers agree on which
   * writes are over the limit: the newest ones, which their writers delete again.
   */
  async #createCore(record: MemoryRecord): Promise<WriteResult> {
    const view = await this.#personalView();
    const held = countCore(view, Number.POSITIVE_INFINITY);
    if (held >= this.maxCoreMemories) throw new CoreMemoryLimitError(held, this.maxCoreMemories);
    const location = locationOf(record.scope, record.category, record.id, this.identity);
    const { memory, revision } = await this.#put(location, record);
    let older: number;
    try {
      await view.waitForDelivery(revision, CORE_CONFIRM_TIMEOUT_MS);
      older = countCore(view, revision);
    } catch (err) {
      await this.#retract(location, revision).catch((retractErr: unknown) =>
        this.#logger.warn(
          { key: location.key, err: String(retractErr) },
          "could not remove an unconfirmed core memory",
        ),
      );
      if (err instanceof LoominalError && err.code === "timeout") {
        throw new LoominalError(
          "timeout",
          `could not confirm the core memory limit within ${CORE_CONFIRM_TIMEOUT_MS} ms, so the memory was not kept; retry`,
          { cause: err },
        );
      }
      throw err;
    }
    if (older >= this.maxCoreMemories) {
      await this.#retract(location, revision);
      throw new CoreMemoryLimitError(older, this.maxCoreMemories);
    }
    return { memory, warnings: this.#secretWarnings(record) };
  }

  /** Removes a write this store made and must not keep (unless it changed since). */
  async #retract(location: MemoryLocation, revision: number): Promise<void> {
    const kv = await this.#kv(location.role);
    try {
      await kv.delete(location.key, { previousSeq: revision });
    } catch (err) {
      if (!isCasConflict(err)) throw err;
    }
    this.#viewFor(location)?.applyDelete(location.key, revision);
  }

  /** A new record from remember-style input, normalised and validated as pattern_remember does. */
  #newRecord(input: unknown): MemoryRecord {
    const fields = parseInput(rememberInputSchema, input);
    const { scope, category } = resolveScopeCategory(fields.scope, fields.category);
    const now = new Date().toISOString();
    return {
      v: 1,
      id: fields.idempotencyKey ? memoryIdForKey(this.identity, fields.idempotencyKey) : randomId(),
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
  }

  /**
   * Stores a new memory. Scope and category default from each other (see resolveScopeCategory);
   * an invalid pair is rejected with the list of valid ones.
   */
  remember(input: RememberInput): Promise<WriteResult> {
    return this.#guard(async () => {
      const record = this.#newRecord(input);
      if (input.idempotencyKey) {
        const [earlier] = await this.#locate(record.id);
        if (earlier) return { memory: earlier.record, warnings: [], duplicate: true };
      }
      return this.#create(record);
    });
  }

  async #create(record: MemoryRecord): Promise<WriteResult> {
    if (record.category === "core") return this.#createCore(record);
    const memory = await this.#write(
      locationOf(record.scope, record.category, record.id, this.identity),
      record,
    );
    return { memory, warnings: this.#secretWarnings(record) };
  }

  #secretWarnings(record: MemoryRecord): string[] {
    const kinds = detectSecrets(record.content);
    return kinds.length > 0 ? [secretWarning(record.id, kinds)] : [];
  }

  /**
   * Stores many memories; each succeeds or fails on its own (an invalid item gets `invalid_input` in its
   * result). Only a batch that is not 1 to BULK_MAX items fails the call.
   */
  async rememberBulk(inputs: readonly RememberInput[]): Promise<Array<BulkOutcome<WriteResult>>> {
    parseInput(rememberBulkInputSchema, inputs);
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
        const problem = keyProblem(location.role, location.key, decoded.value);
        if (problem) {
          this.#logger.warn({ key: location.key, err: problem }, "skipping memory stored at the wrong key");
          return undefined;
        }
        return { location, record: decoded.value, revision: entry.revision, writtenAtMs };
      }),
    );
    const hits = found.filter((f): f is Found => f !== undefined);
    // Public keys carry their author's userId, so another author's public memory is not at any key
    // derived from the reader: the public view (every `p.>` key, each checked against its record) has it.
    if (!hits.some((f) => f.location.scope === "public")) {
      const view = await this.#view("public", keys.memoryPublicPrefix());
      const entry = view.memories(now).find((e) => e.record.id === id);
      if (entry)
        hits.push({
          location: locationOf("public", entry.record.category, id, entry.record.author),
          record: entry.record,
          revision: entry.revision,
          writtenAtMs: entry.writtenAtMs,
        });
    }
    return hits.sort(
      (a, b) =>
        recallRank(a.location.scope, a.location.category) - recallRank(b.location.scope, b.location.category),
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
      const parsed = parseInput(shareOptionsSchema, options);
      const category = parsed.category ?? "learnings";
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
      const keep = parsed.keepOriginal === true;
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
      const { force } = parseInput(forgetOptionsSchema, options);
      const found = await this.#locate(memoryId);
      if (found.length === 0) throw new MemoryNotFoundError(memoryId);
      for (const f of found) {
        if ((f.location.scope === "team" || f.location.scope === "public") && !this.#isAuthor(f.record)) {
          throw new NotAuthorError(memoryId, f.location.scope);
        }
        if (f.location.category === "core" && force !== true) throw new ForceRequiredError(memoryId);
      }
      for (const f of found) await this.#delete(f, { ifUnchanged: true });
      return {
        memoryId,
        removed: found.map((f) => ({ scope: f.location.scope, category: f.location.category })),
      };
    });
  }

  /** Forgets many memories; each succeeds or fails on its own. At most BULK_MAX per call. */
  async forgetBulk(
    memoryIds: readonly string[],
    options: { force?: boolean } = {},
  ): Promise<Array<BulkOutcome<ForgetResult>>> {
    // The batch must be a list of ids; an id that names nothing visible fails on its own.
    parseInput(memoryIdsInputSchema, memoryIds);
    parseInput(forgetOptionsSchema, options);
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
      const parsed = parseInput(listInputSchema, options);
      const held = await this.#held(parsed.scopes ?? SCOPES);
      const cats = parsed.categories;
      return held.filter((h) => !cats || cats.includes(h.entry.record.category)).map(toMemory);
    });
  }

  /**
   * The memories an agent should load at the start of a session, in priority order (core, longterm,
   * team decisions/architecture/learnings, recent, tasks, public), with a summary of at most
   * `maxBytes` (default 4 KiB); the content of the memories returned also totals at most `maxBytes`
   * (longer content is cut as in the summary and flagged `contentTruncated`). Reads the in-process
   * views: cost grows with what the caller may read.
   */
  recallContext(options: RecallContextOptions = {}): Promise<RecallResult> {
    return this.#guard(async () => {
      const parsed = parseInput(recallContextInputSchema, options);
      const held = await this.#held(parsed.scopes ?? SCOPES);
      return recall(held, {
        ...(parsed.categories ? { categories: parsed.categories } : {}),
        ...(parsed.tags ? { tags: parsed.tags } : {}),
        ...(parsed.search ? { search: parsed.search } : {}),
        ...(parsed.since !== undefined ? { sinceMs: Date.parse(parsed.since) } : {}),
        limit: parsed.limit ?? 50,
        maxBytes: parsed.maxBytes ?? 4_096,
      });
    });
  }

  /** Ranked text search over every memory the caller may read in `scopes`. */
  search(
    query: string,
    options: { scopes?: readonly Scope[]; limit?: number } = {},
  ): Promise<{ hits: SearchHit[]; matched: number }> {
    return this.#guard(async () => {
      const parsed = parseInput(searchInputSchema, { ...options, query });
      const held = await this.#held(parsed.scopes ?? SCOPES);
      return search(held, parsed.query, parsed.limit ?? 10);
    });
  }

  /**
   * Forgets the caller's own private memories in `categories` not updated for `olderThanMs`. Never
   * touches another agent's keys: it lists only `a.<own agentId>.>`. Expiry itself needs no cleanup.
   */
  cleanup(options: CleanupOptions = {}): Promise<CleanupResult> {
    return this.#guard(async () => {
      const parsed = parseInput(cleanupInputSchema, options);
      const categories: readonly MemoryCategory[] = parsed.categories ?? ["recent", "tasks"];
      const held = await this.#held(["private"]);
      const ephemeralRemaining = held.filter((h) => isEphemeral(h.entry.record.category)).length;
      const dryRun = parsed.dryRun === true;
      if (parsed.olderThanMs === undefined)
        return { forgotten: 0, memoryIds: [], dryRun, ephemeralRemaining };
      const cutoff = Date.now() - parsed.olderThanMs;
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
   * memories are carried over). Each goes through the same normalisation and validation as `remember`
   * (tags trimmed and lower-cased, whitespace-only content refused, the core limit); one that fails is
   * skipped with the reason. Duplicates of memories the caller can already read (same scope, category
   * and content) are skipped unless `skipDuplicates` is false. Of records sharing an id only the first
   * is imported; each later one is skipped, named by its id.
   */
  importRecords(
    records: readonly MemoryRecord[],
    options: { skipDuplicates?: boolean } = {},
  ): Promise<ImportSummary> {
    return this.#guard(async () => {
      const valid = parseInput(memoryExportSchema.shape.memories, records);
      const skipDuplicates = options.skipDuplicates !== false;
      const existing = new Set(
        skipDuplicates
          ? (await this.#held(SCOPES)).map((h) =>
              dupKey(h.entry.record.scope, h.entry.record.category, h.entry.record.content),
            )
          : [],
      );
      const summary: ImportSummary = { imported: [], skipped: [], warnings: [] };
      // An id names one memory: a later record with the same id would overwrite or shadow the first.
      const firstOfId: MemoryRecord[] = [];
      const newIds = new Map<string, string>();
      for (const r of valid) {
        if (newIds.has(r.id)) {
          summary.skipped.push({
            fromId: r.id,
            reason: `another record of this file has the same id ${r.id}; only the first one is imported`,
          });
          continue;
        }
        newIds.set(r.id, randomId());
        firstOfId.push(r);
      }
      const now = new Date().toISOString();
      await mapBounded(firstOfId, 32, async (r) => {
        let record: MemoryRecord;
        try {
          const fresh = this.#newRecord({
            content: r.content,
            scope: r.scope,
            category: r.category,
            tags: r.tags,
            priority: r.priority,
          });
          record = {
            ...fresh,
            id: newIds.get(r.id) ?? fresh.id,
            relatedTo: dedupe(r.relatedTo.map((id) => newIds.get(id) ?? id)),
            createdAt: r.createdAt,
            updatedAt: now,
            origin: { kind: "imported", memoryId: r.id, at: now },
          };
        } catch (err) {
          if (!(err instanceof LoominalError)) throw err;
          summary.skipped.push({ fromId: r.id, reason: err.message });
          return;
        }
        const k = dupKey(record.scope, record.category, record.content);
        if (existing.has(k)) {
          summary.skipped.push({ fromId: r.id, reason: "duplicate of a memory you can already read" });
          return;
        }
        existing.add(k);
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
  health(): Promise<StoreHealth> {
    return storeHealth(
      this.#fabric,
      {
        identity: { ...this.identity },
        settings: {
          ephemeralTtlMs: this.ephemeralTtlMs,
          maxCoreMemories: this.maxCoreMemories,
          maxPublicMemories: this.maxPublicMemories,
          maxTeamMemories: this.maxTeamMemories,
        },
        views: [...this.#views.values()],
      },
      (role) => this.bucketName(role),
    );
  }

  /** Stops the views. The fabric stays open (it belongs to the caller). */
  async close(): Promise<void> {
    this.#closed = true;
    const views = [...this.#views.values()];
    this.#views.clear();
    await Promise.all(views.map((v) => v.stop()));
  }
}

/**
 * `LOOMINAL_PATTERN_MAX_PUBLIC_MEMORIES` (a positive integer), or undefined when unset. Throws
 * ConfigError naming the variable for any other value.
 */
/** The Pattern server's environment variables (parsed with the fabric's `parseEnv`). */
export const PATTERN_ENV = {
  LOOMINAL_PATTERN_MAX_PUBLIC_MEMORIES: {
    schema: z.coerce
      .number()
      .int("must be a whole number")
      .min(1, "must be at least 1")
      .max(Number.MAX_SAFE_INTEGER)
      .optional(),
    description: `how many public memories one view keeps (a positive integer, default ${DEFAULT_MAX_PUBLIC_MEMORIES})`,
  },
} satisfies EnvTable;

export function maxPublicMemoriesFromEnv(env: Record<string, string | undefined>): number | undefined {
  return parseEnv(PATTERN_ENV, env).LOOMINAL_PATTERN_MAX_PUBLIC_MEMORIES;
}

/** Live core memories in the personal view written before stream sequence `before`. */
function countCore(view: MemoryView, before: number): number {
  let n = 0;
  for (const m of view.memories()) if (m.record.category === "core" && m.revision < before) n++;
  return n;
}

function positiveInt(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 1) {
    throw new ConfigError(`${name} must be a positive integer, got ${JSON.stringify(value)}`);
  }
  return value;
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
