import { defineTool } from "@loominal/mcp-kit";
import { channelMessageViewSchema, nameToken } from "@loominal/protocol";
import { z } from "zod";
import { CHANNEL_READ_DEFAULT_LIMIT, CHANNEL_READ_MAX_LIMIT } from "../../channels.js";
import type { WarpToolDeps } from "./index.js";

export function channelsReadTool({ warp }: WarpToolDeps) {
  return defineTool({
    name: "warp_channels_read",
    title: "Read a channel",
    description: `Reads a page of a channel, oldest first. Without cursor: the newest messages. With cursor (nextCursor from an earlier read): the messages after that point, so passing nextCursor each time follows the channel. Reading does not consume anything. limit 1–${CHANNEL_READ_MAX_LIMIT}, default ${CHANNEL_READ_DEFAULT_LIMIT}.`,
    input: z.strictObject({
      channel: nameToken("channel").describe("Channel name, see warp_channels_list"),
      limit: z.int().min(1).max(CHANNEL_READ_MAX_LIMIT).optional().describe("Messages per page"),
      cursor: z.int().min(1).optional().describe("nextCursor from an earlier read"),
    }),
    output: z.object({
      channel: z.string(),
      messages: z.array(channelMessageViewSchema),
      count: z.int(),
      nextCursor: z.int(),
      hasMore: z.boolean(),
    }),
    annotations: { readOnlyHint: true },
    handler: async ({ channel, limit, cursor }) =>
      warp.run(async () => {
        const page = await warp.channels.read(channel, {
          ...(limit !== undefined ? { limit } : {}),
          ...(cursor !== undefined ? { cursor } : {}),
        });
        const lines = page.messages.map((m) => `[${m.sentAt}] ${m.senderHandle}: ${m.message}`);
        const head = `#${page.channel}: ${page.messages.length} message(s); nextCursor ${page.nextCursor}${page.hasMore ? " (more after this page)" : ""}`;
        return {
          data: {
            channel: page.channel,
            messages: page.messages,
            count: page.messages.length,
            nextCursor: page.nextCursor,
            hasMore: page.hasMore,
          },
          text: [head, ...lines].join("\n"),
        };
      }),
  });
}
