import { type BucketSpec, type Fabric, jsonCodec, type Logger, watchBucket } from "@loominal/fabric";
import {
  type WorkEvent,
  type WorkEventType,
  type WorkItem,
  type WorkTransition,
  workItemSchema,
} from "@loominal/protocol";

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
  details?: WorkEventDetails,
): WorkTransition {
  const t: WorkTransition = { events, agentId, at };
  if (details?.note !== undefined) t.note = details.note;
  if (details?.reason !== undefined) t.reason = details.reason;
  if (details?.retryable !== undefined) t.retryable = details.retryable;
  return t;
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
  /**
   * Deliver every item's events whatever its scope. Without it, an event reaches this watcher only if
   * the item's scope lets this agent read it (as `get` and `list`). For a coordinator that must see
   * everything (Weft), never for an agent-facing surface.
   */
  asCoordinator?: boolean;
}

export interface EventWatch {
  stop(): Promise<void>;
  /** Resolves when the watch has ended (stopped, or its connection closed). */
  readonly closed: Promise<void>;
  /** How many times the watch lost its consumer (or the ledger bucket) and started again. */
  readonly restarts: number;
}

/**
 * Follows the writes of the work ledger bucket (fabric `watchBucket`: an ordered consumer, no durable
 * state, nothing consumed for others) and turns each into the work events its transition stands for.
 * Events of one item arrive in revision order. A record that fails validation is logged and skipped; a
 * handler that throws is logged and the watch goes on. A watch that loses its consumer or its bucket
 * says so in the log and starts again from the revision after the last one it delivered, so following
 * never ends silently.
 */
export async function watchLedgerEvents(
  fabric: Fabric,
  spec: BucketSpec,
  handler: (event: WorkEvent) => void | Promise<void>,
  options: WatchEventsOptions,
  logger: Logger,
): Promise<EventWatch> {
  const ids = options.workIds && options.workIds.length > 0 ? new Set(options.workIds) : undefined;
  const only = ids && ids.size === 1 ? [...ids][0] : undefined;
  const include =
    options.deliverFrom === "all" ? "history" : options.deliverFrom === "latest" ? "last" : "updates";
  const from = options.fromRevision;
  const watch = watchBucket(
    fabric,
    spec,
    async (change) => {
      if (change.operation !== "PUT" || !WORK_ID.test(change.key)) return;
      if (ids && !ids.has(change.key)) return;
      const r = codec.safeDecode(change.value, `${spec.name}/${change.key}`);
      if (!r.ok) {
        logger.warn({ key: change.key, err: r.error.message }, "skipping an unreadable work ledger record");
        return;
      }
      for (const event of eventsOf(r.value, change.revision)) {
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
    },
    {
      key: only ?? ">",
      include,
      ...(from !== undefined && from > 0 ? { fromRevision: from } : {}),
      ignoreDeletes: true,
      onRestart: (r) =>
        logger.warn({ bucket: spec.name, ...r }, "work event watch lost its consumer; following again"),
    },
  );
  await watch.ready;
  return {
    stop: () => watch.stop(),
    closed: watch.closed,
    get restarts() {
      return watch.restarts;
    },
  };
}
