import { type Fabric, type JetStreamManager, jsonCodec, streamInfo } from "@loominal/fabric";
import {
  type AgentRecord,
  buckets,
  canRead,
  consumers,
  streams,
  subjects,
  workItemSchema,
  workOfferMessageSchema,
} from "@loominal/protocol";
import { offerSubjectParts } from "./status.js";

/** The parts of an agent's registry entry that decide which offers it could claim. */
export type WaitingWorkAgent = Pick<
  AgentRecord,
  "agentId" | "userId" | "agentType" | "capabilities" | "boundaries"
>;

/** An offer waiting to be claimed, as a reminder shows it. */
export interface WaitingOffer {
  /** Its message's sequence in the work stream. */
  seq: number;
  workId: string;
  taskId: string;
  capability: string;
  boundary: string;
  priority: number;
  description: string;
  createdAt: string;
}

export interface WaitingWorkOptions {
  /** `stream` of the previous result: `after` counts only while the work stream is that same one. */
  stream?: string;
  /** Per offer subject, the sequence up to which offers were already looked at (`lookedAt` of the previous result). */
  after?: Readonly<Record<string, number>>;
  /** Offer messages read per call, at most (default 20). Newer offers past it are counted, not listed. */
  maxReads?: number;
}

export interface WaitingWork {
  /** When the work stream was created (a new stream starts its sequences again); absent: no work stream. */
  stream?: string;
  /**
   * Offers newer than `after` that are still pending in the ledger and that the agent may claim (its
   * capabilities and boundaries, the item's scope and required agent type), newest first.
   */
  offers: WaitingOffer[];
  /**
   * Per capability with new offers: how many offers of it wait in the queue in all (old ones included;
   * delivered but unacknowledged ones left out). Counted only when there are new offers.
   */
  waiting: Array<{ capability: string; count: number }>;
  /** Per offer subject of the agent's capabilities, the sequence up to which offers were looked at. */
  lookedAt: Record<string, number>;
}

const DEFAULT_MAX_READS = 20;
const offerCodec = jsonCodec(workOfferMessageSchema);
const itemCodec = jsonCodec(workItemSchema);

/**
 * Work waiting for an agent's capabilities that it has not been told about: the offers that arrived in
 * the work stream after `after`, still pending, that it may claim. Cheap enough for every Claude Code hook:
 * one stream-info request with per-subject counts, then, per offer subject of its capabilities that holds
 * messages, one message read past `after` (nothing new: that read finds nothing). New offers cost a read
 * each (at most `maxReads`, then the newest sequence is taken and the rest only counted), one ledger read
 * each and one consumer-info request per subject. Nothing is consumed, claimed or created.
 */
export async function waitingWork(
  fabric: Fabric,
  projectId: string,
  agent: WaitingWorkAgent,
  options: WaitingWorkOptions = {},
): Promise<WaitingWork> {
  const none: WaitingWork = { offers: [], waiting: [], lookedAt: {} };
  if (agent.capabilities.length === 0) return none;
  const jsm = await fabric.jsm();
  const stream = streams.work(projectId);
  const info = await streamInfo(jsm, stream, { subjects_filter: subjects.workAll(projectId) });
  if (!info) return none;
  const capabilities = new Set(agent.capabilities);
  const boundaries = new Set(agent.boundaries);
  const mine: Array<{ subject: string; boundary: string; capability: string; count: number }> = [];
  for (const [subject, count] of Object.entries(info.state.subjects ?? {})) {
    const at = offerSubjectParts(projectId, subject);
    if (!at || count === 0 || !capabilities.has(at.capability)) continue;
    if (boundaries.size > 0 && !boundaries.has(at.boundary)) continue;
    mine.push({ subject, ...at, count });
  }
  const after = options.stream === info.created ? (options.after ?? {}) : {};
  const lookedAt: Record<string, number> = {};
  let budget = Math.max(1, Math.floor(options.maxReads ?? DEFAULT_MAX_READS));
  const read: WaitingOffer[] = [];
  for (const s of mine) {
    let seq = after[s.subject] ?? 0;
    for (;;) {
      if (budget === 0) {
        // Out of reads: whatever else is new on this subject is counted below, not listed.
        const newest = await jsm.streams.getMessage(stream, { last_by_subj: s.subject });
        if (newest) seq = Math.max(seq, newest.seq);
        break;
      }
      const m = await nextOffer(jsm, stream, s.subject, seq + 1);
      if (!m) break;
      budget--;
      seq = m.seq;
      const r = offerCodec.safeDecode(m.data, `${stream}#${m.seq}`);
      if (!r.ok) continue;
      const item = r.value.item;
      const mayRead = canRead(
        item.scope,
        { projectId: item.projectId, agentId: item.offeredBy.agentId, userId: item.offeredBy.userId },
        { projectId, agentId: agent.agentId, userId: agent.userId },
      );
      if (!mayRead || (item.requiredAgentType !== undefined && item.requiredAgentType !== agent.agentType))
        continue;
      if (read.some((o) => o.workId === item.workId)) continue;
      read.push({
        seq: m.seq,
        workId: item.workId,
        taskId: item.taskId,
        capability: item.capability,
        boundary: item.boundary,
        priority: item.priority,
        description: item.description,
        createdAt: item.createdAt,
      });
    }
    lookedAt[s.subject] = seq;
  }
  if (read.length === 0) return { stream: info.created, offers: [], waiting: [], lookedAt };

  // The offer message stays in the stream while its item is claimed (and after a cancel, until a
  // claimer drops it): the ledger says which are still waiting.
  const ledger = buckets.workLedger(projectId);
  const pending = await Promise.all(
    read.map(async (o) => {
      const e = await jsm.streams.getMessage(`KV_${ledger}`, { last_by_subj: `$KV.${ledger}.${o.workId}` });
      if (!e || e.header?.get("KV-Operation")) return false;
      const r = itemCodec.safeDecode(e.data, `${ledger}/${o.workId}`);
      return r.ok && r.value.status === "pending";
    }),
  );
  const offers = read.filter((_, i) => pending[i]).sort((a, b) => b.seq - a.seq);
  if (offers.length === 0) return { stream: info.created, offers, waiting: [], lookedAt };

  const counts = new Map<string, number>();
  const withNew = new Set(offers.map((o) => o.capability));
  // An offer just found pending counts even if the consumer's numbers say otherwise (a claim lapsing).
  for (const o of offers) counts.set(o.capability, (counts.get(o.capability) ?? 0) + 1);
  const queuedOf = new Map<string, number>();
  await Promise.all(
    mine
      .filter((s) => withNew.has(s.capability))
      .map(async (s) => {
        const ci = await jsm.consumers
          .info(stream, consumers.work(s.boundary, s.capability))
          .catch(() => undefined);
        const queued = Math.max(0, s.count - (ci?.num_ack_pending ?? 0));
        queuedOf.set(s.capability, (queuedOf.get(s.capability) ?? 0) + queued);
      }),
  );
  for (const [capability, queued] of queuedOf)
    counts.set(capability, Math.max(queued, counts.get(capability) ?? 0));
  const waiting = [...counts.entries()]
    .map(([capability, count]) => ({ capability, count }))
    .sort((a, b) => b.count - a.count || a.capability.localeCompare(b.capability));
  return { stream: info.created, offers, waiting, lookedAt };
}

/** The first message on `subject` at or after `seq` (nats-server answers `next_by_subj` since 2.9). */
async function nextOffer(jsm: JetStreamManager, stream: string, subject: string, seq: number) {
  // The client's type for this request names only seq or last_by_subj; the server reads next_by_subj too.
  const query = { seq, next_by_subj: subject } as { seq: number };
  return jsm.streams.getMessage(stream, query);
}
