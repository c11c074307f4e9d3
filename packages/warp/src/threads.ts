import { LoominalError, MESSAGE_ID_RE, THREAD_ID_RE } from "@loominal/protocol";

/** Thread and acknowledgement options of a message (channel or direct). */
export interface ThreadOptions {
  /** The thread to send it in; a reply without one joins the thread of `replyTo` (its messageId). */
  threadId?: string;
  /** The messageId this message answers. */
  replyTo?: string;
}

/** Validates thread options; a reply without a threadId joins the thread named by its `replyTo`. */
export function checkThreadOptions(options: ThreadOptions): { threadId?: string; replyTo?: string } {
  const { threadId, replyTo } = options;
  if (threadId !== undefined && !THREAD_ID_RE.test(threadId))
    throw new LoominalError(
      "invalid_input",
      `threadId ${JSON.stringify(String(threadId).slice(0, 80))} is not valid: use 1–64 of a-z, 0-9, '_' and '-' (or the threadId a read returned)`,
    );
  if (replyTo !== undefined && !MESSAGE_ID_RE.test(replyTo))
    throw new LoominalError(
      "invalid_input",
      "replyTo must be a messageId (32 lower-case hex characters) as a read returned it",
    );
  const thread = threadId ?? replyTo;
  return {
    ...(thread !== undefined ? { threadId: thread } : {}),
    ...(replyTo !== undefined ? { replyTo } : {}),
  };
}

/** The thread fields a reader sees: a message sent outside any thread is its own thread. */
export function threadView(rec: { messageId?: string; threadId?: string; replyTo?: string }): {
  messageId?: string;
  threadId?: string;
  replyTo?: string;
} {
  const threadId = rec.threadId ?? rec.messageId;
  return {
    ...(rec.messageId !== undefined ? { messageId: rec.messageId } : {}),
    ...(threadId !== undefined ? { threadId } : {}),
    ...(rec.replyTo !== undefined ? { replyTo: rec.replyTo } : {}),
  };
}
