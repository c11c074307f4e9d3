import { bucketKeys, casUpdate, ensureBucket, type Fabric, jsonCodec, type Logger } from "@loominal/fabric";
import {
  buckets,
  LoominalError,
  type SpinUpRecord,
  spinUpRecordSchema,
  type TargetRecord,
  targetRecordSchema,
} from "@loominal/protocol";
import type { KV } from "@nats-io/kv";

const targetCodec = jsonCodec(targetRecordSchema);
const spinUpCodec = jsonCodec(spinUpRecordSchema);

async function readAll<T>(
  kv: KV,
  decode: (v: Uint8Array, where: string) => { ok: true; value: T } | { ok: false; error: Error },
  logger: Logger,
): Promise<T[]> {
  const keys = await bucketKeys(kv);
  const out: T[] = [];
  for (const k of keys.sort()) {
    const e = await kv.get(k);
    if (e?.operation !== "PUT") continue;
    const r = decode(e.value, k);
    if (r.ok) out.push(r.value);
    else logger.warn({ key: k, err: r.error.message }, "skipping an invalid record");
  }
  return out;
}

/** Spin-up targets of one project: KV `loom-targets-<p>`, key `<targetId>`. Names are unique per project. */
export class TargetStore {
  readonly projectId: string;
  #fabric: Fabric;
  #logger: Logger;
  #cache: { at: number; list: TargetRecord[] } | undefined;

  constructor(fabric: Fabric, projectId: string, logger: Logger) {
    this.#fabric = fabric;
    this.projectId = projectId;
    this.#logger = logger;
  }

  #kv(): Promise<KV> {
    return ensureBucket(this.#fabric, { name: buckets.targets(this.projectId), history: 5 });
  }

  async list(): Promise<TargetRecord[]> {
    const all = await readAll(await this.#kv(), (v, w) => targetCodec.safeDecode(v, w), this.#logger);
    const sorted = all.sort((a, b) => a.name.localeCompare(b.name));
    this.#cache = { at: Date.now(), list: sorted };
    return sorted;
  }

  /** The list read at most `maxAgeMs` ago (this process's own changes show at once). */
  async listCached(maxAgeMs: number): Promise<TargetRecord[]> {
    if (this.#cache && Date.now() - this.#cache.at < maxAgeMs) return this.#cache.list;
    return this.list();
  }

  /** By id or by name. */
  async find(idOrName: string): Promise<TargetRecord | undefined> {
    if (/^[0-9a-f]{32}$/.test(idOrName)) {
      const e = await (await this.#kv()).get(idOrName);
      if (e?.operation === "PUT") {
        const r = targetCodec.safeDecode(e.value, idOrName);
        if (r.ok) return r.value;
      }
    }
    return (await this.list()).find((t) => t.name === idOrName);
  }

  async get(idOrName: string): Promise<TargetRecord> {
    const t = await this.find(idOrName);
    if (!t)
      throw new LoominalError(
        "not_found",
        `no target ${idOrName} in project ${this.projectId}; list them with GET /api/targets`,
        {
          details: { target: idOrName },
        },
      );
    return t;
  }

  async create(record: TargetRecord): Promise<TargetRecord> {
    const kv = await this.#kv();
    if ((await this.list()).some((t) => t.name === record.name))
      throw new LoominalError(
        "already_exists",
        `a target named ${record.name} already exists in project ${this.projectId}`,
        {
          details: { name: record.name },
        },
      );
    await kv.create(record.targetId, targetCodec.encode(targetRecordSchema.parse(record)));
    this.#cache = undefined;
    return record;
  }

  /** Changes a target by compare-and-set; `change` returning undefined leaves it as it is. */
  async update(
    targetId: string,
    change: (cur: TargetRecord) => TargetRecord | undefined,
  ): Promise<TargetRecord> {
    const kv = await this.#kv();
    let missing = false;
    const r = await casUpdate(kv, targetId, targetCodec, (cur) => {
      if (!cur) {
        missing = true;
        return undefined;
      }
      const next = change(cur);
      return next ? targetRecordSchema.parse({ ...next, updatedAt: new Date().toISOString() }) : undefined;
    });
    this.#cache = undefined;
    if (missing || !r.value)
      throw new LoominalError("not_found", `no target ${targetId} in project ${this.projectId}`);
    return r.value;
  }

  async delete(targetId: string): Promise<void> {
    await (await this.#kv()).delete(targetId);
    this.#cache = undefined;
  }
}

/** Spin-ups of one project: KV `loom-spinups-<p>`, key `<spinUpId>`. */
export class SpinUpStore {
  readonly projectId: string;
  #fabric: Fabric;
  #logger: Logger;

  constructor(fabric: Fabric, projectId: string, logger: Logger) {
    this.#fabric = fabric;
    this.projectId = projectId;
    this.#logger = logger;
  }

  #kv(): Promise<KV> {
    // Finished spin-ups are kept a week.
    return ensureBucket(this.#fabric, {
      name: buckets.spinUps(this.projectId),
      history: 1,
      ttlMs: 7 * 86_400_000,
    });
  }

  async list(): Promise<SpinUpRecord[]> {
    return readAll(await this.#kv(), (v, w) => spinUpCodec.safeDecode(v, w), this.#logger);
  }

  async get(spinUpId: string): Promise<SpinUpRecord | undefined> {
    const e = await (await this.#kv()).get(spinUpId);
    if (e?.operation !== "PUT") return undefined;
    const r = spinUpCodec.safeDecode(e.value, spinUpId);
    return r.ok ? r.value : undefined;
  }

  async create(record: SpinUpRecord): Promise<SpinUpRecord> {
    await (await this.#kv()).create(record.spinUpId, spinUpCodec.encode(spinUpRecordSchema.parse(record)));
    return record;
  }

  /** CAS change; `change` returning undefined leaves the record (and the result is what is stored). */
  async update(
    spinUpId: string,
    change: (cur: SpinUpRecord) => SpinUpRecord | undefined,
  ): Promise<{ record: SpinUpRecord | undefined; changed: boolean }> {
    const kv = await this.#kv();
    const r = await casUpdate(kv, spinUpId, spinUpCodec, (cur) => {
      if (!cur) return undefined;
      const next = change(cur);
      return next ? spinUpRecordSchema.parse({ ...next, updatedAt: new Date().toISOString() }) : undefined;
    });
    return { record: r.value, changed: r.changed };
  }
}
