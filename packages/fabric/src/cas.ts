import { JetStreamApiError } from "@nats-io/jetstream";
import type { KV, KvEntry } from "@nats-io/kv";
import type { JsonCodec } from "./codec.js";
import { CasConflictError } from "./errors.js";
import { LruMap } from "./lru.js";
import { KeyedSerialQueue } from "./serial.js";

/** nats-server answers 10071 both for "wrong last sequence" (update) and "key exists" (create). */
export const JS_WRONG_LAST_SEQUENCE = 10071;

export function isCasConflict(err: unknown): boolean {
  return err instanceof JetStreamApiError && err.code === JS_WRONG_LAST_SEQUENCE;
}

export interface CasOptions {
  /** Attempts before CasConflictError (default 64). */
  maxAttempts?: number;
  /** Backoff after a conflict: random in [0, min(maxDelayMs, baseDelayMs·2^n)] (defaults 1 ms, 100 ms). */
  baseDelayMs?: number;
  maxDelayMs?: number;
}

export interface CasResult<T> {
  /** The value now stored (or the current one, when the mutation declined to change it). */
  value: T | undefined;
  /** Revision of `value`; 0 when the key does not exist. */
  revision: number;
  changed: boolean;
}

/**
 * What a mutation returns: the new value, or `undefined` to leave the key as it is.
 * It may be called several times (once per conflict), so it must not have side effects.
 */
export type CasMutation<T> = (
  current: T | undefined,
  revision: number,
) => T | undefined | Promise<T | undefined>;

/** Last revision and value this process wrote or read of a key; saves a get on the next update. */
interface Known {
  revision: number;
  value: unknown;
}

/** Per KV handle: the per-key queue of updates, and what this process knows of recently used keys. */
interface HandleState {
  queue: KeyedSerialQueue<string>;
  known: LruMap<string, Known>;
}

/**
 * How many keys' revisions `casUpdate` remembers per KV handle. Beyond it the key used longest ago is
 * forgotten, which costs that key one get on its next update. The per-key queues hold only keys with an
 * update in flight, so memory stays bounded however many keys a long-lived process touches.
 */
export const CAS_KNOWN_KEYS_MAX = 10_000;

const handleStates = new WeakMap<KV, HandleState>();

function stateOf(kv: KV): HandleState {
  let s = handleStates.get(kv);
  if (!s) {
    s = { queue: new KeyedSerialQueue(), known: new LruMap(CAS_KNOWN_KEYS_MAX) };
    handleStates.set(kv, s);
  }
  return s;
}

/**
 * Read-modify-write of one JSON key by compare-and-set on its revision.
 *
 * Updates of the same key through the same KV handle are queued in-process, so one process never
 * races itself; across processes a conflict (10071) re-reads and retries with jittered exponential
 * backoff, at most `maxAttempts` times, then throws CasConflictError. The revision returned by the
 * last write is reused (for the `CAS_KNOWN_KEYS_MAX` keys used most recently), so an uncontended
 * update costs one round trip.
 */
export function casUpdate<T>(
  kv: KV,
  key: string,
  codec: JsonCodec<T>,
  mutate: CasMutation<T>,
  options: CasOptions = {},
): Promise<CasResult<T>> {
  const state = stateOf(kv);
  return state.queue.run(key, () => casLoop(kv, key, codec, mutate, options, state.known));
}

/** How many keys of this KV handle casUpdate remembers a revision for, and how many have updates queued. */
export function casCacheStats(kv: KV): { knownKeys: number; queuedKeys: number } {
  const s = handleStates.get(kv);
  return { knownKeys: s?.known.size ?? 0, queuedKeys: s?.queue.size ?? 0 };
}

async function casLoop<T>(
  kv: KV,
  key: string,
  codec: JsonCodec<T>,
  mutate: CasMutation<T>,
  options: CasOptions,
  cache: LruMap<string, Known>,
): Promise<CasResult<T>> {
  const maxAttempts = options.maxAttempts ?? 64;
  const base = options.baseDelayMs ?? 1;
  const maxDelay = options.maxDelayMs ?? 100;
  let known = cache.get(key) as { revision: number; value: T | undefined } | undefined;
  let lastErr: unknown;
  for (let attempt = 0; attempt < maxAttempts; attempt++) {
    const cached = known !== undefined;
    if (!known) known = await read(kv, key, codec);
    const next = await mutate(known.value, known.revision);
    if (next === undefined) {
      // A remembered value may be stale (another process wrote since): declining on it would skip a change
      // the stored value needs, so a decline counts only once it is confirmed on a fresh read.
      if (cached) {
        known = undefined;
        cache.delete(key);
        continue;
      }
      cache.set(key, known);
      return { value: known.value, revision: known.revision, changed: false };
    }
    try {
      const data = codec.encode(next);
      const revision =
        known.revision === 0 ? await kv.create(key, data) : await kv.update(key, data, known.revision);
      cache.set(key, { revision, value: next });
      return { value: next, revision, changed: true };
    } catch (err) {
      if (!isCasConflict(err)) {
        cache.delete(key);
        throw err;
      }
      lastErr = err;
      known = undefined;
      cache.delete(key);
      const ceiling = Math.min(maxDelay, base * 2 ** Math.min(attempt, 16));
      await new Promise((r) => setTimeout(r, Math.random() * ceiling));
    }
  }
  throw new CasConflictError(bucketName(kv), key, maxAttempts, { cause: lastErr });
}

async function read<T>(
  kv: KV,
  key: string,
  codec: JsonCodec<T>,
): Promise<{ revision: number; value: T | undefined }> {
  const entry = await kv.get(key);
  return entryValue(entry, codec, key);
}

/**
 * Value and revision of an entry. A deleted or purged key reads as absent but keeps the marker's
 * revision, so the next write is still a compare-and-set against it.
 */
export function entryValue<T>(
  entry: KvEntry | null,
  codec: JsonCodec<T>,
  where: string,
): { revision: number; value: T | undefined } {
  if (!entry) return { revision: 0, value: undefined };
  if (entry.operation !== "PUT") return { revision: entry.revision, value: undefined };
  return { revision: entry.revision, value: codec.decode(entry.value, where) };
}

/**
 * Notes a value this process wrote itself outside casUpdate (a `kv.create`, say) with the revision the write
 * returned, so the next casUpdate of the key starts from it instead of reading it. Should another process
 * have written the key since, that update conflicts and reads it then, as with any remembered revision.
 */
export function rememberRevision<T>(kv: KV, key: string, revision: number, value: T): void {
  stateOf(kv).known.set(key, { revision, value });
}

/**
 * Forgets what this process knows of a key's revision (after a delete done elsewhere, for example).
 * Updates of the key already queued stay queued and still run one at a time.
 */
export function forgetRevision(kv: KV, key: string): void {
  handleStates.get(kv)?.known.delete(key);
}

/** The bucket name behind a KV handle (for messages). */
export function bucketName(kv: KV): string {
  const b: unknown = (kv as unknown as { bucket?: unknown }).bucket;
  return typeof b === "string" ? b : "kv";
}
