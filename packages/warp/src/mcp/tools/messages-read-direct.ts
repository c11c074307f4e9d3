import { defineTool } from "@loominal/mcp-kit";
import { agentIdSchema, directMessageViewSchema, nameToken } from "@loominal/protocol";
import { z } from "zod";
import { DIRECT_READ_DEFAULT_LIMIT, DIRECT_READ_MAX_LIMIT } from "../../inbox.js";
import type { WarpToolDeps } from "./index.js";

export function messagesReadDirectTool({ warp }: WarpToolDeps) {
  return defineTool({
    name: "warp_messages_read_direct",
    title: "Read direct messages",
    description: `Reads your direct messages, oldest first. Each message is returned once: a read consumes what it returns and nothing else, so messages a filter (messageType, fromAgentId) or the limit leaves out stay for a later read. limit 1–${DIRECT_READ_MAX_LIMIT}, default ${DIRECT_READ_DEFAULT_LIMIT}. "dropped" counts messages an earlier read saw waiting that the inbox's retention removed unread since; "full" means the inbox is at its limit and the next message sent pushes out the oldest: read more often.`,
    input: z.strictObject({
      limit: z.int().min(1).max(DIRECT_READ_MAX_LIMIT).optional(),
      messageType: nameToken("name").optional(),
      fromAgentId: agentIdSchema.optional(),
    }),
    output: z.object({
      messages: z.array(directMessageViewSchema),
      count: z.int(),
      remaining: z.int(),
      dropped: z.int(),
      full: z.boolean(),
    }),
    handler: async (filter) =>
      warp.run(async () => {
        const r = await warp.inbox.read(filter);
        const lines = r.messages.map((m) => `[${m.sentAt}] ${m.fromHandle} (${m.messageType}): ${m.message}`);
        return {
          data: {
            messages: r.messages,
            count: r.messages.length,
            remaining: r.remaining,
            dropped: r.dropped,
            full: r.full,
          },
          text: [
            `${r.messages.length} message(s); ${r.remaining} more waiting${r.dropped > 0 ? `; ${r.dropped} removed unread by retention since your last read` : ""}${r.full ? "; your inbox is full: the oldest are being dropped" : ""}`,
            ...lines,
          ].join("\n"),
        };
      }),
  });
}
