import { defineTool } from "@loominal/mcp-kit";
import { rememberInputSchema } from "../../inputs.js";
import type { PatternToolDeps } from "../deps.js";
import { describeWrite, writeOutput } from "../schemas.js";

export function rememberTool(deps: PatternToolDeps) {
  return defineTool({
    name: "pattern_remember",
    title: "Remember",
    description:
      "Store a memory. Scopes: private (only you, this project; categories recent and tasks expire after 24 h, longterm does not), personal (you in every project: core), team (every agent of this project: learnings, decisions, architecture), public (everyone: learnings, decisions, architecture). With no scope and no category it goes to private/recent. Returns the memory and its id; warns when the content looks like a secret.",
    input: rememberInputSchema,
    output: writeOutput,
    handler: async (input) => {
      const { memory, warnings, duplicate } = await deps.store.remember(input);
      if (duplicate)
        return {
          data: { memory, warnings, duplicate: true },
          text: `Already remembered with this idempotencyKey as ${memory.id}; nothing new was stored.`,
        };
      return { data: { memory, warnings }, text: describeWrite("Remembered", memory, warnings) };
    },
  });
}
