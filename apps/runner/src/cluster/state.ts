import {
  bucketKeys,
  casUpdate,
  entryValue,
  forgetRevision,
  isCasConflict,
  jsonCodec,
  rememberRevision,
} from "@loominal/fabric";
import { keys } from "@loominal/protocol";
import { Bucket, type KV } from "@nats-io/kv";
import {
  type LockRecord,
  lockRecordSchema,
  type PauseRecord,
  pauseRecordSchema,
  type QuotaRecord,
  quotaRecordSchema,
  type RunRecord,
  type RunStatus,
  runRecordSchema,
  TERMINAL,
} from "./records.js";

export const runCodec = jsonCodec(runRecordSchema);
export const quotaCodec = jsonCodec(quotaRecordSchema);
export const pauseCodec = jsonCodec(pauseRecordSchema);
export const lockCodec = jsonCodec(lockRecordSchema);

/** The keys of a bucket under `filter`, deduplicated (one stream-info request; see the fabric's bucketKeys). */
export function listKeys(kv: KV, filter: string): Promise<string[]> {
  return bucketKeys(kv, filter);
}

/** Which status may follow which. Terminal states have no successor: the first writer wins. */
const NEXT: Record<RunStatus, readonly RunStatus[]> = {
  queued: ["running", "cancelled", "failed"],
  running: ["completed", "failed", "cancelled"],
  completed: [],
  failed: [],
  cancelled: [],
};

/** Run records in runner-runs. */
export class RunStore {
  readonly kv: KV;
  constructor(kv: KV) {
    this.kv = kv;
  }

  async get(runId: string): Promise<RunRecord | undefined> {
    return entryValue(await this.kv.get(keys.runnerRun(runId)), runCodec, `run ${runId}`).value;
  }

  /**
   * The record, read for a client (GET of the run or its events). A run not ended is remembered with its
   * revision, so a cancel through this replica soon after writes without reading it again.
   */
  async read(runId: string): Promise<RunRecord | undefined> {
    const key = keys.runnerRun(runId);
    const { revision, value } = entryValue(await this.kv.get(key), runCodec, `run ${runId}`);
    if (value && !TERMINAL.has(value.status)) rememberRevision(this.kv, key, revision, value);
    return value;
  }

  /**
   * Creates the record; false when it exists already (another replica wrote it first). The revision is
   * remembered, so this process's next transition of the run is one write, without a read.
   */
  async create(record: RunRecord): Promise<boolean> {
    const key = keys.runnerRun(record.run_id);
    try {
      rememberRevision(this.kv, key, await this.kv.create(key, runCodec.encode(record)), record);
      return true;
    } catch (err) {
      if (isCasConflict(err)) return false;
      throw err;
    }
  }

  /**
   * Moves the run to `status` by compare-and-set when that transition is allowed from its current
   * status (and `guard`, when given, accepts the current record). Returns the record written, or
   * undefined when the run was already elsewhere (for a terminal state: someone else wrote it first).
   */
  async transition(
    runId: string,
    status: RunStatus,
    patch: Partial<RunRecord>,
    guard?: (current: RunRecord) => boolean,
  ): Promise<RunRecord | undefined> {
    const key = keys.runnerRun(runId);
    const r = await casUpdate(this.kv, key, runCodec, (current) => {
      if (!current || !NEXT[current.status].includes(status)) return undefined;
      if (guard && !guard(current)) return undefined;
      return { ...current, ...patch, status };
    });
    if (TERMINAL.has(status)) forgetRevision(this.kv, key);
    return r.changed ? r.value : undefined;
  }

  /**
   * queued → running by compare-and-set, in one read and one write (one write when this process created
   * the record). When the run is not queued — already running, ended, or not recorded yet — nothing is
   * written and `current` is the stored record (undefined when there is none).
   */
  async start(
    runId: string,
    patch: Partial<RunRecord>,
  ): Promise<{ started: RunRecord } | { started?: undefined; current: RunRecord | undefined }> {
    const r = await casUpdate(this.kv, keys.runnerRun(runId), runCodec, (current) =>
      current?.status === "queued" ? { ...current, ...patch, status: "running" as const } : undefined,
    );
    return r.changed && r.value ? { started: r.value } : { current: r.value };
  }

  /**
   * Writes `cancelled` over a queued or running run by compare-and-set (one read and one write when
   * uncontended). `from` is the status it had; a run already ended or unknown comes back as `current`.
   */
  async cancel(
    runId: string,
    patch: Pick<RunRecord, "stop_reason" | "ended_at">,
  ): Promise<{ ended: RunRecord; from: RunStatus } | { ended?: undefined; current: RunRecord | undefined }> {
    const key = keys.runnerRun(runId);
    let from: RunStatus | undefined;
    const r = await casUpdate(this.kv, key, runCodec, (current) => {
      from = current?.status;
      if (!current || TERMINAL.has(current.status)) return undefined;
      return { ...current, ...patch, status: "cancelled" as const };
    });
    forgetRevision(this.kv, key);
    if (r.changed && r.value && from !== undefined) return { ended: r.value, from };
    return { current: r.value };
  }

  /** Updates fields of a non-terminal run (usage, progress) without changing its status. */
  async patch(runId: string, patch: Partial<RunRecord>): Promise<void> {
    await casUpdate(this.kv, keys.runnerRun(runId), runCodec, (current) =>
      current && !TERMINAL.has(current.status) ? { ...current, ...patch, status: current.status } : undefined,
    );
  }

  /** The user's runs, newest first (at most `limit`). */
  async listByUser(userId: string, limit: number): Promise<RunRecord[]> {
    const ids = await listKeys(this.kv, keys.runnerUserRunsPrefix(userId));
    const records = await Promise.all(
      ids.map(async (k) => entryValue(await this.kv.get(k), runCodec, k).value),
    );
    return records
      .filter((r): r is RunRecord => r !== undefined && r.user_id === userId)
      .sort((a, b) => b.created_at.localeCompare(a.created_at))
      .slice(0, limit);
  }
}

/**
 * Admissions and releases of one user that wait for a write of that user's set in flight share the next
 * write (one round trip for all of them): none needs a value of its own from it.
 */
const COMBINE = { combine: true } as const;

export type QuotaAdmission = { admitted: true } | { admitted: false; active: number };

/** How long an emptied quota set is kept before a walk removes it (ms): a user often comes back soon. */
export const EMPTY_QUOTA_KEEP_MS = 2_000;

/**
 * Removes a key's messages up to and including `revision` from the bucket's stream (an emptied set, or the
 * delete marker an older version left), so the key is no longer listed. A write after it has a higher
 * sequence and is kept: this never loses a value written meanwhile, and a compare-and-set against the
 * removed revision fails and reads again.
 */
export async function purgeUpTo(kv: KV, key: string, revision: number): Promise<void> {
  if (!(kv instanceof Bucket)) return;
  await kv.jsm.streams.purge(kv.stream, { filter: `${kv.prefix}.${key}`, seq: revision + 1 });
}

/** Per-user admission in runner-quotas: the set of admitted run ids per user, changed only by CAS. */
export class QuotaStore {
  readonly kv: KV;
  readonly #emptyKeepMs: number;
  constructor(kv: KV, options: { emptyKeepMs?: number } = {}) {
    this.kv = kv;
    this.#emptyKeepMs = options.emptyKeepMs ?? EMPTY_QUOTA_KEEP_MS;
  }

  /**
   * Adds the run to the user's set unless the set already holds `cap` runs. A run already in the set (a
   * repeated request) keeps its slot and is noted as accepted by `replicaId` now, so the reaper does not
   * free it as the slot of a dead acceptor that never wrote the record.
   */
  async acquire(userId: string, runId: string, replicaId: string, cap: number): Promise<QuotaAdmission> {
    let full = 0;
    await casUpdate(
      this.kv,
      keys.runnerQuota(userId),
      quotaCodec,
      (current) => {
        const runs = { ...(current?.runs ?? {}) };
        full = 0;
        if (runs[runId] === replicaId) return undefined;
        if (runs[runId] !== undefined) {
          runs[runId] = replicaId;
          return { user_id: userId, runs };
        }
        if (Object.keys(runs).length >= cap) {
          full = Object.keys(runs).length;
          return undefined;
        }
        runs[runId] = replicaId;
        return { user_id: userId, runs };
      },
      COMBINE,
    );
    return full > 0 ? { admitted: false, active: full } : { admitted: true };
  }

  /**
   * Removes runs from the user's set (idempotent): one compare-and-set. An emptied set stays (the user's
   * next admission updates it in one write); the walks of `all()` remove it once it has stayed empty for
   * EMPTY_QUOTA_KEEP_MS, which keeps the reaper's walk to users with recent runs. With `acceptedBy`, only
   * runs still noted as accepted by that replica are removed.
   */
  async release(userId: string, runIds: string[], acceptedBy?: string): Promise<void> {
    const key = keys.runnerQuota(userId);
    const held = (current: QuotaRecord, id: string) =>
      current.runs[id] !== undefined && (acceptedBy === undefined || current.runs[id] === acceptedBy);
    await casUpdate(
      this.kv,
      key,
      quotaCodec,
      (current) => {
        if (!current || !runIds.some((id) => held(current, id))) return undefined;
        const runs = { ...current.runs };
        for (const id of runIds) if (held(current, id)) delete runs[id];
        return { user_id: userId, runs };
      },
      COMBINE,
    );
  }

  async get(userId: string): Promise<QuotaRecord | undefined> {
    return entryValue(await this.kv.get(keys.runnerQuota(userId)), quotaCodec, `quota of ${userId}`).value;
  }

  /**
   * Every user's set with runs in it (for stats and the reaper). A set that has stayed empty for
   * EMPTY_QUOTA_KEEP_MS (its last write is that old), and a delete marker an earlier version left, are
   * removed on the way — up to the revision read, so a set written since is kept: without that, every user
   * who ever had a run would stay in the listing, and each sweep would read them all again.
   */
  async all(): Promise<QuotaRecord[]> {
    const out: QuotaRecord[] = [];
    const list = await listKeys(this.kv, keys.runnerQuotasPrefix());
    const now = Date.now();
    await Promise.all(
      list.map(async (k) => {
        const e = await this.kv.get(k);
        if (!e) return;
        const v = e.operation === "PUT" ? entryValue(e, quotaCodec, k).value : undefined;
        if (v && Object.keys(v.runs).length > 0) {
          out.push(v);
          return;
        }
        if (v && now - e.created.getTime() < this.#emptyKeepMs) return;
        // Housekeeping only: a purge that fails (NATS busy, a user without purge rights) is tried again
        // by the next walk, and must not stop this one.
        await purgeUpTo(this.kv, k, e.revision).catch(() => undefined);
      }),
    );
    return out;
  }
}

/** Session locks and agent_id claims in runner-locks (a TTL bucket: a lock whose run stops refreshing it expires). */
export class LockStore {
  readonly kv: KV;
  constructor(kv: KV) {
    this.kv = kv;
  }

  /** Takes the lock for the run; false when another run holds it. */
  async take(key: string, runId: string, replicaId: string): Promise<boolean> {
    const value: LockRecord = { run_id: runId, replica_id: replicaId, at: new Date().toISOString() };
    try {
      await this.kv.create(key, lockCodec.encode(value));
      return true;
    } catch (err) {
      if (!isCasConflict(err)) throw err;
    }
    // Held: by this very run (a retry), or by a run that already ended without releasing it?
    const entry = await this.kv.get(key);
    const current = entry?.operation === "PUT" ? lockCodec.safeDecode(entry.value, key) : undefined;
    if (current?.ok && current.value.run_id === runId) return true;
    return false;
  }

  /** Rewrites the lock so its TTL starts again, if the run still holds it. */
  async refresh(key: string, runId: string, replicaId: string): Promise<void> {
    const entry = await this.kv.get(key);
    if (entry?.operation !== "PUT") return;
    const current = lockCodec.safeDecode(entry.value, key);
    if (!current.ok || current.value.run_id !== runId) return;
    await this.kv
      .update(
        key,
        lockCodec.encode({ run_id: runId, replica_id: replicaId, at: new Date().toISOString() }),
        entry.revision,
      )
      .catch((err: unknown) => {
        if (!isCasConflict(err)) throw err;
      });
  }

  /** Deletes the lock if this run holds it. */
  async release(key: string, runId: string): Promise<void> {
    const entry = await this.kv.get(key);
    if (entry?.operation !== "PUT") return;
    const current = lockCodec.safeDecode(entry.value, key);
    if (!current.ok || current.value.run_id !== runId) return;
    await this.kv.delete(key, { previousSeq: entry.revision }).catch((err: unknown) => {
      if (!isCasConflict(err)) throw err;
    });
  }

  async holder(key: string): Promise<LockRecord | undefined> {
    const entry = await this.kv.get(key);
    if (entry?.operation !== "PUT") return undefined;
    const current = lockCodec.safeDecode(entry.value, key);
    return current.ok ? current.value : undefined;
  }
}

/** Locks a run holds, as keys of runner-locks. */
export function lockKeysOf(run: { session_id: string | null; agent_id: string | null }): string[] {
  return [
    ...(run.session_id !== null ? [keys.runnerSessionLock(run.session_id)] : []),
    ...(run.agent_id !== null ? [keys.runnerAgentIdLock(run.agent_id)] : []),
  ];
}

export type PauseTransition =
  | { ok: true; record: PauseRecord }
  | { ok: false; current: PauseRecord["state"] };

/** The pause flag in runner-state, changed by CAS. */
export class PauseStore {
  readonly kv: KV;
  constructor(kv: KV) {
    this.kv = kv;
  }

  async get(): Promise<PauseRecord> {
    const v = entryValue(await this.kv.get(keys.runnerPause()), pauseCodec, "pause").value;
    return v ?? { state: "running", since: new Date(0).toISOString(), by: "" };
  }

  /** running → pausing (to: "pausing") or pausing → running (to: "running"); any other is refused. */
  async set(to: PauseRecord["state"], by: string): Promise<PauseTransition> {
    let refused: PauseRecord["state"] | undefined;
    const r = await casUpdate(this.kv, keys.runnerPause(), pauseCodec, (current) => {
      const from = current?.state ?? "running";
      if (from === to) {
        refused = from;
        return undefined;
      }
      refused = undefined;
      return { state: to, since: new Date().toISOString(), by };
    });
    if (refused !== undefined || !r.value) return { ok: false, current: refused ?? "running" };
    return { ok: true, record: r.value };
  }
}
