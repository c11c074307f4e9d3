import { defineTool } from "@loominal/mcp-kit";
import { messageAckSchema, messageIdSchema } from "@loominal/protocol";
import { z } from "zod";
import type { WarpToolDeps } from "./index.js";

const ackView = messageAckSchema.extend({ acknowledged: z.boolean() });

export function messagesAckTool({ warp }: WarpToolDeps) {
  return defineTool({
    name: "warp_messages_ack",
    title: "Acknowledge a direct message",
    description:
      "Acknowledges a direct message sent to you with ackRequired (messageId from warp_messages_read_direct), so its sender sees it acknowledged. Acknowledging twice is harmless.",
    input: z.strictObject({
      messageId: messageIdSchema.describe("messageId of the message, as the read returned it"),
    }),
    output: z.object({ message: ackView }),
    handler: async ({ messageId }) =>
      warp.run(async () => {
        const message = await warp.acks.acknowledge(messageId);
        return {
          data: { message },
          text: `Acknowledged message ${messageId} from ${message.from} (at ${message.ackedAt}).`,
        };
      }),
  });
}

export function messagesAckStatusTool({ warp }: WarpToolDeps) {
  return defineTool({
    name: "warp_messages_ack_status",
    title: "Acknowledgements of your messages",
    description:
      "Your direct messages sent with ackRequired and whether each recipient acknowledged it, newest first: by default only those still unacknowledged; pendingOnly false for all; messageId for one.",
    input: z.strictObject({
      messageId: messageIdSchema.optional().describe("One message (the messageId the send returned)"),
      pendingOnly: z.boolean().optional().describe("Only unacknowledged messages (default true)"),
      limit: z.int().min(1).max(100).optional().describe("Most messages to return (default 20)"),
    }),
    output: z.object({
      messages: z.array(ackView),
      count: z.int(),
      unacknowledged: z.int().describe("Of all your messages with ackRequired, how many wait for an ack"),
    }),
    annotations: { readOnlyHint: true },
    handler: async (input) =>
      warp.run(async () => {
        const page = await warp.acks.sent(input);
        const lines = page.messages.map(
          (m) =>
            `${m.messageId} to ${m.toHandle ?? m.to}: ${m.acknowledged ? `acknowledged ${m.ackedAt}` : "NOT acknowledged"} — ${m.excerpt}`,
        );
        return {
          data: page,
          text: [`${page.unacknowledged} unacknowledged message(s)`, ...lines].join("\n"),
        };
      }),
  });
}
