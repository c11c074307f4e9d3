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

export const tagsSchema = z.array(memoryTagSchema).max(MEMORY_TAGS_MAX, `at most ${MEMORY_TAGS_MAX} tags`);
export const relatedToSchema = z
  .array(memoryIdSchema)
  .max(MEMORY_RELATED_MAX, `at most ${MEMORY_RELATED_MAX} related memory ids`);

/** What `remember` takes. Scope and category default as `resolveScopeCategory` describes. */
export const rememberInputSchema = z.strictObject({
  content: contentSchema.describe("What to remember, 1–16,384 characters."),
  scope: scopeSchema
    .optional()
    .describe(
      "private (this agent, this project), personal (you, every project), team (every agent of the project), public (everyone). Default: inferred from category, else private.",
    ),
  category: memoryCategorySchema
    .optional()
    .describe(
      "private: recent (expires), tasks (expires), longterm · personal: core · team/public: learnings, decisions, architecture. Default: the scope's first category.",
    ),
  tags: tagsSchema.optional().describe("Up to 20 tags, stored lower-case."),
  priority: memoryPrioritySchema.optional().describe("1 (most important) to 3 (least). Default 2."),
  relatedTo: relatedToSchema.optional().describe("Ids of related memories."),
});
export type RememberInput = z.input<typeof rememberInputSchema>;
export type RememberFields = z.output<typeof rememberInputSchema>;

/** Parses `value` with `schema`, turning zod issues into one InvalidMemoryInputError naming each field. */
export function parseInput<S extends z.ZodType>(schema: S, value: unknown): z.output<S> {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues
    .map((i) => `${i.path.join(".") || "(input)"}: ${i.message}`)
    .join("; ");
  throw new InvalidMemoryInputError(`invalid input: ${problems}`);
}
