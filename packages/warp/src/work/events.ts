import { type Fabric, jsonCodec, type Logger } from "@loominal/fabric";
import { streams, subjects, type WorkEvent, type WorkEventType, workEventSchema } from "@loominal/protocol";
import { DeliverPolicy } from "@nats-io/jetstream";
import type { LedgerEntry } from "./ledger.js";

const codec = jsonCodec(workEventSchema);
const DAY_MS = 86_400_000;

/** How long work events are kept: a week of history for coordinators that rebuild their view. */
export const WORK_EVENTS_MAX_AGE_MS = 7 * DAY_MS;

export function workEventsStreamSpec(projectId: string) {
  return {
    name: streams.workEvents(projectId),
    subjects: [subjects.workEventsAll(projectId)],
    retention: "limits" as const,
    maxAgeMs: WORK_EVENTS_MAX_AGE_MS,
    duplicateWindowMs: 120_000,
  };
}

export interface WorkEventDetails {
  note?: string;
  reason?: string;
  retryable?: boolean;
}

/** The event describing the ledger transition that produced `entry`. */
export function workEvent(
  type: WorkEventType,
  entry: LedgerEntry,
  agentId: string,
  details: WorkEventDetails = {},
): WorkEvent {
  const { item, revision } = entry;
  return {
    type,
    workId: item.workId,
    projectId: item.projectId,
    at: new Date().toISOString(),
    agentId,
    status: item.status,
    attempt: item.attempts,
    revision,
    capability: item.capability,
    boundary: item.boundary,
    taskId: item.taskId,
    ...(details.note !== undefined ? { note: details.note } : {}),
    ...(details.reason !== undefined ? { reason: details.reason } : {}),
    ...(details.retryable !== undefined ? { retryable: details.retryable } : {}),
    item,
  };
}

/**
 * Publishes an event and waits for the stream to store it. The message id (workId, revision, type)
 * lets a retried publish be dropped as a duplicate instead of recorded twice.
 */
export async function publishWorkEvent(fabric: Fabric, event: WorkEvent): Promise<void> {
  await fabric.js.publish(subjects.workEvent(event.projectId, event.workId), codec.encode(event), {
    msgID: `${event.workId}-${event.revision}-${event.type}`,
  });
}

export interface WatchEventsOptions {
  /** Only events of these items (filtered on the server when there is exactly one). */
  workIds?: readonly string[];
  /** Only events passing this test. */
  filter?: (event: WorkEvent) => boolean;
  /** "new" (default): events published from now on; "all": every event the stream still holds first. */
  deliverFrom?: "new" | "all";
}

export interface EventWatch {
  stop(): Promise<void>;
}

/**
 * Follows `loom.<p>.work-events.>` with an ordered consumer (no durable state, nothing consumed for
 * others). An event that fails validation is logged and skipped; a handler that throws is logged
 * and the watch goes on.
 */
export async function watchWorkEvents(
  fabric: Fabric,
  projectId: string,
  handler: (event: WorkEvent) => void | Promise<void>,
  options: WatchEventsOptions,
  logger: Logger,
): Promise<EventWatch> {
  const ids = options.workIds && options.workIds.length > 0 ? new Set(options.workIds) : undefined;
  const only = ids && ids.size === 1 ? [...ids][0] : undefined;
  const consumer = await fabric.js.consumers.get(streams.workEvents(projectId), {
    filter_subjects: only ? subjects.workEvent(projectId, only) : subjects.workEventsAll(projectId),
    deliver_policy: options.deliverFrom === "all" ? DeliverPolicy.All : DeliverPolicy.New,
  });
  const messages = await consumer.consume();
  const done = (async () => {
    for await (const m of messages) {
      const r = codec.safeDecode(m.data, m.subject);
      if (!r.ok) {
        logger.warn({ subject: m.subject, err: r.error.message }, "skipping an invalid work event");
        continue;
      }
      const event = r.value;
      if (ids && !ids.has(event.workId)) continue;
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
  })();
  return {
    async stop() {
      await messages.close();
      await done;
    },
  };
}
