import { defineTool } from "@loominal/mcp-kit";
import { z } from "zod";
import { cleanupInputSchema } from "../../inputs.js";
import type { PatternToolDeps } from "../deps.js";

export function cleanupTool(deps: PatternToolDeps) {
  return defineTool({
    name: "pattern_cleanup",
    title: "Clean up your private memories",
    description:
      "Forget your own private memories not updated for olderThanMs, in the given categories (default recent and tasks; NATS expires those by itself after the ephemeral TTL anyway). Without olderThanMs it only reports; dryRun previews.",
    input: cleanupInputSchema,
    output: z.object({
      forgotten: z.int(),
      memoryIds: z.array(z.string()),
      dryRun: z.boolean(),
      ephemeralRemaining: z
        .int()
        .describe("Your recent and tasks memories still held; NATS expires them by itself."),
    }),
    annotations: { destructiveHint: true },
    handler: async (input) => {
      const r = await deps.store.cleanup(input);
      const verb = r.dryRun ? "Would forget" : "Forgot";
      const note =
        input.olderThanMs === undefined
          ? "Nothing forgotten: pass olderThanMs to forget old memories. Recent and tasks memories expire by themselves."
          : `${verb} ${r.forgotten} of your private memories.`;
      return { data: r, text: `${note} ${r.ephemeralRemaining} ephemeral memories remain.` };
    },
  });
}
