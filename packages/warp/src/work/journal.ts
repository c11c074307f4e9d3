import {
  bucketKeys,
  ensureBucket,
  type Fabric,
  isCasConflict,
  jsonCodec,
  type KV,
  type Logger,
} from "@loominal/fabric";
import { buckets, keys, randomId } from "@loominal/protocol";
import { z } from "zod";

const journalSchema = z.object({
  holder: z.string(),
  /** Work ids whose ledger write may have landed without their offer message being queued yet. */
  workIds: z.array(z.string()),
});
type JournalRecord = z.infer<typeof journalSchema>;
const codec = jsonCodec(journalSchema);

/** How long after its last write a journal with entries counts as left behind by a dead process. */
export const STRANDED_AFTER_MS = 10_000;
/** A journal is rewritten this long after its last entry left (removals need no hurry). */
const SETTLE_MS = 300;

function openBucket(fabric: Fabric): Promise<KV> {
  return ensureBucket(fabric, { name: buckets.offerJournal(), history: 1 });
}

/**
 * Where one process notes the offers it is about to write to the ledger, until their offer messages are
 * queued. A process that dies between the ledger write and the publish leaves its journal behind, and
 * work maintenance queues the offers it names (see `repairStranded`).
 *
 * Writes are grouped: offers that arrive while a journal write is in flight share the next write, so a
 * busy offerer pays about one write per round trip, not one per offer. Entries leave lazily.
 */
export class OfferJournal {
  readonly key: string;
  #fabric: Fabric;
  #holder: string;
  #logger: Logger;
  #entries = new Set<string>();
  #current: Promise<void> | undefined;
  #next: Promise<void> | undefined;
  #settle: NodeJS.Timeout | undefined;
  #written = false;

  constructor(fabric: Fabric, projectId: string, holder: string, logger: Logger) {
    this.#fabric = fabric;
    this.key = keys.offerJournal(projectId, randomId());
    this.#holder = holder;
    this.#logger = logger;
  }

  /** Notes `workId` and resolves once a journal write naming it has landed. */
  enter(workId: string): Promise<void> {
    this.#entries.add(workId);
    return this.#flush();
  }

  /** The offer of `workId` is queued (or given up): it leaves with the next write. */
  leave(workId: string): void {
    this.#entries.delete(workId);
    if (this.#settle) return;
    this.#settle = setTimeout(() => {
      this.#settle = undefined;
      this.#flush().catch((err: unknown) =>
        this.#logger.debug({ err: String(err) }, "offer journal write failed; the next one catches up"),
      );
    }, SETTLE_MS);
    this.#settle.unref();
  }

  /** Removes this process's journal (on close; nothing of it is left in the bucket). */
  async close(): Promise<void> {
    clearTimeout(this.#settle);
    await this.#current?.catch(() => undefined);
    if (!this.#written || this.#entries.size > 0) return;
    // A purge marker on the key (a KV write under this project's prefix), not a stream purge: agent
    // users hold no stream administration on shared buckets (docs/security.md).
    const kv = await openBucket(this.#fabric);
    await kv.purge(this.key).catch(() => undefined);
  }

  #flush(): Promise<void> {
    // A write in flight may have started before the newest entry: chain exactly one more after it,
    // which every entry added meanwhile shares.
    if (this.#next) return this.#next;
    const after = this.#current;
    const next = (async () => {
      await after?.catch(() => undefined);
      this.#next = undefined;
      const write = this.#write();
      this.#current = write;
      await write;
    })();
    this.#next = next;
    return next;
  }

  async #write(): Promise<void> {
    const kv = await openBucket(this.#fabric);
    const record: JournalRecord = { holder: this.#holder, workIds: [...this.#entries] };
    if (record.workIds.length === 0 && !this.#written) return;
    await kv.put(this.key, codec.encode(record));
    this.#written = true;
  }
}

/** A journal left by an offerer that stopped between a ledger write and the publish of its offer. */
export interface StrandedJournal {
  key: string;
  holder: string;
  workIds: string[];
  /** Delete the journal once its offers are queued (only if nobody rewrote it meanwhile). */
  done(): Promise<void>;
}

/** Journals of a project not rewritten for `strandedAfterMs` that still name offers. */
export async function strandedJournals(
  fabric: Fabric,
  projectId: string,
  strandedAfterMs: number,
  logger: Logger,
): Promise<StrandedJournal[]> {
  const kv = await openBucket(fabric);
  const found: StrandedJournal[] = [];
  const names = await bucketKeys(kv, keys.offerJournalPrefix(projectId));
  for (const key of names) {
    const entry = await kv.get(key);
    if (entry?.operation !== "PUT") continue;
    if (Date.now() - entry.created.getTime() < strandedAfterMs) continue;
    const r = codec.safeDecode(entry.value, `${buckets.offerJournal()}/${key}`);
    const revision = entry.revision;
    const done = async () => {
      await kv.delete(key, { previousSeq: revision }).catch((err: unknown) => {
        if (!isCasConflict(err)) throw err;
      });
    };
    if (!r.ok) {
      logger.warn({ key, err: r.error.message }, "removing an unreadable offer journal");
      await done();
      continue;
    }
    if (r.value.workIds.length === 0) {
      // An idle journal of a process that stopped without closing: nothing to repair.
      await done();
      continue;
    }
    found.push({ key, holder: r.value.holder, workIds: r.value.workIds, done });
  }
  return found;
}
