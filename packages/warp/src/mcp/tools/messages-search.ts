import { defineTool } from "@loominal/mcp-kit";
import { nameToken } from "@loominal/protocol";
import { z } from "zod";
import {
  SEARCH_DEFAULT_LIMIT,
  SEARCH_DEFAULT_MAX_SCAN,
  SEARCH_MAX_LIMIT,
  SEARCH_MAX_SCAN,
  searchMessages,
} from "../../search.js";
import type { WarpToolDeps } from "./index.js";

export function messagesSearchTool({ warp }: WarpToolDeps) {
  return defineTool({
    name: "warp_messages_search",
    title: "Search messages",
    description:
      "Finds messages you may read that contain every word of query (case-insensitive): your inbox (read or not; nothing consumed) and the channels your scope allows. Newest first, with excerpts. Looks at most maxScan stored messages, the newest of each source; truncated says older ones were left.",
    input: z.strictObject({
      query: z.string().min(1).max(200).describe('Words that must all appear, or a "quoted phrase"'),
      channels: z
        .array(nameToken("channel"))
        .max(64)
        .optional()
        .describe("Channels to search (default: all configured)"),
      inbox: z.boolean().optional().describe("Search your direct messages too (default true)"),
      limit: z
        .int()
        .min(1)
        .max(SEARCH_MAX_LIMIT)
        .optional()
        .describe(`Most hits to return (default ${SEARCH_DEFAULT_LIMIT})`),
      maxScan: z
        .int()
        .min(1)
        .max(SEARCH_MAX_SCAN)
        .optional()
        .describe(`Most stored messages to look at (default ${SEARCH_DEFAULT_MAX_SCAN})`),
    }),
    output: z.object({
      hits: z.array(
        z.object({
          source: z.enum(["inbox", "channel"]),
          channel: z.string().optional(),
          seq: z.int(),
          messageId: z.string().optional(),
          threadId: z.string().optional(),
          fromId: z.string(),
          fromHandle: z.string(),
          sentAt: z.string(),
          excerpt: z.string(),
        }),
      ),
      count: z.int(),
      moreMatches: z.int(),
      scanned: z.int(),
      maxScan: z.int(),
      truncated: z.boolean(),
    }),
    annotations: { readOnlyHint: true },
    handler: async (input) =>
      warp.run(async () => {
        const r = await searchMessages({ inbox: warp.inbox, channels: warp.channels }, input);
        const lines = r.hits.map(
          (h) =>
            `[${h.sentAt}] ${h.source === "inbox" ? "inbox" : `#${h.channel}`} ${h.fromHandle}${h.threadId ? ` (thread ${h.threadId})` : ""}: ${h.excerpt}`,
        );
        return {
          data: r,
          text: [
            `${r.count} hit(s)${r.moreMatches > 0 ? ` (${r.moreMatches} more)` : ""}; scanned ${r.scanned} of at most ${r.maxScan} messages${r.truncated ? "; older messages were not searched" : ""}`,
            ...lines,
          ].join("\n"),
        };
      }),
  });
}
