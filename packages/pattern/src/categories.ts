import {
  EPHEMERAL_CATEGORIES,
  keys,
  MEMORY_CATEGORIES_BY_SCOPE,
  type MemoryCategory,
  type MemoryRecord,
  memoryPairProblem,
  type Scope,
} from "@loominal/protocol";
import { InvalidMemoryInputError } from "./errors.js";

/** Who is reading or writing: the key prefixes are derived from this, never from tool input. */
export interface MemoryIdentity {
  projectId: string;
  agentId: string;
  userId: string;
  agentName?: string;
}

/** The four buckets Pattern uses. */
export type BucketRole = "project" | "ephemeral" | "personal" | "public";

/** Where one memory lives. */
export interface MemoryLocation {
  role: BucketRole;
  key: string;
  scope: Scope;
  category: MemoryCategory;
}

/** A readable slice of a bucket: every key under `prefix`. */
export interface ReadableSlice {
  role: BucketRole;
  prefix: string;
  scope: Scope;
}

const SCOPE_OF_CATEGORY: Record<MemoryCategory, Scope> = {
  recent: "private",
  tasks: "private",
  longterm: "private",
  core: "personal",
  decisions: "team",
  architecture: "team",
  learnings: "team",
};

/**
 * The scope and category of a new memory. Missing parts are filled in: no scope → the scope the
 * category belongs to (public is never implied); no category → the scope's first category.
 */
export function resolveScopeCategory(
  scope: Scope | undefined,
  category: MemoryCategory | undefined,
): { scope: Scope; category: MemoryCategory } {
  if (scope === undefined && category === undefined) return { scope: "private", category: "recent" };
  if (scope === undefined)
    return { scope: SCOPE_OF_CATEGORY[category as MemoryCategory], category: category as MemoryCategory };
  const cat = category ?? (MEMORY_CATEGORIES_BY_SCOPE[scope][0] as MemoryCategory);
  const problem = memoryPairProblem(scope, cat);
  if (problem) throw new InvalidMemoryInputError(problem, { scope, category: cat });
  return { scope, category: cat };
}

export function isEphemeral(category: MemoryCategory): boolean {
  return EPHEMERAL_CATEGORIES.includes(category);
}

/** The bucket and key of a memory written by `author`. */
export function locationOf(
  scope: Scope,
  category: MemoryCategory,
  memoryId: string,
  author: MemoryIdentity,
): MemoryLocation {
  switch (scope) {
    case "private":
      return {
        role: isEphemeral(category) ? "ephemeral" : "project",
        key: keys.memoryPrivate(author.agentId, category, memoryId),
        scope,
        category,
      };
    case "personal":
      return {
        role: "personal",
        key: keys.memoryPersonal(author.userId, category, memoryId),
        scope,
        category,
      };
    case "team":
      return { role: "project", key: keys.memoryTeam(category, memoryId), scope, category };
    case "public":
      return {
        role: "public",
        key: keys.memoryPublic(author.userId, category, memoryId),
        scope,
        category,
      };
  }
}

/**
 * Why a record read from `key` in a `role` bucket cannot be trusted, or undefined when they agree.
 * The key is what access is confined by (its prefix names the owner), so a record is only believed
 * when writing it through Pattern would have put it at exactly this key: same scope, category and id,
 * and for private and personal keys the same owner (author agentId / userId).
 */
export function keyProblem(role: BucketRole, key: string, record: MemoryRecord): string | undefined {
  let expected: MemoryLocation;
  try {
    expected = locationOf(record.scope, record.category, record.id, record.author);
  } catch {
    return `the record at ${key} cannot be stored under any key`;
  }
  if (expected.key === key && expected.role === role) return undefined;
  return `the record at ${key} (${role} bucket) claims to be ${record.scope}/${record.category} ${record.id}, which belongs at ${expected.key} (${expected.role} bucket)`;
}

/** Every place a memory with this id could be that `reader` may read. */
export function candidateLocations(
  memoryId: string,
  reader: MemoryIdentity,
  scopes: readonly Scope[],
): MemoryLocation[] {
  const out: MemoryLocation[] = [];
  for (const scope of scopes) {
    for (const category of MEMORY_CATEGORIES_BY_SCOPE[scope])
      out.push(locationOf(scope, category, memoryId, reader));
  }
  return out;
}

/** The slices a reader lists for a scope: only its own private and personal keys, its project's team keys. */
export function readableSlices(scope: Scope, reader: MemoryIdentity): ReadableSlice[] {
  switch (scope) {
    case "private": {
      const prefix = keys.memoryPrivatePrefix(reader.agentId);
      return [
        { role: "project", prefix, scope },
        { role: "ephemeral", prefix, scope },
      ];
    }
    case "personal":
      return [{ role: "personal", prefix: keys.memoryPersonalPrefix(reader.userId), scope }];
    case "team":
      return [{ role: "project", prefix: keys.memoryTeamPrefix(), scope }];
    case "public":
      return [{ role: "public", prefix: keys.memoryPublicPrefix(), scope }];
  }
}

/**
 * Recall order: core, longterm, team decisions/architecture/learnings, recent, tasks, then public.
 * Public memories come last because they are the least specific to this agent and project.
 */
const RECALL_ORDER: ReadonlyArray<readonly [Scope, MemoryCategory]> = [
  ["personal", "core"],
  ["private", "longterm"],
  ["team", "decisions"],
  ["team", "architecture"],
  ["team", "learnings"],
  ["private", "recent"],
  ["private", "tasks"],
  ["public", "decisions"],
  ["public", "architecture"],
  ["public", "learnings"],
];

const RANK = new Map(RECALL_ORDER.map(([s, c], i) => [`${s}/${c}`, i]));

/** Position of a scope/category in recall order (lower first). */
export function recallRank(scope: Scope, category: MemoryCategory): number {
  return RANK.get(`${scope}/${category}`) ?? RECALL_ORDER.length;
}

/** Number of distinct recall slots (scope/category groups × 3 priorities). */
export const RECALL_SLOTS = (RECALL_ORDER.length + 1) * 3;

/** Recall position of a memory: its scope/category group, then its priority (1 first). */
export function recallSlot(record: { scope: Scope; category: MemoryCategory; priority: number }): number {
  return recallRank(record.scope, record.category) * 3 + Math.min(2, Math.max(0, record.priority - 1));
}

/** Heading of a scope/category group in the recall summary. */
export function groupTitle(scope: Scope, category: MemoryCategory): string {
  const names: Record<MemoryCategory, string> = {
    core: "Core",
    longterm: "Long-term",
    decisions: "Decisions",
    architecture: "Architecture",
    learnings: "Learnings",
    recent: "Recent",
    tasks: "Tasks",
  };
  return `${names[category]} (${scope})`;
}
