import { casUpdate, ensureBucket, type Fabric, jsonCodec, type Logger } from "@loominal/fabric";
import {
  AGENT_ID_RE,
  buckets,
  type OrchestrationRecord,
  orchestrationRecordSchema,
} from "@loominal/protocol";
import type { KV } from "@nats-io/kv";
import type { WorkDir } from "./paths.js";

export const RECORD_FILE = "orchestration.json";

const codec = jsonCodec(orchestrationRecordSchema);

/**
 * Where orchestrations live: a JSON file per orchestration in the work dir (the source of truth, written
 * first, works without NATS) and a mirror in the KV bucket `loom-shuttle-<p>` for other processes of the
 * project. A write the bucket could not take (NATS down) is remembered and pushed when NATS is back; the
 * mirror only ever moves forward (a copy with a lower `version` never replaces a higher one).
 */
export class OrchestrationStore {
  readonly workDir: WorkDir;
  #fabric: Fabric;
  #projectId: string;
  #logger: Logger;
  #pending = new Set<string>();
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
    return ensureBucket(this.#fabric, { name: buckets.shuttle(this.#projectId), history: 1 });
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
    const records = await Promise.all(ids.map((id) => this.load(id)));
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
      for await (const k of await kv.keys()) {
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
      // The file is read again so the newest version goes out, whichever save queued it.
      const record = await this.load(id);
      this.#pending.delete(id);
      if (!record) continue;
      try {
        await casUpdate(kv, id, codec, (current) =>
          current && current.version >= record.version ? undefined : record,
        );
      } catch (err) {
        this.#pending.add(id);
        this.#logger.warn(
          { orchestrationId: id, err: String(err) },
          "could not mirror an orchestration; will retry",
        );
        return;
      }
    }
  }

  close(): void {
    this.#closed = true;
    this.#stopStateListener();
  }
}
