import { defineTool } from "@loominal/mcp-kit";
import {
  agentIdSchema,
  MESSAGE_MAX_CHARS,
  messagePrioritySchema,
  nameToken,
  projectIdSchema,
} from "@loominal/protocol";
import { z } from "zod";
import type { WarpToolDeps } from "./index.js";
import { threadInput } from "./thread-fields.js";

export function messagesSendDirectTool({ warp }: WarpToolDeps) {
  return defineTool({
    name: "warp_messages_send_direct",
    title: "Send a direct message",
    description:
      "Sends a message to one registered agent's inbox (agentId from warp_registry_discover), where it waits until read, even while they are offline. Agents of other projects are reachable if registered with scope public (or personal, for your user).",
    input: z.strictObject({
      agentId: agentIdSchema.describe("The recipient's agentId"),
      message: z.string().min(1).max(MESSAGE_MAX_CHARS).describe("The message text"),
      messageType: nameToken("name")
        .optional()
        .describe("A type the recipient can filter on (default 'text')"),
      metadata: z.record(z.string(), z.unknown()).optional().describe("Structured data for the recipient"),
      projectId: projectIdSchema
        .optional()
        .describe("The recipient's project (default: yours, then any you may see)"),
      priority: messagePrioritySchema
        .optional()
        .describe("urgent: shown to the recipient before anything else at its next turn (default normal)"),
      ...threadInput,
      ackRequired: z
        .boolean()
        .optional()
        .describe(
          "Ask the recipient to acknowledge it (warp_messages_ack); warp_messages_ack_status shows it until then. Same project only",
        ),
    }),
    output: z.object({
      messageId: z.string(),
      threadId: z.string(),
      ackRequired: z.boolean(),
      to: agentIdSchema,
      projectId: projectIdSchema,
      seq: z.int().positive(),
      messageType: z.string(),
      priority: messagePrioritySchema,
      sentAt: z.string(),
    }),
    handler: async ({
      agentId,
      message,
      messageType,
      metadata,
      projectId,
      threadId,
      replyTo,
      ackRequired,
      priority,
    }) =>
      warp.run(async () => {
        const sent = await warp.inbox.send(agentId, message, {
          ...(threadId !== undefined ? { threadId } : {}),
          ...(replyTo !== undefined ? { replyTo } : {}),
          ...(ackRequired !== undefined ? { ackRequired } : {}),
          ...(messageType !== undefined ? { messageType } : {}),
          ...(metadata !== undefined ? { metadata } : {}),
          ...(projectId !== undefined ? { projectId } : {}),
          ...(priority !== undefined ? { priority } : {}),
        });
        const where = sent.projectId === warp.projectId ? "" : ` in project ${sent.projectId}`;
        return {
          data: sent,
          text: `Sent ${sent.priority === "urgent" ? "urgent " : ""}${sent.messageType} message to ${sent.to}${where} (seq ${sent.seq}; messageId ${sent.messageId}, thread ${sent.threadId}${sent.ackRequired ? "; awaiting acknowledgement" : ""}).`,
        };
      }),
  });
}
