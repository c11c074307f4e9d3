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
      "Store the memories of a pattern_export file (inside the project directory) as yours: new ids (relations among them kept), and ones you can already read with the same scope, category and content skipped. Each is checked like pattern_remember; one that fails, or repeats an earlier record's id, is skipped with the reason.",
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
