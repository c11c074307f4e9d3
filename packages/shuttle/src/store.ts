import {
  type BucketSpec,
  bucketKeys,
  casUpdate,
  ensureBucket,
  type Fabric,
  isUnavailableError,
  jsonCodec,
  type KV,
  type Logger,
} from "@loominal/fabric";
import {
  AGENT_ID_RE,
  buckets,
  type OrchestrationRecord,
  orchestrationRecordSchema,
} from "@loominal/protocol";
import type { WorkDir } from "./paths.js";

export const RECORD_FILE = "orchestration.json";

const codec = jsonCodec(orchestrationRecordSchema);

/** nats-server's default max_payload, used when the connection does not say. */
const DEFAULT_MAX_PAYLOAD = 1024 * 1024;
/** Room left below max_payload for the headers of the KV message. */
const HEADER_ROOM_BYTES = 4 * 1024;
/** Characters kept of each long text in the compact form. */
const COMPACT_TEXT_CHARS = 200;
const COMPACT_CHECKPOINTS = 5;

export function clip(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/**
 * The record without its bulky fields, mirrored when the whole record does not fit in one KV value:
 * workers' results are replaced by a note, descriptions, errors, notes and the task are cut to
 * 200 characters (the task to 1 000), and only the 5 newest checkpoints are kept. The work dir keeps the
 * whole record.
 */
export function compactRecord(record: OrchestrationRecord): OrchestrationRecord {
  return {
    ...record,
    task: clip(record.task, 1_000),
    history: record.history.map((h) => (h.note ? { ...h, note: clip(h.note, COMPACT_TEXT_CHARS) } : h)),
    checkpoints: record.checkpoints
      .slice(-COMPACT_CHECKPOINTS)
      .map((c) => (c.note ? { ...c, note: clip(c.note, COMPACT_TEXT_CHARS) } : c)),
    subtasks: record.subtasks.map((s) => ({
      ...s,
      description: clip(s.description, COMPACT_TEXT_CHARS),
      ...(s.result !== undefined
        ? {
            result: {
              omitted:
                "left out of the KV mirror to fit its size limit; shuttle_get_results on the server that owns this orchestration returns it",
            },
          }
        : {}),
      ...(s.error !== undefined ? { error: clip(s.error, COMPACT_TEXT_CHARS) } : {}),
      ...(s.lastNote !== undefined ? { lastNote: clip(s.lastNote, COMPACT_TEXT_CHARS) } : {}),
    })),
  };
}

/**
 * Where orchestrations live: a JSON file per orchestration in the work dir (the source of truth, written
 * first, works without NATS) and a mirror in the KV bucket `loom-shuttle-<p>` for other processes of the
 * project. A write the bucket could not take (NATS down) is remembered and pushed when NATS is back; the
 * mirror only ever moves forward (a copy with a lower `version` never replaces a higher one). A record
 * larger than one KV value (the server's max_payload) is mirrored in compact form (`compactRecord`) and
 * logged; one record the bucket refuses never holds up the others.
 */
export class OrchestrationStore {
  readonly workDir: WorkDir;
  #fabric: Fabric;
  #projectId: string;
  #logger: Logger;
  #pending = new Set<string>();
  /** Orchestrations whose latest mirror is the compact form (logged once per orchestration). */
  #compacted = new Set<string>();
  #flushing: Promise<void> | undefined;
  #stopStateListener: () => void;
  #closed = false;

  constructor(options: { workDir: WorkDir; fabric: Fabric; projectId: string; logger: Logger }) {
    this.workDir = options.workDir;
    this.#fabric = options.fabric;
    this.#projectId = options.projectId;
    this.#logger = options.logger;
    this.#stopStateListener = this.#fabric.onStateChange((state) => {
      if (state === "connected") void this.flush();
    });
  }

  /** Orchestration ids whose latest version has not reached the bucket yet. */
  get pendingMirror(): string[] {
    return [...this.#pending];
  }

  async bucket(): Promise<KV> {
    await this.#fabric.ready(0);
    return ensureBucket(this.#fabric, shuttleBucketSpec(this.#projectId));
  }

  /** Reads an orchestration from the work dir; undefined when it is not there. A bad file is reported. */
  async load(orchestrationId: string): Promise<OrchestrationRecord | undefined> {
    if (!AGENT_ID_RE.test(orchestrationId)) return undefined;
    const file = await this.workDir.readFile(this.workDir.path(orchestrationId, RECORD_FILE));
    if (!file) return undefined;
    const decoded = codec.safeDecode(Buffer.from(file.content, "utf8"), `${orchestrationId}/${RECORD_FILE}`);
    if (!decoded.ok) {
      this.#logger.warn(
        { orchestrationId, err: decoded.error.message },
        "skipping an unreadable orchestration file",
      );
      return undefined;
    }
    return decoded.value;
  }

  /** Every orchestration in the work dir. */
  async listLocal(): Promise<OrchestrationRecord[]> {
    const ids = (await this.workDir.listDirs()).filter((d) => AGENT_ID_RE.test(d));
    const records = await Promise.all(
      ids.map((id) =>
        this.load(id).catch((err) => {
          this.#logger.warn(
            { orchestrationId: id, err: String(err) },
            "skipping an unreadable orchestration",
          );
          return undefined;
        }),
      ),
    );
    return records.filter((r): r is OrchestrationRecord => r !== undefined);
  }

  /**
   * Writes the record to the work dir, then to the bucket. The bucket write is skipped (and queued) when
   * NATS is unreachable, so saving never fails for want of NATS.
   */
  async save(record: OrchestrationRecord): Promise<void> {
    await this.workDir.writeFile(
      [record.orchestrationId, RECORD_FILE],
      `${JSON.stringify(record, null, 2)}\n`,
    );
    this.#pending.add(record.orchestrationId);
    if (this.#fabric.isConnected) await this.flush();
  }

  /** Reads one orchestration from the bucket (for orchestrations created elsewhere in the project). */
  async loadRemote(orchestrationId: string): Promise<OrchestrationRecord | undefined> {
    if (!AGENT_ID_RE.test(orchestrationId) || !this.#fabric.isConnected) return undefined;
    try {
      const kv = await this.bucket();
      const entry = await kv.get(orchestrationId);
      if (entry?.operation !== "PUT") return undefined;
      const decoded = codec.safeDecode(entry.value, `${buckets.shuttle(this.#projectId)}/${orchestrationId}`);
      if (!decoded.ok) {
        this.#logger.warn(
          { orchestrationId, err: decoded.error.message },
          "skipping an invalid orchestration record",
        );
        return undefined;
      }
      return decoded.value;
    } catch (err) {
      this.#logger.warn({ orchestrationId, err: String(err) }, "could not read the orchestration bucket");
      return undefined;
    }
  }

  /** Every orchestration in the bucket, at most `max`; empty when NATS is unreachable. */
  async listRemote(max = 1_000): Promise<OrchestrationRecord[]> {
    if (!this.#fabric.isConnected) return [];
    try {
      const kv = await this.bucket();
      const ids: string[] = [];
      for (const k of await bucketKeys(kv)) {
        if (AGENT_ID_RE.test(k)) ids.push(k);
        if (ids.length >= max) break;
      }
      const records = await Promise.all(ids.map((id) => this.loadRemote(id)));
      return records.filter((r): r is OrchestrationRecord => r !== undefined);
    } catch (err) {
      this.#logger.warn({ err: String(err) }, "could not list the orchestration bucket");
      return [];
    }
  }

  /** Marks every local orchestration for mirroring (at start, so writes made while NATS was down catch up). */
  async markAllPending(): Promise<void> {
    for (const id of (await this.workDir.listDirs()).filter((d) => AGENT_ID_RE.test(d)))
      this.#pending.add(id);
  }

  /** Pushes pending orchestrations to the bucket; what fails stays pending. One flush at a time. */
  flush(): Promise<void> {
    if (this.#flushing) return this.#flushing.then(() => (this.#pending.size > 0 ? this.flush() : undefined));
    this.#flushing = this.#flushOnce().finally(() => {
      this.#flushing = undefined;
    });
    return this.#flushing;
  }

  async #flushOnce(): Promise<void> {
    if (this.#closed || !this.#fabric.isConnected || this.#pending.size === 0) return;
    let kv: KV;
    try {
      kv = await this.bucket();
    } catch (err) {
      this.#logger.warn({ err: String(err) }, "orchestration bucket unavailable; will retry");
      return;
    }
    for (const id of [...this.#pending]) {
      if (this.#closed || !this.#fabric.isConnected) return;
      this.#pending.delete(id);
      let mirrored: OrchestrationRecord | undefined;
      try {
        // The file is read again so the newest version goes out, whichever save queued it.
        const record = await this.load(id);
        mirrored = record && this.#mirrorForm(record);
      } catch (err) {
        this.#logger.error(
          { orchestrationId: id, err: String(err) },
          "cannot read an orchestration to mirror it",
        );
        continue;
      }
      if (!mirrored) continue;
      const value = mirrored;
      try {
        await casUpdate(kv, id, codec, (current) =>
          current && current.version >= value.version ? undefined : value,
        );
      } catch (err) {
        this.#pending.add(id);
        this.#logger.warn(
          { orchestrationId: id, err: String(err) },
          "could not mirror an orchestration; will retry",
        );
        // NATS gone: stop here. Anything else concerns this record only; the others still go out.
        if (isUnavailableError(err) || !this.#fabric.isConnected) return;
      }
    }
  }

  /** The largest KV value the server takes, in bytes (its max_payload less room for headers). */
  mirrorLimit(): number {
    let max = DEFAULT_MAX_PAYLOAD;
    try {
      max = this.#fabric.nc.info?.max_payload ?? max;
    } catch {
      // Not connected: the default is as good a guess as any; nothing is written before reconnecting.
    }
    return max - HEADER_ROOM_BYTES;
  }

  /** The record as it fits in the bucket: whole, else compact; undefined when not even that fits. */
  #mirrorForm(record: OrchestrationRecord): OrchestrationRecord | undefined {
    const id = record.orchestrationId;
    const limit = this.mirrorLimit();
    const bytes = codec.encode(record).byteLength;
    if (bytes <= limit) {
      this.#compacted.delete(id);
      return record;
    }
    const compact = compactRecord(record);
    const compactBytes = codec.encode(compact).byteLength;
    if (compactBytes <= limit) {
      if (!this.#compacted.has(id)) {
        this.#logger.warn(
          { orchestrationId: id, bytes, compactBytes, limit },
          "orchestration record is larger than a KV value may be; mirroring a compact form (results, long texts and older checkpoints left out). The work dir keeps the whole record",
        );
        this.#compacted.add(id);
      }
      return compact;
    }
    this.#logger.error(
      { orchestrationId: id, bytes, compactBytes, limit },
      "orchestration record does not fit in a KV value even in compact form; it is not mirrored (the work dir keeps it)",
    );
    return undefined;
  }

  close(): void {
    this.#closed = true;
    this.#stopStateListener();
  }
}

/** The orchestration bucket of a project (what `loominal nats-provision` creates for Shuttle). */
export function shuttleBucketSpec(projectId: string): BucketSpec {
  return { name: buckets.shuttle(projectId), history: 1 };
}
