import { defineTool } from "@loominal/mcp-kit";
import { MESSAGE_MAX_CHARS, nameToken, scopeSchema } from "@loominal/protocol";
import { z } from "zod";
import type { WarpToolDeps } from "./index.js";

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
    }),
    output: z.object({
      channel: z.string(),
      seq: z.int().positive(),
      scope: scopeSchema,
      sentAt: z.string(),
    }),
    handler: async ({ channel, message, scope }) =>
      warp.run(async () => {
        const sent = await warp.channels.send(channel, message, scope ?? "team");
        return { data: sent, text: `Sent to #${sent.channel} (seq ${sent.seq}, ${sent.scope}).` };
      }),
  });
}
