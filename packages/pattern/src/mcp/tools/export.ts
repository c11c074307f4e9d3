import { defineTool } from "@loominal/mcp-kit";
import { memoryCategorySchema, scopeSchema } from "@loominal/protocol";
import { z } from "zod";
import { exportMemories } from "../../transfer.js";
import type { PatternToolDeps } from "../deps.js";

export function exportTool(deps: PatternToolDeps) {
  return defineTool({
    name: "pattern_export",
    title: "Export memories to a file",
    description:
      "Write the memories you may read (optionally one scope and/or category) to a JSON file inside the project directory, for backup or to move them with pattern_import. Paths outside the project directory are refused.",
    input: z.strictObject({
      scope: scopeSchema.optional().describe("Only this scope. Default: every scope you may read."),
      category: memoryCategorySchema.optional().describe("Only this category."),
      path: z
        .string()
        .min(1)
        .max(1024)
        .optional()
        .describe(
          "File to write, relative to the project directory, ending in .json. Default .loominal/pattern-export-<time>.json.",
        ),
      overwrite: z.boolean().optional().describe("Replace an existing file. Default false."),
    }),
    output: z.object({
      path: z.string().describe("Relative to the project directory."),
      count: z.int(),
      bytes: z.int(),
      byScope: z.record(z.string(), z.int()),
    }),
    handler: async (input) => {
      const r = await exportMemories(deps.store, deps.projectDir, input);
      return { data: r, text: `Exported ${r.count} memories (${r.bytes} bytes) to ${r.path}.` };
    },
  });
}
