import { AckPolicy, type Consumer, consumerInfo, DeliverPolicy, type Fabric } from "@loominal/fabric";
import { consumers, streams, subjects } from "@loominal/protocol";
import { WorkConsumerMismatchError } from "./errors.js";

const NS_PER_MS = 1_000_000;

/** The work stream of a project: one offer message per queued item, work-queue retention. */
export function workStreamSpec(projectId: string) {
  return {
    name: streams.work(projectId),
    subjects: [subjects.workAll(projectId)],
    retention: "workqueue" as const,
    duplicateWindowMs: 120_000,
  };
}

/**
 * Ensures the durable consumer of one boundary+capability. Its filter is exactly one offer subject,
 * so consumers never overlap (a work-queue stream refuses overlapping filters). max_deliver is
 * unlimited: attempts are counted in the ledger, which sends the item to the DLQ itself — a server
 * cap would leave the message stranded in the stream instead.
 */
export async function ensureWorkConsumer(
  fabric: Fabric,
  projectId: string,
  boundary: string,
  capability: string,
  ackWaitMs: number,
): Promise<{ consumer: Consumer; name: string }> {
  const jsm = await fabric.jsm();
  const stream = streams.work(projectId);
  const name = consumers.work(boundary, capability);
  const filter = subjects.workOffer(projectId, boundary, capability);
  const ackWaitNs = ackWaitMs * NS_PER_MS;
  let existing = await consumerInfo(jsm, stream, name);
  if (!existing) {
    existing = await jsm.consumers.add(stream, {
      durable_name: name,
      ack_policy: AckPolicy.Explicit,
      ack_wait: ackWaitNs,
      max_deliver: -1,
      deliver_policy: DeliverPolicy.All,
      filter_subject: filter,
      max_ack_pending: 10_000,
    });
  }
  if (existing.config.ack_wait !== ackWaitNs)
    throw new WorkConsumerMismatchError(
      name,
      "ackWaitMs",
      (existing.config.ack_wait ?? 0) / NS_PER_MS,
      ackWaitMs,
    );
  if (existing.config.filter_subject !== filter)
    throw new WorkConsumerMismatchError(name, "filter_subject", existing.config.filter_subject, filter);
  return { consumer: await fabric.js.consumers.get(stream, name), name };
}
