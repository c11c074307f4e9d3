import { defineTool } from "@loominal/mcp-kit";
import { z } from "zod";
import { importInputSchema } from "../../inputs.js";
import { importMemories } from "../../transfer.js";
import type { PatternToolDeps } from "../deps.js";

export function importTool(deps: PatternToolDeps) {
  return defineTool({
    name: "pattern_import",
    title: "Import memories from a file",
    description:
      "Read a file written by pattern_export (inside the project directory) and store its memories as yours: you become the author, ids are new (relations between imported memories are kept), and memories you can already read with the same scope, category and content are skipped. Each memory is checked like pattern_remember (tags trimmed and lower-cased, empty content refused, the core limit); one that fails is skipped with the reason, and of records sharing an id only the first is imported (the others are listed as skipped).",
    input: importInputSchema,
    output: z.object({
      imported: z.int(),
      memoryIds: z.array(z.object({ fromId: z.string(), memoryId: z.string() })),
      skipped: z.array(z.object({ fromId: z.string(), reason: z.string() })),
      warnings: z.array(z.string()),
    }),
    handler: async (input) => {
      const r = await importMemories(deps.store, deps.projectDir, input);
      const lines = [`Imported ${r.imported.length} memories; skipped ${r.skipped.length}.`];
      for (const w of r.warnings.slice(0, 10)) lines.push(`WARNING: ${w}`);
      return {
        data: {
          imported: r.imported.length,
          memoryIds: r.imported,
          skipped: r.skipped,
          warnings: r.warnings,
        },
        text: lines.join("\n"),
      };
    },
  });
}
