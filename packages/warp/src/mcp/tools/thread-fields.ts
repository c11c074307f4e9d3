import { messageIdSchema, threadIdSchema } from "@loominal/protocol";

/** Input fields of the send tools that place a message in a thread. */
export const threadInput = {
  threadId: threadIdSchema
    .optional()
    .describe(
      "Thread to post in: the threadId a read returned, or a name you choose (e.g. 'parser-refactor')",
    ),
  replyTo: messageIdSchema
    .optional()
    .describe("messageId of the message you answer; without threadId the reply joins that message's thread"),
};
