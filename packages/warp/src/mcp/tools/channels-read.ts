import { defineTool } from "@loominal/mcp-kit";
import { channelMessageViewSchema, LoominalError, nameToken, threadIdSchema } from "@loominal/protocol";
import { z } from "zod";
import { CHANNEL_READ_DEFAULT_LIMIT, CHANNEL_READ_MAX_LIMIT, THREAD_SCAN_MAX } from "../../channels.js";
import type { WarpToolDeps } from "./index.js";

export function channelsReadTool({ warp }: WarpToolDeps) {
  return defineTool({
    name: "warp_channels_read",
    title: "Read a channel",
    description: `Reads a page of a channel, oldest first, consuming nothing. Without cursor: the newest messages; with cursor: those after it, so passing nextCursor each time follows the channel. With threadId: that thread's messages among the newest ${THREAD_SCAN_MAX} (no cursor).`,
    input: z.strictObject({
      channel: nameToken("channel").describe("Channel name, see warp_channels_list"),
      limit: z
        .int()
        .min(1)
        .max(CHANNEL_READ_MAX_LIMIT)
        .optional()
        .describe(`Messages per page (default ${CHANNEL_READ_DEFAULT_LIMIT})`),
      cursor: z.int().min(1).optional().describe("nextCursor from an earlier read"),
      threadId: threadIdSchema.optional().describe("Read only this thread"),
    }),
    output: z.object({
      channel: z.string(),
      messages: z.array(channelMessageViewSchema),
      count: z.int(),
      nextCursor: z.int(),
      hasMore: z.boolean(),
      scanned: z.int().optional().describe("Channel messages looked at for a thread read"),
    }),
    annotations: { readOnlyHint: true },
    handler: async ({ channel, limit, cursor, threadId }) =>
      warp.run(async () => {
        if (threadId !== undefined && cursor !== undefined)
          throw new LoominalError(
            "invalid_input",
            "pass either threadId (one thread) or cursor (follow the channel), not both",
          );
        const page =
          threadId !== undefined
            ? await warp.channels.readThread(channel, threadId, limit !== undefined ? { limit } : {})
            : await warp.channels.read(channel, {
                ...(limit !== undefined ? { limit } : {}),
                ...(cursor !== undefined ? { cursor } : {}),
              });
        const scanned = "scanned" in page ? (page.scanned as number) : undefined;
        const lines = page.messages.map(
          (m) =>
            `[${m.sentAt}] ${m.senderHandle}${m.threadId ? ` (thread ${m.threadId})` : ""}: ${m.message}`,
        );
        const head = `#${page.channel}: ${page.messages.length} message(s); nextCursor ${page.nextCursor}${page.hasMore ? " (more after this page)" : ""}`;
        return {
          data: {
            channel: page.channel,
            messages: page.messages,
            count: page.messages.length,
            nextCursor: page.nextCursor,
            hasMore: page.hasMore,
            ...(scanned !== undefined ? { scanned } : {}),
          },
          text: [head, ...lines].join("\n"),
        };
      }),
  });
}
