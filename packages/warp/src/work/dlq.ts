import { type Fabric, jsonCodec, type Logger } from "@loominal/fabric";
import { type DeadLetter, deadLetterSchema, streams, subjects, type WorkItem } from "@loominal/protocol";

const codec = jsonCodec(deadLetterSchema);

export function dlqStreamSpec(projectId: string, maxAgeMs: number) {
  return {
    name: streams.dlq(projectId),
    subjects: [subjects.dlqAll(projectId)],
    retention: "limits" as const,
    maxAgeMs,
    // Listing pages through the stream with direct gets (`next_by_subj`), which need allow_direct.
    allowDirect: true,
    duplicateWindowMs: 120_000,
  };
}

/** A dead letter and where it is stored. */
export interface StoredDeadLetter {
  seq: number;
  letter: DeadLetter;
}

export interface DeadLetterPage {
  letters: StoredDeadLetter[];
  /** Stream sequence to continue from; absent when the end was reached. */
  nextCursor?: string;
}

/**
 * The dead-letter stream of a project: items that failed for good, kept `dlqMaxAgeMs`. A dead letter
 * is a copy for people and tools to look at; the ledger (status `dead`) stays the authority.
 */
export class DeadLetterStore {
  #fabric: Fabric;
  #projectId: string;
  #logger: Logger;

  constructor(fabric: Fabric, projectId: string, logger: Logger) {
    this.#fabric = fabric;
    this.#projectId = projectId;
    this.#logger = logger;
  }

  /** Stores a dead letter; returns its stream sequence. */
  async put(item: WorkItem, reason: string, revision: number): Promise<number> {
    const letter: DeadLetter = {
      workId: item.workId,
      capability: item.capability,
      boundary: item.boundary,
      reason,
      attempts: item.attempts,
      deadAt: item.dead?.at ?? new Date().toISOString(),
      item,
    };
    const ack = await this.#fabric.js.publish(
      subjects.dlq(this.#projectId, item.capability),
      codec.encode(letter),
      {
        msgID: `${item.workId}-${revision}`,
      },
    );
    return ack.seq;
  }

  /** Removes a dead letter (after retry or discard). A letter already gone is not an error. */
  async remove(seq: number): Promise<void> {
    const jsm = await this.#fabric.jsm();
    try {
      await jsm.streams.deleteMessage(streams.dlq(this.#projectId), seq, false);
    } catch (err) {
      this.#logger.debug({ seq, err: String(err) }, "dead letter already removed");
    }
  }

  /**
   * Up to `limit` dead letters from sequence `cursor` on (oldest first), optionally of one capability.
   * Letters that fail validation are logged and skipped.
   */
  async page(limit: number, capability?: string, cursor?: string): Promise<DeadLetterPage> {
    const jsm = await this.#fabric.jsm();
    const stream = streams.dlq(this.#projectId);
    const filter = capability ? subjects.dlq(this.#projectId, capability) : subjects.dlqAll(this.#projectId);
    let seq = cursor ? Number(cursor) : 1;
    const letters: StoredDeadLetter[] = [];
    while (letters.length < limit) {
      const m = await jsm.direct.getMessage(stream, { seq, next_by_subj: filter });
      if (!m) return { letters };
      seq = m.seq + 1;
      const r = codec.safeDecode(m.data, `${stream}#${m.seq}`);
      if (!r.ok) {
        this.#logger.warn({ seq: m.seq, err: r.error.message }, "skipping an invalid dead letter");
        continue;
      }
      letters.push({ seq: m.seq, letter: r.value });
    }
    const more = await jsm.direct.getMessage(stream, { seq, next_by_subj: filter });
    return more ? { letters, nextCursor: String(more.seq) } : { letters };
  }

  /** Dead letters per capability, from the stream's per-subject counts. */
  async countsByCapability(): Promise<Map<string, number>> {
    const jsm = await this.#fabric.jsm();
    const info = await jsm.streams.info(streams.dlq(this.#projectId), {
      subjects_filter: subjects.dlqAll(this.#projectId),
    });
    const prefix = subjects.dlqAll(this.#projectId).slice(0, -1);
    const out = new Map<string, number>();
    for (const [subject, n] of Object.entries(info.state.subjects ?? {})) {
      if (subject.startsWith(prefix)) out.set(subject.slice(prefix.length), n);
    }
    return out;
  }
}
