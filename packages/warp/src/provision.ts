import { type BucketSpec, leaseBucketSpec, type StreamSpec } from "@loominal/fabric";
import {
  assertProjectId,
  buckets,
  LEASES_BUCKET_TTL_MS,
  streams,
  subjects,
  type WarpConfig,
} from "@loominal/protocol";
import { messageAcksBucketSpec } from "./acks.js";
import { channelStreamSpec } from "./channels.js";
import { IDENTITY_LEASE_TTL_MS } from "./identity.js";
import { INBOX_LEDGER_BUCKET, inboxStreamSpec } from "./inbox.js";
import { fileLeaseBucketSpec } from "./leases/file-leases.js";
import { REGISTRY_BUCKET } from "./registry.js";
import { dlqStreamSpec } from "./work/dlq.js";
import { LEDGER_HISTORY } from "./work/ledger.js";
import { BOUNDARY_POLICY_BUCKET } from "./work/routing.js";
import { workStreamSpec } from "./work/setup.js";

/**
 * Every stream and bucket Warp uses for one project, with the configuration Warp ensures: what
 * `loominal nats-provision` creates with admin credentials, so that agents (which may not create
 * streams under the generated NATS permissions) find them in place.
 */
export function warpProvisionSpecs(
  projectId: string,
  warp: WarpConfig,
): { streams: StreamSpec[]; buckets: BucketSpec[] } {
  const p = assertProjectId(projectId);
  return {
    streams: [
      ...warp.channels.map((c) =>
        channelStreamSpec({ ...c, subject: subjects.channel(p, c.name), stream: streams.channel(p, c.name) }),
      ),
      inboxStreamSpec(p, warp.inbox),
      workStreamSpec(p),
      dlqStreamSpec(p, warp.work.dlqMaxAgeMs),
    ],
    buckets: [
      { name: buckets.workLedger(p), history: LEDGER_HISTORY },
      REGISTRY_BUCKET,
      INBOX_LEDGER_BUCKET,
      messageAcksBucketSpec(p, warp.inbox.maxAgeMs),
      leaseBucketSpec(buckets.agentIdentities(), IDENTITY_LEASE_TTL_MS),
      // Work maintenance runs under a lease here (`<p>.work-maintenance`).
      leaseBucketSpec(buckets.leases(), LEASES_BUCKET_TTL_MS),
      BOUNDARY_POLICY_BUCKET,
      { name: buckets.offerJournal(), history: 1 },
      fileLeaseBucketSpec(p),
      { name: buckets.reminders(p), history: 1 },
    ],
  };
}
