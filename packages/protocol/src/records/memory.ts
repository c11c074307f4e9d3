// Record schemas of Pattern memory. Owned by the Pattern package; exported through records/index.ts.
import { z } from "zod";
import { agentIdSchema, projectIdSchema } from "../names.js";
import { type Scope, scopeSchema } from "../scopes.js";

/** Every memory category. Which scope allows which category is `MEMORY_CATEGORIES_BY_SCOPE`. */
export const MEMORY_CATEGORIES = [
  "recent",
  "tasks",
  "longterm",
  "core",
  "decisions",
  "architecture",
  "learnings",
] as const;
export const memoryCategorySchema = z.enum(MEMORY_CATEGORIES);
export type MemoryCategory = z.infer<typeof memoryCategorySchema>;

/** The valid scope/category pairs. The first category of each scope is its default. */
export const MEMORY_CATEGORIES_BY_SCOPE: Readonly<Record<Scope, readonly MemoryCategory[]>> = {
  private: ["recent", "tasks", "longterm"],
  personal: ["core"],
  team: ["learnings", "decisions", "architecture"],
  public: ["learnings", "decisions", "architecture"],
};

/** Categories stored in the ephemeral bucket, whose keys NATS expires by the bucket TTL. */
export const EPHEMERAL_CATEGORIES: readonly MemoryCategory[] = ["recent", "tasks"];

/** Why a scope/category pair is invalid, or undefined when it is valid. */
export function memoryPairProblem(scope: Scope, category: MemoryCategory): string | undefined {
  const allowed = MEMORY_CATEGORIES_BY_SCOPE[scope];
  if (allowed.includes(category)) return undefined;
  const valid = (Object.keys(MEMORY_CATEGORIES_BY_SCOPE) as Scope[])
    .map((s) => `${s}: ${MEMORY_CATEGORIES_BY_SCOPE[s].join(", ")}`)
    .join("; ");
  return `category "${category}" is not valid in scope "${scope}"; valid pairs are ${valid}`;
}

const MEMORY_ID_RE = /^[0-9a-f]{32}$/;

/** A memory id: 32 lower-case hex characters, as `pattern_remember` returns it. */
export const memoryIdSchema = z
  .string()
  .regex(MEMORY_ID_RE, "memoryId must be 32 lower-case hex characters, as pattern_remember returned it");

/** Longest memory content, in characters. Larger notes belong in files; memories point to them. */
export const MEMORY_CONTENT_MAX = 16_384;
export const MEMORY_TAGS_MAX = 20;
export const MEMORY_TAG_MAX = 64;
export const MEMORY_RELATED_MAX = 20;

/** 1 is the most important, 3 the least; recall orders by it within a category. */
export const memoryPrioritySchema = z.int().min(1).max(3);

/** A tag: free text without control characters, stored trimmed and lower-case. */
export const memoryTagSchema = z
  .string()
  .trim()
  .min(1, "a tag must not be empty")
  .max(MEMORY_TAG_MAX, `a tag is at most ${MEMORY_TAG_MAX} characters`)
  // biome-ignore lint/suspicious/noControlCharactersInRegex: rejecting control characters is the point
  .regex(/^[^\u0000-\u001f\u007f]+$/, "a tag must not contain control characters")
  .transform((t) => t.toLowerCase());

/** Who wrote a memory. Reads check it: only the author may forget a team or public memory. */
export const memoryAuthorSchema = z.object({
  projectId: projectIdSchema,
  agentId: agentIdSchema,
  userId: agentIdSchema,
  agentName: z.string().max(64).optional(),
});
export type MemoryAuthor = z.infer<typeof memoryAuthorSchema>;

/** Where a memory came from, when it was not written directly. */
export const memoryOriginSchema = z.object({
  kind: z.enum(["committed", "shared", "imported"]),
  /** The memory id it was made from (for `imported`, the id in the export file). */
  memoryId: memoryIdSchema,
  at: z.iso.datetime(),
});
export type MemoryOrigin = z.infer<typeof memoryOriginSchema>;

/** The fields of a stored memory, without the scope/category pair check (extend this one). */
export const memoryRecordBaseSchema = z.object({
  v: z.literal(1),
  id: memoryIdSchema,
  scope: scopeSchema,
  category: memoryCategorySchema,
  content: z.string().min(1).max(MEMORY_CONTENT_MAX),
  tags: z.array(z.string().max(MEMORY_TAG_MAX)).max(MEMORY_TAGS_MAX),
  priority: memoryPrioritySchema,
  relatedTo: z.array(memoryIdSchema).max(MEMORY_RELATED_MAX),
  author: memoryAuthorSchema,
  createdAt: z.iso.datetime(),
  updatedAt: z.iso.datetime(),
  origin: memoryOriginSchema.optional(),
});

/** One memory as stored in a Pattern KV bucket (JSON). */
export const memoryRecordSchema = memoryRecordBaseSchema.superRefine((r, ctx) => {
  const problem = memoryPairProblem(r.scope, r.category);
  if (problem) ctx.addIssue({ code: "custom", message: problem, path: ["category"] });
});
export type MemoryRecord = z.infer<typeof memoryRecordSchema>;

/** The file `pattern_export` writes and `pattern_import` reads. */
export const memoryExportSchema = z.object({
  format: z.literal("loominal-pattern-export"),
  version: z.literal(1),
  exportedAt: z.iso.datetime(),
  memories: z.array(memoryRecordSchema).max(100_000),
});
export type MemoryExport = z.infer<typeof memoryExportSchema>;
