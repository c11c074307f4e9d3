import {
  MEMORY_CONTENT_MAX,
  MEMORY_RELATED_MAX,
  MEMORY_TAGS_MAX,
  memoryCategorySchema,
  memoryIdSchema,
  memoryPrioritySchema,
  memoryTagSchema,
  scopeSchema,
} from "@loominal/protocol";
import { z } from "zod";
import { InvalidMemoryInputError } from "./errors.js";

/** Memory text: 1 to 16,384 characters, not only whitespace. */
export const contentSchema = z
  .string()
  .max(
    MEMORY_CONTENT_MAX,
    `content is at most ${MEMORY_CONTENT_MAX} characters; store large material in a file and remember its path`,
  )
  .refine((s) => s.trim().length > 0, "content must not be empty");

export const tagsSchema = z
  .array(memoryTagSchema)
  .max(MEMORY_TAGS_MAX, `at most ${MEMORY_TAGS_MAX} tags`)
  .describe(`Up to ${MEMORY_TAGS_MAX} tags, stored lower-case.`);
export const relatedToSchema = z
  .array(memoryIdSchema)
  .max(MEMORY_RELATED_MAX, `at most ${MEMORY_RELATED_MAX} related memory ids`)
  .describe("Ids of related memories.");

/** What `remember` takes. Scope and category default as `resolveScopeCategory` describes. */
export const rememberInputSchema = z.strictObject({
  content: contentSchema.describe("What to remember, 1–16,384 characters."),
  scope: scopeSchema
    .optional()
    .describe(
      "private (you, this project), personal (you, every project), team (the project's agents), public (everyone). Default: from category, else private.",
    ),
  category: memoryCategorySchema
    .optional()
    .describe(
      "private: recent (expires), tasks (expires), longterm · personal: core · team/public: learnings, decisions, architecture. Default: the scope's first category.",
    ),
  tags: tagsSchema.optional().describe("Up to 20 tags, stored lower-case."),
  priority: memoryPrioritySchema.optional().describe("1 (most important) to 3 (least). Default 2."),
  relatedTo: relatedToSchema.optional().describe("Ids of related memories."),
  idempotencyKey: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,64}$/, "1–64 letters, digits, '_' or '-'")
    .optional()
    .describe(
      "Your key for this memory: remembering again with it (say, after nats_unavailable) stores nothing new and answers with the first memory (duplicate: true).",
    ),
});
export type RememberInput = z.input<typeof rememberInputSchema>;
export type RememberFields = z.output<typeof rememberInputSchema>;

/** Largest batch a bulk call accepts. */
export const BULK_MAX = 1_000;

/**
 * pattern_remember's input as JSON Schema: what a bulk item is published as. The item itself is checked
 * by `remember`, so an invalid one fails only itself.
 */
const rememberItemJsonSchema: Record<string, unknown> = z.toJSONSchema(rememberInputSchema, { io: "input" });
delete rememberItemJsonSchema.$schema;

/**
 * A batch for `rememberBulk` and pattern_remember_bulk: the array is checked here (1 to BULK_MAX items);
 * each item is validated on its own when it is stored, and one that is invalid fails only its result.
 */
export const rememberBulkInputSchema = z
  .array(z.unknown().meta(rememberItemJsonSchema))
  .min(1)
  .max(BULK_MAX, `at most ${BULK_MAX} memories per bulk call; split the batch`);

export const memoryIdsInputSchema = z
  .array(memoryIdSchema)
  .min(1)
  .max(BULK_MAX, `at most ${BULK_MAX} memory ids per bulk call; split the batch`);

export const scopesInputSchema = z
  .array(scopeSchema)
  .min(1)
  .max(4)
  .describe("Scopes to read: private, personal, team, public. Default: all four.");

const categoriesInputSchema = z.array(memoryCategorySchema).min(1).max(7);

/** What `recallContext` and pattern_recall_context take. */
export const recallContextInputSchema = z.strictObject({
  scopes: scopesInputSchema.optional(),
  categories: categoriesInputSchema.optional().describe("Only these categories."),
  tags: z.array(memoryTagSchema).min(1).max(20).optional().describe("Only memories with any of these tags."),
  search: z.string().max(500).optional().describe("Only memories containing every word of this text."),
  since: z.iso
    .datetime({ offset: true })
    .optional()
    .describe("Only memories updated at or after this ISO-8601 time."),
  limit: z.int().min(1).max(500).optional().describe("At most this many memories. Default 50."),
  maxBytes: z
    .int()
    .min(256)
    .max(1_048_576)
    .optional()
    .describe(
      "Size limit in UTF-8 bytes for the summary, and for the content of the memories returned. Default 4096.",
    ),
});

/** What `search` and pattern_search take. */
export const searchInputSchema = z.strictObject({
  query: z.string().trim().min(1, "query must not be empty").max(500).describe("Words to look for."),
  scopes: scopesInputSchema.optional(),
  limit: z.int().min(1).max(100).optional().describe("At most this many results. Default 10."),
});

/** What `list` takes. */
export const listInputSchema = z.strictObject({
  scopes: scopesInputSchema.optional(),
  categories: categoriesInputSchema.optional(),
});

/** What `cleanup` and pattern_cleanup take. */
export const cleanupInputSchema = z.strictObject({
  categories: z
    .array(z.enum(["recent", "tasks", "longterm"]))
    .min(1)
    .max(3)
    .optional()
    .describe("Private categories to clean. Default recent and tasks."),
  olderThanMs: z.int().min(0).optional().describe("Forget memories not updated for this many milliseconds."),
  dryRun: z.boolean().optional().describe("List what would be forgotten without forgetting it."),
});

/** Options of `forget`, `forgetBulk` and their tools. */
export const forgetOptionsSchema = z.strictObject({
  force: z.boolean().optional().describe("Required to forget a core memory. Default false."),
});

/** Options of `shareLearning` and pattern_share_learning. */
export const shareOptionsSchema = z.strictObject({
  category: z
    .enum(["learnings", "decisions", "architecture"])
    .optional()
    .describe("Team category. Default learnings."),
  keepOriginal: z.boolean().optional().describe("Keep the private memory and share a copy. Default false."),
});

/** What `exportMemories` and pattern_export take. */
export const exportInputSchema = z.strictObject({
  scope: scopeSchema.optional().describe("Only this scope. Default: every scope you may read."),
  category: memoryCategorySchema
    .optional()
    .describe("Only this category (with scope, the pair must be valid)."),
  path: z
    .string()
    .min(1)
    .max(1024)
    .optional()
    .describe(
      "File to write, relative to the project directory, ending in .json (never .mcp.json, .loominal.json or package.json). Default .loominal/pattern-export-<time>.json.",
    ),
  overwrite: z
    .boolean()
    .optional()
    .describe("Replace an existing file; only an earlier Pattern export is replaced. Default false."),
});

/** What `importMemories` and pattern_import take. */
export const importInputSchema = z.strictObject({
  path: z.string().min(1).max(1024).describe("Export file, relative to the project directory."),
  skipDuplicates: z.boolean().optional().describe("Skip memories you already have. Default true."),
});

/** Parses `value` with `schema`, turning zod issues into one InvalidMemoryInputError naming each field. */
export function parseInput<S extends z.ZodType>(schema: S, value: unknown): z.output<S> {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues
    .map((i) => `${i.path.join(".") || "(input)"}: ${i.message}`)
    .join("; ");
  throw new InvalidMemoryInputError(`invalid input: ${problems}`);
}
