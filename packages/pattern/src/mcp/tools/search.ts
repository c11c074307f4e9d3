import { defineTool } from "@loominal/mcp-kit";
import { z } from "zod";
import { searchInputSchema } from "../../inputs.js";
import type { PatternToolDeps } from "../deps.js";
import { memoryOutput } from "../schemas.js";

export function searchTool(deps: PatternToolDeps) {
  return defineTool({
    name: "pattern_search",
    title: "Search memories",
    description:
      "Ranked text search over every memory you may read (your private and personal memories, your team's, public ones). Words found in the content or equal to a tag score; memories matching more of the words, the whole phrase, higher priority and recent updates rank higher.",
    input: searchInputSchema,
    output: z.object({
      results: z.array(z.object({ memory: memoryOutput, score: z.number() })),
      matched: z.int().describe("Memories that matched at least one word."),
    }),
    annotations: { readOnlyHint: true },
    handler: async (input) => {
      const { hits, matched } = await deps.store.search(input.query, {
        ...(input.scopes ? { scopes: input.scopes } : {}),
        ...(input.limit ? { limit: input.limit } : {}),
      });
      const lines = hits.map(
        (h) =>
          `- [${h.score}] ${h.memory.scope}/${h.memory.category} ${h.memory.id}: ${oneLine(h.memory.content)}`,
      );
      const text =
        hits.length === 0
          ? "No memories match."
          : `${matched} matching; top ${hits.length}:\n${lines.join("\n")}`;
      return { data: { results: hits, matched }, text };
    },
  });
}

function oneLine(s: string): string {
  const flat = s.replace(/\s+/g, " ").trim();
  return flat.length > 200 ? `${flat.slice(0, 200)}…` : flat;
}
