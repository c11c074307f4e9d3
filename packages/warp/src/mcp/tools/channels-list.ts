import { defineTool } from "@loominal/mcp-kit";
import { z } from "zod";
import type { WarpToolDeps } from "./index.js";

export const channelSummarySchema = z.object({
  name: z.string(),
  description: z.string().optional(),
  maxMessages: z.int(),
  maxBytes: z.int(),
  maxAgeMs: z.int(),
});

export function channelsListTool({ warp }: WarpToolDeps) {
  return defineTool({
    name: "warp_channels_list",
    title: "List channels",
    description:
      "Lists the project's channels (configured in .loominal.json) with their descriptions and retention limits.",
    input: z.strictObject({}),
    output: z.object({ channels: z.array(channelSummarySchema) }),
    annotations: { readOnlyHint: true },
    handler: async () =>
      warp.run(async () => {
        const channels = warp.channels.list().map((c) => ({
          name: c.name,
          ...(c.description !== undefined ? { description: c.description } : {}),
          maxMessages: c.maxMessages,
          maxBytes: c.maxBytes,
          maxAgeMs: c.maxAgeMs,
        }));
        const lines = channels.map((c) => `#${c.name}${c.description ? ` — ${c.description}` : ""}`);
        return { data: { channels }, text: `${channels.length} channel(s):\n${lines.join("\n")}` };
      }),
  });
}
