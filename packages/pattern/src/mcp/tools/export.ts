import { defineTool } from "@loominal/mcp-kit";
import { z } from "zod";
import { exportInputSchema } from "../../inputs.js";
import { exportMemories } from "../../transfer.js";
import type { PatternToolDeps } from "../deps.js";

export function exportTool(deps: PatternToolDeps) {
  return defineTool({
    name: "pattern_export",
    title: "Export memories to a file",
    description:
      "Write the memories you may read (optionally one scope and/or category) to a JSON file inside the project directory, for backup or pattern_import. Paths outside it, symbolic links, .mcp.json, .loominal.json and package.json are refused; overwrite replaces only an earlier export.",
    input: exportInputSchema,
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
