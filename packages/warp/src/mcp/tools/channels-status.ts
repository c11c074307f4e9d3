import { defineTool } from "@loominal/mcp-kit";
import { nameToken } from "@loominal/protocol";
import { z } from "zod";
import { channelSummarySchema } from "./channels-list.js";
import type { WarpToolDeps } from "./index.js";

export function channelsStatusTool({ warp }: WarpToolDeps) {
  return defineTool({
    name: "warp_channels_status",
    title: "Channel status",
    description:
      "Message counts, sizes, sequence range and time of the last message of one channel, or of every channel when none is given.",
    input: z.strictObject({
      channel: nameToken("channel").optional().describe("One channel; all when omitted"),
    }),
    output: z.object({
      channels: z.array(
        channelSummarySchema.extend({
          messages: z.int(),
          bytes: z.int(),
          firstSeq: z.int(),
          lastSeq: z.int(),
          lastMessageAt: z.string().nullable(),
        }),
      ),
    }),
    annotations: { readOnlyHint: true },
    handler: async ({ channel }) =>
      warp.run(async () => {
        const all = await warp.channels.status(channel);
        const channels = all.map((s) => ({
          name: s.name,
          ...(s.description !== undefined ? { description: s.description } : {}),
          maxMessages: s.maxMessages,
          maxBytes: s.maxBytes,
          maxAgeMs: s.maxAgeMs,
          messages: s.messages,
          bytes: s.bytes,
          firstSeq: s.firstSeq,
          lastSeq: s.lastSeq,
          lastMessageAt: s.lastMessageAt,
        }));
        const lines = channels.map(
          (c) => `#${c.name}: ${c.messages} message(s), ${c.bytes} bytes, last ${c.lastMessageAt ?? "never"}`,
        );
        return { data: { channels }, text: lines.join("\n") };
      }),
  });
}
