import { defineTool } from "@loominal/mcp-kit";
import { agentIdSchema, directMessageViewSchema, nameToken, threadIdSchema } from "@loominal/protocol";
import { z } from "zod";
import { DIRECT_READ_DEFAULT_LIMIT, DIRECT_READ_MAX_LIMIT } from "../../inbox.js";
import type { WarpToolDeps } from "./index.js";

export function messagesReadDirectTool({ warp }: WarpToolDeps) {
  return defineTool({
    name: "warp_messages_read_direct",
    title: "Read direct messages",
    description:
      "Reads your unread direct messages, oldest first, each once: a read consumes only what it returns, so what a filter or the limit leaves out stays for a later read. Answer ackRequired ones with warp_messages_ack. dropped: removed unread by retention since your last read; full: the inbox is at its limit.",
    input: z.strictObject({
      limit: z
        .int()
        .min(1)
        .max(DIRECT_READ_MAX_LIMIT)
        .optional()
        .describe(`Most messages to return (default ${DIRECT_READ_DEFAULT_LIMIT})`),
      messageType: nameToken("name").optional().describe("Only messages of this type"),
      fromAgentId: agentIdSchema.optional().describe("Only messages from this agent"),
      threadId: threadIdSchema.optional().describe("Only messages of this thread"),
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
        const lines = r.messages.map(
          (m) =>
            `[${m.sentAt}] ${m.fromHandle} (${m.messageType}${m.threadId ? `, thread ${m.threadId}` : ""}${m.ackRequired ? `, ack required: messageId ${m.messageId}` : ""}): ${m.message}`,
        );
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
