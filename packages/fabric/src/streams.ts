import {
  type ConsumerInfo,
  DiscardPolicy,
  JetStreamApiError,
  type JetStreamManager,
  RetentionPolicy,
  StorageType,
  type StreamConfig,
  type StreamInfo,
  type StreamInfoRequestOptions,
} from "@nats-io/jetstream";
import { Bucket, type KV } from "@nats-io/kv";
import type { Fabric } from "./connection.js";
import {
  type ConfigDifference,
  ConfigMismatchError,
  isPermissionViolation,
  NatsPermissionError,
  NotProvisionedError,
} from "./errors.js";

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

/**
 * What this connection has already ensured, by stream name (a bucket's stream is `KV_<bucket>`), so that
 * ensuring on every operation costs nothing after the first. An entry is dropped when the stream turns out
 * to be missing (forgetStream / withStream / withBucket), and every entry is dropped when the connection
 * comes back after a disconnect, because a restarted server may have lost its store.
 */
interface EnsureCache {
  streams: Map<string, Map<string, Promise<StreamInfo>>>;
  buckets: Map<string, Map<string, Promise<KV>>>;
}

const caches = new WeakMap<Fabric, EnsureCache>();

function cacheOf(fabric: Fabric): EnsureCache {
  let cache = caches.get(fabric);
  if (!cache) {
    const created: EnsureCache = { streams: new Map(), buckets: new Map() };
    cache = created;
    caches.set(fabric, created);
    fabric.onStateChange((state) => {
      if (state === "reconnecting" || state === "connected") {
        created.streams.clear();
        created.buckets.clear();
      }
    });
  }
  return cache;
}

function remember<T>(
  byName: Map<string, Map<string, Promise<T>>>,
  name: string,
  key: string,
  make: () => Promise<T>,
): Promise<T> {
  let entries = byName.get(name);
  if (!entries) {
    entries = new Map();
    byName.set(name, entries);
  }
  const hit = entries.get(key);
  if (hit) return hit;
  const p = make();
  const own = entries;
  own.set(key, p);
  p.catch(() => {
    if (own.get(key) === p) own.delete(key);
  });
  return p;
}

/**
 * Creates the stream if it does not exist; if it exists with the same configuration, does nothing.
 * With a different configuration it throws ConfigMismatchError (policy "error", the default) or updates
 * the stream (policy "update", for settings the operator changed on purpose, such as retention limits).
 * Results are cached per connection, so calling it on every operation costs nothing after the first;
 * after the stream was deleted, call forgetStream (or use withStream, which does) and it is created again.
 */
export function ensureStream(
  fabric: Fabric,
  spec: StreamSpec,
  policy: MismatchPolicy = "error",
): Promise<StreamInfo> {
  return remember(cacheOf(fabric).streams, spec.name, `${policy}:${JSON.stringify(spec)}`, () =>
    ensureStreamUncached(fabric, spec, policy),
  );
}

/** Forgets that this connection ensured the stream, so the next ensureStream checks (and recreates) it. */
export function forgetStream(fabric: Fabric, name: string): void {
  caches.get(fabric)?.streams.delete(name);
}

/** Forgets that this connection ensured the bucket, so the next ensureBucket checks (and recreates) it. */
export function forgetBucket(fabric: Fabric, name: string): void {
  const cache = caches.get(fabric);
  cache?.buckets.delete(name);
  cache?.streams.delete(`KV_${name}`);
}

/**
 * Whether an error may mean "the stream is not there": the API's stream-not-found (10059), a publish that
 * no stream answered (nats.js reports it as JetStream not enabled), or a timeout (a direct get of a
 * deleted stream is never answered). Only a hint: withStream checks before it recreates anything.
 */
export function mayMeanStreamMissing(err: unknown): boolean {
  if (err instanceof JetStreamApiError && err.code === JS_STREAM_NOT_FOUND) return true;
  if (!(err instanceof Error)) return false;
  return (
    err.name === "StreamNotFoundError" ||
    err.name === "JetStreamNotEnabled" ||
    err.name === "TimeoutError" ||
    /no responders|stream not found/i.test(err.message)
  );
}

/** JetStream API error code: stream not found. */
export const JS_STREAM_NOT_FOUND = 10059;
/** JetStream API error code: consumer not found. */
export const JS_CONSUMER_NOT_FOUND = 10014;

/** Whether an error says a consumer is not there: the consumer, or the stream it was on, is not found. */
export function isConsumerMissing(err: unknown): boolean {
  return (
    err instanceof JetStreamApiError &&
    (err.code === JS_CONSUMER_NOT_FOUND || err.code === JS_STREAM_NOT_FOUND)
  );
}

/** Consumer info, or undefined when the stream has no consumer of that name. */
export async function consumerInfo(
  jsm: JetStreamManager,
  stream: string,
  name: string,
): Promise<ConsumerInfo | undefined> {
  try {
    return await jsm.consumers.info(stream, name);
  } catch (err) {
    if (err instanceof JetStreamApiError && err.code === JS_CONSUMER_NOT_FOUND) return undefined;
    throw err;
  }
}

/**
 * After `err`, whether the stream `name` is gone: true (and this connection's memory of it forgotten, so
 * the next ensure creates it again) when `err` may mean a missing stream and the server confirms it.
 * For code that cannot use withStream / withBucket (several streams, or its own caches to reset).
 */
export async function streamVanished(fabric: Fabric, name: string, err: unknown): Promise<boolean> {
  if (!mayMeanStreamMissing(err)) return false;
  if (await streamInfo(await fabric.jsm(), name)) return false;
  fabric.logger.warn({ stream: name }, "stream is missing; it will be created again");
  forgetStream(fabric, name);
  if (name.startsWith("KV_")) caches.get(fabric)?.buckets.delete(name.slice(3));
  return true;
}

/**
 * Runs `operation` on an ensured stream. If it fails in a way that may mean the stream is gone (deleted,
 * or a server that lost its store) and the stream is indeed missing, the stream is created again and the
 * operation retried once. Any other failure is rethrown as it was.
 */
export async function withStream<T>(
  fabric: Fabric,
  spec: StreamSpec,
  operation: (info: StreamInfo) => Promise<T>,
  policy: MismatchPolicy = "error",
): Promise<T> {
  const info = await ensureStream(fabric, spec, policy);
  try {
    return await operation(info);
  } catch (err) {
    if (!(await streamVanished(fabric, spec.name, err))) throw err;
    return operation(await ensureStream(fabric, spec, policy));
  }
}

/** Like withStream, for a KV bucket: recreates the bucket if it vanished and retries once. */
export async function withBucket<T>(
  fabric: Fabric,
  spec: BucketSpec,
  operation: (kv: KV) => Promise<T>,
): Promise<T> {
  const kv = await ensureBucket(fabric, spec);
  try {
    return await operation(kv);
  } catch (err) {
    if (!(await streamVanished(fabric, `KV_${spec.name}`, err))) throw err;
    return operation(await ensureBucket(fabric, spec));
  }
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
      if (!now) {
        if (isPermissionViolation(err)) throw new NotProvisionedError("stream", spec.name, { cause: err });
        throw err;
      }
      return reconcile(fabric, jsm, now, spec, policy);
    }
  }
  return reconcile(fabric, jsm, existing, spec, policy);
}

async function reconcile(
  fabric: Fabric,
  jsm: JetStreamManager,
  existing: StreamInfo,
  spec: StreamSpec,
  policy: MismatchPolicy,
): Promise<StreamInfo> {
  const diffs = streamDifferences(existing.config, spec);
  if (diffs.length === 0) return existing;
  if (policy === "update") {
    try {
      return await jsm.streams.update(spec.name, toStreamConfig(spec));
    } catch (err) {
      if (!isPermissionViolation(err)) throw err;
      // A user without stream administration keeps what the operator provisioned: limits are the
      // operator's to set. A difference in what the stream is (subjects, retention, storage) is an error.
      const structural = diffs.filter((d) => STRUCTURAL_FIELDS.has(d.field));
      if (structural.length > 0) throw new ConfigMismatchError("stream", spec.name, structural);
      fabric.logger.warn(
        { stream: spec.name, differences: diffs },
        "stream limits differ from this process's configuration and this NATS user may not change them; using the provisioned ones (re-run loominal nats-provision to apply)",
      );
      return existing;
    }
  }
  throw new ConfigMismatchError("stream", spec.name, diffs);
}

/** Stream settings that change what a stream is, not only how much it keeps. */
const STRUCTURAL_FIELDS = new Set(["subjects", "retention", "storage", "allow_direct"]);

/**
 * Stream info, or undefined when the stream does not exist. A user who may not even look at the stream
 * gets NatsPermissionError (it belongs to another project, or the user's permissions predate it).
 */
export async function streamInfo(
  jsm: JetStreamManager,
  name: string,
  options?: Partial<StreamInfoRequestOptions>,
): Promise<StreamInfo | undefined> {
  try {
    return await jsm.streams.info(name, options);
  } catch (err) {
    if (err instanceof JetStreamApiError && err.code === JS_STREAM_NOT_FOUND) return undefined;
    if (isPermissionViolation(err)) throw new NatsPermissionError(`access to stream ${name}`, { cause: err });
    throw err;
  }
}

/**
 * The keys of a KV bucket matching `filter` (a subject filter over keys, `>` for all), read from the
 * stream's per-subject counts: one request per page of subjects and no consumer. `kv.keys()` waits on an
 * ordered consumer that, when a key expires or is replaced between its creation and its first delivery,
 * only ends at the consumer's idle heartbeat seconds later; this cannot. A key whose last entry is a
 * delete or purge marker is still listed: callers read the entry and skip those, as they must anyway for
 * a key deleted after the listing.
 */
export async function bucketKeys(kv: KV, filter = ">"): Promise<string[]> {
  if (!(kv instanceof Bucket)) throw new TypeError("bucketKeys needs a bucket opened through the fabric");
  const info = await kv.jsm.streams.info(kv.stream, { subjects_filter: `${kv.prefix}.${filter}` });
  const skip = kv.prefix.length + 1;
  return Object.keys(info.state.subjects ?? {}).map((s) => s.slice(skip));
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

/**
 * Creates the bucket if missing and opens it (with direct get when the bucket allows it).
 * An existing bucket with a different history, TTL, size limit, replicas or storage is reported with
 * ConfigMismatchError, never silently used. Cached per connection like ensureStream (forgetBucket,
 * withBucket).
 */
export function ensureBucket(fabric: Fabric, spec: BucketSpec): Promise<KV> {
  return remember(cacheOf(fabric).buckets, spec.name, JSON.stringify(spec), () =>
    ensureBucketUncached(fabric, spec),
  );
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
      if (!info) {
        if (isPermissionViolation(err)) throw new NotProvisionedError("bucket", spec.name, { cause: err });
        throw err;
      }
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

/** What `provision` did with each stream and bucket. */
export interface ProvisionResult {
  kind: "stream" | "bucket";
  name: string;
  outcome: "created" | "verified" | "updated";
}

/**
 * Creates (or checks, and updates the limits of) every stream and bucket given, with the same
 * configuration the libraries ensure. What `loominal nats-provision` runs with admin credentials, so
 * that agents holding no stream administration find everything in place.
 */
export async function provision(
  fabric: Fabric,
  wanted: { streams: StreamSpec[]; buckets: BucketSpec[] },
): Promise<ProvisionResult[]> {
  const jsm = await fabric.jsm();
  const out: ProvisionResult[] = [];
  for (const spec of wanted.streams) {
    const before = await streamInfo(jsm, spec.name);
    await ensureStream(fabric, spec, "update");
    out.push({
      kind: "stream",
      name: spec.name,
      outcome: !before
        ? "created"
        : streamDifferences(before.config, spec).length === 0
          ? "verified"
          : "updated",
    });
  }
  for (const spec of wanted.buckets) {
    const before = await streamInfo(jsm, `KV_${spec.name}`);
    await ensureBucket(fabric, spec);
    out.push({ kind: "bucket", name: spec.name, outcome: before ? "verified" : "created" });
  }
  return out;
}
