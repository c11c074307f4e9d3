import { defineTool } from "@loominal/mcp-kit";
import { MESSAGE_MAX_CHARS, nameToken, scopeSchema } from "@loominal/protocol";
import { z } from "zod";
import type { WarpToolDeps } from "./index.js";
import { threadInput } from "./thread-fields.js";

export function channelsSendTool({ warp }: WarpToolDeps) {
  return defineTool({
    name: "warp_channels_send",
    title: "Send to a channel",
    description:
      "Posts a message to a project channel. scope decides who can read it: 'team' (default, every agent of the project), 'private' (only you), 'personal' (your user), 'public'.",
    input: z.strictObject({
      channel: nameToken("channel").describe("Channel name, see warp_channels_list"),
      message: z.string().min(1).max(MESSAGE_MAX_CHARS).describe("The message text"),
      scope: scopeSchema.optional().describe("Who may read it (default team)"),
      idempotencyKey: z
        .string()
        .regex(/^[A-Za-z0-9_-]{1,64}$/, "1–64 letters, digits, '_' or '-'")
        .optional()
        .describe(
          "Your key for this message: a retry with it (say after nats_unavailable) within 2 minutes stores it once and answers with the first copy's seq and duplicate: true.",
        ),
      ...threadInput,
    }),
    output: z.object({
      channel: z.string(),
      seq: z.int().positive(),
      scope: scopeSchema,
      sentAt: z.string(),
      duplicate: z.boolean().describe("true when a message with this idempotencyKey was stored already"),
      messageId: z.string(),
      threadId: z.string(),
    }),
    handler: async ({ channel, message, scope, idempotencyKey, threadId, replyTo }) =>
      warp.run(async () => {
        const sent = await warp.channels.send(channel, message, scope ?? "team", {
          ...(idempotencyKey ? { idempotencyKey } : {}),
          ...(threadId !== undefined ? { threadId } : {}),
          ...(replyTo !== undefined ? { replyTo } : {}),
        });
        return {
          data: sent,
          text: sent.duplicate
            ? `Already sent to #${sent.channel} with this idempotencyKey (seq ${sent.seq}); not stored again.`
            : `Sent to #${sent.channel} (seq ${sent.seq}, ${sent.scope}; messageId ${sent.messageId}, thread ${sent.threadId}).`,
        };
      }),
  });
}
