import { jsonCodec, type Logger } from "@loominal/fabric";
import {
  type WorkEvent,
  type WorkEventType,
  type WorkItem,
  type WorkTransition,
  workItemSchema,
} from "@loominal/protocol";
import { type KV, KvWatchInclude } from "@nats-io/kv";

const codec = jsonCodec(workItemSchema);
/** Ledger keys that are work items (the ledger also holds a storage reserve). */
const WORK_ID = /^[0-9a-f]{32}$/;

export interface WorkEventDetails {
  note?: string;
  reason?: string;
  retryable?: boolean;
}

/** The `lastTransition` a ledger write carries: the events it stands for, who made it, and when. */
export function transition(
  events: WorkEventType[],
  agentId: string,
  at: string,
  details: WorkEventDetails = {},
): WorkTransition {
  return {
    events,
    agentId,
    at,
    ...(details.note !== undefined ? { note: details.note } : {}),
    ...(details.reason !== undefined ? { reason: details.reason } : {}),
    ...(details.retryable !== undefined ? { retryable: details.retryable } : {}),
  };
}

/** The work events one ledger revision stands for (none when the write was bookkeeping). */
export function eventsOf(item: WorkItem, revision: number): WorkEvent[] {
  const t = item.lastTransition;
  if (!t) return [];
  return t.events.map((type) => ({
    type,
    workId: item.workId,
    projectId: item.projectId,
    at: t.at,
    agentId: t.agentId,
    status: item.status,
    attempt: item.attempts,
    revision,
    capability: item.capability,
    boundary: item.boundary,
    taskId: item.taskId,
    ...(t.note !== undefined ? { note: t.note } : {}),
    ...(t.reason !== undefined ? { reason: t.reason } : {}),
    ...(t.retryable !== undefined ? { retryable: t.retryable } : {}),
    item,
  }));
}

export interface WatchEventsOptions {
  /** Only events of these items (filtered on the server when there is exactly one). */
  workIds?: readonly string[];
  /** Only events passing this test. */
  filter?: (event: WorkEvent) => boolean;
  /**
   * "new" (default): transitions written from now on. "all": first every revision the ledger still
   * keeps (its history, per item), then new ones. "latest": first the current revision of every item,
   * then new ones — what a coordinator rebuilding its view wants.
   */
  deliverFrom?: "new" | "all" | "latest";
  /**
   * Start at this ledger revision (the `revision` of a work event), whatever `deliverFrom` says: a
   * follower that stopped resumes after the last event it handled, and nothing written since is missed.
   */
  fromRevision?: number;
}

export interface EventWatch {
  stop(): Promise<void>;
}

/**
 * Follows the writes of the work ledger bucket with an ordered consumer (no durable state, nothing
 * consumed for others) and turns each into the work events its transition stands for. Events of one
 * item arrive in revision order. A record that fails validation is logged and skipped; a handler that
 * throws is logged and the watch goes on.
 */
export async function watchLedgerEvents(
  kv: KV,
  handler: (event: WorkEvent) => void | Promise<void>,
  options: WatchEventsOptions,
  logger: Logger,
): Promise<EventWatch> {
  const ids = options.workIds && options.workIds.length > 0 ? new Set(options.workIds) : undefined;
  const only = ids && ids.size === 1 ? [...ids][0] : undefined;
  const include =
    options.deliverFrom === "all"
      ? KvWatchInclude.AllHistory
      : options.deliverFrom === "latest"
        ? KvWatchInclude.LastValue
        : KvWatchInclude.UpdatesOnly;
  const from = options.fromRevision;
  const entries = await kv.watch({
    key: only ?? ">",
    ...(from !== undefined && from > 0
      ? { include: KvWatchInclude.AllHistory, resumeFromRevision: from }
      : { include }),
    ignoreDeletes: true,
  });
  const done = (async () => {
    for await (const e of entries) {
      if (e.operation !== "PUT" || !WORK_ID.test(e.key)) continue;
      if (ids && !ids.has(e.key)) continue;
      const r = codec.safeDecode(e.value, `${e.bucket}/${e.key}`);
      if (!r.ok) {
        logger.warn({ key: e.key, err: r.error.message }, "skipping an unreadable work ledger record");
        continue;
      }
      for (const event of eventsOf(r.value, e.revision)) {
        if (options.filter && !options.filter(event)) continue;
        try {
          await handler(event);
        } catch (err) {
          logger.warn(
            { workId: event.workId, type: event.type, err: String(err) },
            "work event handler failed",
          );
        }
      }
    }
  })();
  return {
    async stop() {
      entries.stop();
      await done;
    },
  };
}
