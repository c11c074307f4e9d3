import {
  DiscardPolicy,
  JetStreamApiError,
  type JetStreamManager,
  RetentionPolicy,
  StorageType,
  type StreamConfig,
  type StreamInfo,
} from "@nats-io/jetstream";
import type { KV } from "@nats-io/kv";
import type { Fabric } from "./connection.js";
import { type ConfigDifference, ConfigMismatchError } from "./errors.js";

const NS_PER_MS = 1_000_000;

/** A stream as Loominal describes it. Durations are milliseconds here; JetStream stores nanoseconds. */
export interface StreamSpec {
  name: string;
  subjects: string[];
  retention?: "limits" | "workqueue" | "interest";
  storage?: "file" | "memory";
  /** 0 or absent: no age limit. */
  maxAgeMs?: number;
  maxMsgs?: number;
  maxBytes?: number;
  maxMsgsPerSubject?: number;
  maxMsgSize?: number;
  replicas?: number;
  discard?: "old" | "new";
  duplicateWindowMs?: number;
  allowDirect?: boolean;
}

/** What to do when the stream exists with another configuration. */
export type MismatchPolicy = "error" | "update";

function toStreamConfig(spec: StreamSpec): Partial<StreamConfig> & { name: string } {
  const cfg: Partial<StreamConfig> & { name: string } = {
    name: spec.name,
    subjects: spec.subjects,
    retention:
      spec.retention === "workqueue"
        ? RetentionPolicy.Workqueue
        : spec.retention === "interest"
          ? RetentionPolicy.Interest
          : RetentionPolicy.Limits,
    storage: spec.storage === "memory" ? StorageType.Memory : StorageType.File,
    num_replicas: spec.replicas ?? 1,
  };
  if (spec.maxAgeMs !== undefined) cfg.max_age = spec.maxAgeMs * NS_PER_MS;
  if (spec.maxMsgs !== undefined) cfg.max_msgs = spec.maxMsgs;
  if (spec.maxBytes !== undefined) cfg.max_bytes = spec.maxBytes;
  if (spec.maxMsgsPerSubject !== undefined) cfg.max_msgs_per_subject = spec.maxMsgsPerSubject;
  if (spec.maxMsgSize !== undefined) cfg.max_msg_size = spec.maxMsgSize;
  if (spec.discard !== undefined)
    cfg.discard = spec.discard === "new" ? DiscardPolicy.New : DiscardPolicy.Old;
  if (spec.duplicateWindowMs !== undefined) cfg.duplicate_window = spec.duplicateWindowMs * NS_PER_MS;
  if (spec.allowDirect !== undefined) cfg.allow_direct = spec.allowDirect;
  return cfg;
}

/** The fields of `wanted` (only those it sets) that differ in `existing`. */
export function streamDifferences(existing: StreamConfig, spec: StreamSpec): ConfigDifference[] {
  const wanted = toStreamConfig(spec);
  const diffs: ConfigDifference[] = [];
  const compare = (field: keyof StreamConfig) => {
    const w = wanted[field];
    if (w === undefined) return;
    const e = existing[field];
    const same = Array.isArray(w) && Array.isArray(e) ? sameSet(w as string[], e as string[]) : w === e;
    if (!same) diffs.push({ field, existing: e, wanted: w });
  };
  for (const f of [
    "subjects",
    "retention",
    "storage",
    "num_replicas",
    "max_age",
    "max_msgs",
    "max_bytes",
    "max_msgs_per_subject",
    "max_msg_size",
    "discard",
    "duplicate_window",
    "allow_direct",
  ] as const) {
    compare(f);
  }
  return diffs;
}

function sameSet(a: string[], b: string[]): boolean {
  return a.length === b.length && a.every((x) => b.includes(x));
}

const ensuredStreams = new WeakMap<Fabric, Map<string, Promise<StreamInfo>>>();

/**
 * Creates the stream if it does not exist; if it exists with the same configuration, does nothing.
 * With a different configuration it throws ConfigMismatchError (policy "error", the default) or updates
 * the stream (policy "update", for settings the operator changed on purpose, such as retention limits).
 * Results are cached per connection, so calling it on every operation costs nothing after the first.
 */
export function ensureStream(
  fabric: Fabric,
  spec: StreamSpec,
  policy: MismatchPolicy = "error",
): Promise<StreamInfo> {
  let cache = ensuredStreams.get(fabric);
  if (!cache) {
    cache = new Map();
    ensuredStreams.set(fabric, cache);
  }
  const cacheKey = `${policy}:${JSON.stringify(spec)}`;
  const hit = cache.get(cacheKey);
  if (hit) return hit;
  const p = ensureStreamUncached(fabric, spec, policy);
  cache.set(cacheKey, p);
  p.catch(() => cache.delete(cacheKey));
  return p;
}

async function ensureStreamUncached(
  fabric: Fabric,
  spec: StreamSpec,
  policy: MismatchPolicy,
): Promise<StreamInfo> {
  const jsm = await fabric.jsm();
  const existing = await streamInfo(jsm, spec.name);
  if (!existing) {
    try {
      return await jsm.streams.add(toStreamConfig(spec));
    } catch (err) {
      // Someone else created it between our look and our add: compare with theirs.
      const now = await streamInfo(jsm, spec.name);
      if (!now) throw err;
      return reconcile(jsm, now, spec, policy);
    }
  }
  return reconcile(jsm, existing, spec, policy);
}

async function reconcile(
  jsm: JetStreamManager,
  existing: StreamInfo,
  spec: StreamSpec,
  policy: MismatchPolicy,
): Promise<StreamInfo> {
  const diffs = streamDifferences(existing.config, spec);
  if (diffs.length === 0) return existing;
  if (policy === "update") return jsm.streams.update(spec.name, toStreamConfig(spec));
  throw new ConfigMismatchError("stream", spec.name, diffs);
}

/** Stream info, or undefined when the stream does not exist. */
export async function streamInfo(jsm: JetStreamManager, name: string): Promise<StreamInfo | undefined> {
  try {
    return await jsm.streams.info(name);
  } catch (err) {
    if (err instanceof JetStreamApiError && err.code === 10059) return undefined;
    throw err;
  }
}

/** A KV bucket as Loominal describes it. */
export interface BucketSpec {
  name: string;
  /** Values kept per key (1–64). */
  history?: number;
  /**
   * Bucket-wide time to live in milliseconds, counted from each key's last write (stream max_age).
   * Per-key TTL does not exist on nats-server 2.9; this is how Loominal expires keys.
   */
  ttlMs?: number;
  maxBytes?: number;
  maxValueSize?: number;
  replicas?: number;
  storage?: "file" | "memory";
}

const ensuredBuckets = new WeakMap<Fabric, Map<string, Promise<KV>>>();

/**
 * Creates the bucket if missing and opens it (with direct get when the bucket allows it).
 * An existing bucket with a different history, TTL, size limit, replicas or storage is reported with
 * ConfigMismatchError, never silently used. Cached per connection.
 */
export function ensureBucket(fabric: Fabric, spec: BucketSpec): Promise<KV> {
  let cache = ensuredBuckets.get(fabric);
  if (!cache) {
    cache = new Map();
    ensuredBuckets.set(fabric, cache);
  }
  const cacheKey = JSON.stringify(spec);
  const hit = cache.get(cacheKey);
  if (hit) return hit;
  const p = ensureBucketUncached(fabric, spec);
  cache.set(cacheKey, p);
  p.catch(() => cache.delete(cacheKey));
  return p;
}

function bucketStreamSpec(spec: BucketSpec): StreamSpec {
  const s: StreamSpec = {
    name: `KV_${spec.name}`,
    subjects: [`$KV.${spec.name}.>`],
    maxMsgsPerSubject: spec.history ?? 1,
    maxAgeMs: spec.ttlMs ?? 0,
    replicas: spec.replicas ?? 1,
    storage: spec.storage ?? "file",
  };
  if (spec.maxBytes !== undefined) s.maxBytes = spec.maxBytes;
  if (spec.maxValueSize !== undefined) s.maxMsgSize = spec.maxValueSize;
  return s;
}

async function ensureBucketUncached(fabric: Fabric, spec: BucketSpec): Promise<KV> {
  const jsm = await fabric.jsm();
  const streamSpec = bucketStreamSpec(spec);
  const check = (info: StreamInfo) => {
    const diffs = streamDifferences(info.config, streamSpec).map((d) => ({
      ...d,
      field: bucketField(d.field),
      ...(d.field === "max_age"
        ? { existing: Number(d.existing) / NS_PER_MS, wanted: Number(d.wanted) / NS_PER_MS }
        : {}),
    }));
    if (diffs.length > 0) throw new ConfigMismatchError("bucket", spec.name, diffs);
  };
  let info = await streamInfo(jsm, streamSpec.name);
  if (!info) {
    try {
      return await fabric.kvm.create(spec.name, {
        history: spec.history ?? 1,
        ttl: spec.ttlMs ?? 0,
        replicas: spec.replicas ?? 1,
        storage: spec.storage === "memory" ? StorageType.Memory : StorageType.File,
        ...(spec.maxBytes !== undefined ? { max_bytes: spec.maxBytes } : {}),
        ...(spec.maxValueSize !== undefined ? { maxValueSize: spec.maxValueSize } : {}),
      });
    } catch (err) {
      info = await streamInfo(jsm, streamSpec.name);
      if (!info) throw err;
    }
  }
  check(info);
  return fabric.kvm.open(spec.name, { allow_direct: info.config.allow_direct === true });
}

function bucketField(field: string): string {
  switch (field) {
    case "max_msgs_per_subject":
      return "history";
    case "max_age":
      return "ttlMs";
    case "num_replicas":
      return "replicas";
    case "max_bytes":
      return "maxBytes";
    case "max_msg_size":
      return "maxValueSize";
    default:
      return field;
  }
}
