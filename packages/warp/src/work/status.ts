import type { Fabric } from "@loominal/fabric";
import { streams, subjects } from "@loominal/protocol";
import type { DeadLetterStore } from "./dlq.js";

export interface BoundaryQueueStatus {
  boundary: string;
  /** Offers waiting to be claimed (including failed ones waiting out their retry backoff). */
  queued: number;
  /** Offers delivered to a claimer and not yet acknowledged (claims being worked on, prefetched offers). */
  inFlight: number;
  /** Pull requests currently waiting on this queue (claimers idle for lack of work). */
  waitingClaimers: number;
}

export interface CapabilityQueueStatus {
  capability: string;
  queued: number;
  inFlight: number;
  /** Dead letters of this capability. */
  dead: number;
  boundaries: BoundaryQueueStatus[];
}

export interface QueueStatus {
  capabilities: CapabilityQueueStatus[];
}

/** The boundary and capability of an offer subject `loom.<p>.work.<boundary>.<capability>`, else undefined. */
export function offerSubjectParts(
  projectId: string,
  subject: string | undefined,
): { boundary: string; capability: string } | undefined {
  const prefix = subjects.workAll(projectId).slice(0, -1);
  if (!subject?.startsWith(prefix)) return undefined;
  const [b, c, ...rest] = subject.slice(prefix.length).split(".");
  return b && c && rest.length === 0 ? { boundary: b, capability: c } : undefined;
}

/**
 * Queue depth, in-flight and dead counts per capability (and boundary) of a project, from stream and
 * consumer state: no consumer is created and nothing is read from the queue.
 */
export async function queueStatus(
  fabric: Fabric,
  projectId: string,
  dlq: DeadLetterStore,
  capability?: string,
): Promise<QueueStatus> {
  const jsm = await fabric.jsm();
  const stream = streams.work(projectId);
  const parse = (subject: string | undefined) => offerSubjectParts(projectId, subject);
  const rows = new Map<string, BoundaryQueueStatus & { capability: string }>();
  const row = (b: string, c: string) => {
    const key = `${c}\u0000${b}`;
    let r = rows.get(key);
    if (!r) {
      r = { capability: c, boundary: b, queued: 0, inFlight: 0, waitingClaimers: 0 };
      rows.set(key, r);
    }
    return r;
  };
  const info = await jsm.streams.info(stream, { subjects_filter: subjects.workAll(projectId) });
  for (const [subject, n] of Object.entries(info.state.subjects ?? {})) {
    const at = parse(subject);
    if (at && (capability === undefined || at.capability === capability))
      row(at.boundary, at.capability).queued += n;
  }
  for await (const ci of jsm.consumers.list(stream)) {
    const at = parse(ci.config.filter_subject);
    if (!at || (capability !== undefined && at.capability !== capability)) continue;
    const r = row(at.boundary, at.capability);
    r.inFlight = ci.num_ack_pending;
    r.waitingClaimers = ci.num_waiting;
  }
  const deadCounts = await dlq.countsByCapability();
  const byCapability = new Map<string, CapabilityQueueStatus>();
  const cap = (c: string) => {
    let s = byCapability.get(c);
    if (!s) {
      s = { capability: c, queued: 0, inFlight: 0, dead: deadCounts.get(c) ?? 0, boundaries: [] };
      byCapability.set(c, s);
    }
    return s;
  };
  for (const r of rows.values()) {
    // Stream counts include delivered-but-unacknowledged messages; queued is what nobody holds.
    const queued = Math.max(0, r.queued - r.inFlight);
    const s = cap(r.capability);
    s.boundaries.push({
      boundary: r.boundary,
      queued,
      inFlight: r.inFlight,
      waitingClaimers: r.waitingClaimers,
    });
    s.queued += queued;
    s.inFlight += r.inFlight;
  }
  for (const c of deadCounts.keys()) if (capability === undefined || c === capability) cap(c);
  if (capability !== undefined) cap(capability);
  const capabilities = [...byCapability.values()].sort((a, b) => a.capability.localeCompare(b.capability));
  for (const c of capabilities) c.boundaries.sort((a, b) => a.boundary.localeCompare(b.boundary));
  return { capabilities };
}
