import { JetStreamApiError } from "@nats-io/jetstream";
import type { KV, KvEntry } from "@nats-io/kv";
import type { JsonCodec } from "./codec.js";
import { CasConflictError } from "./errors.js";
import { LruMap } from "./lru.js";

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
  /**
   * Let this update share one write with other combinable updates of the key that are waiting for it in
   * this process (group commit): each mutation is applied in turn to the value the previous one left,
   * and every caller gets the value and revision finally written. Only for mutations whose callers need
   * no value of their own (the value after just their change): a counter handing out numbers must not.
   */
  combine?: boolean;
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

/** One caller's update waiting for, or part of, a write of its key. */
interface Pending {
  codec: JsonCodec<unknown>;
  mutate: CasMutation<unknown>;
  options: CasOptions;
  resolve(result: CasResult<unknown>): void;
  reject(err: unknown): void;
}

/** Per KV handle: the updates waiting per key, and what this process knows of recently used keys. */
interface HandleState {
  /** Keys with a write in flight, and the updates that arrived meanwhile. */
  waiting: Map<string, Pending[]>;
  known: LruMap<string, Known>;
}

/**
 * How many keys' revisions `casUpdate` remembers per KV handle. Beyond it the key used longest ago is
 * forgotten, which costs that key one get on its next update. Only keys with an update in flight are
 * held otherwise, so memory stays bounded however many keys a long-lived process touches.
 */
export const CAS_KNOWN_KEYS_MAX = 10_000;

/** At most this many waiting updates of one key go into one write. */
const BATCH_MAX = 256;

const handleStates = new WeakMap<KV, HandleState>();

function stateOf(kv: KV): HandleState {
  let s = handleStates.get(kv);
  if (!s) {
    s = { waiting: new Map(), known: new LruMap(CAS_KNOWN_KEYS_MAX) };
    handleStates.set(kv, s);
  }
  return s;
}

/**
 * Read-modify-write of one JSON key by compare-and-set on its revision.
 *
 * Updates of the same key through the same KV handle are queued in-process, so one process never races
 * itself; with `combine`, the updates waiting for a key's write in flight go into its next write together
 * (see CasOptions.combine). Across processes a conflict (10071) re-reads and retries with jittered exponential backoff, at most
 * `maxAttempts` times, then throws CasConflictError. The revision returned by the last write is reused
 * (for the `CAS_KNOWN_KEYS_MAX` keys used most recently), so an uncontended update costs one round trip.
 */
export function casUpdate<T>(
  kv: KV,
  key: string,
  codec: JsonCodec<T>,
  mutate: CasMutation<T>,
  options: CasOptions = {},
): Promise<CasResult<T>> {
  const state = stateOf(kv);
  return new Promise<CasResult<T>>((resolve, reject) => {
    const pending: Pending = {
      codec: codec as JsonCodec<unknown>,
      mutate: mutate as CasMutation<unknown>,
      options,
      resolve: resolve as (r: CasResult<unknown>) => void,
      reject,
    };
    const queue = state.waiting.get(key);
    if (queue) {
      queue.push(pending);
      return;
    }
    state.waiting.set(key, [pending]);
    void drain(kv, key, state);
  });
}

/** Writes a key's waiting updates, a batch at a time, until none is left. */
async function drain(kv: KV, key: string, state: HandleState): Promise<void> {
  const queue = state.waiting.get(key);
  if (!queue) return;
  while (queue.length > 0) {
    // One batch: a single update, or consecutive combinable ones that read the key through the same codec.
    const codec = queue[0]?.codec;
    let n = 1;
    if (queue[0]?.options.combine) {
      while (n < queue.length && n < BATCH_MAX && queue[n]?.options.combine && queue[n]?.codec === codec) n++;
    }
    const batch = queue.splice(0, n);
    try {
      await casLoop(kv, key, batch, state.known);
    } catch (err) {
      for (const p of batch) p.reject(err);
    }
  }
  state.waiting.delete(key);
}

/** How many keys of this KV handle casUpdate remembers a revision for, and how many have updates queued. */
export function casCacheStats(kv: KV): { knownKeys: number; queuedKeys: number } {
  const s = handleStates.get(kv);
  return { knownKeys: s?.known.size ?? 0, queuedKeys: s?.waiting.size ?? 0 };
}

/**
 * Applies a batch of mutations to the key's value in order and writes the result once. A mutation that
 * throws is left out (its caller gets the error; the others go on). Settles every caller of the batch
 * except on a write error, which the caller of casLoop hands to all of them.
 */
async function casLoop(kv: KV, key: string, batch: Pending[], cache: LruMap<string, Known>): Promise<void> {
  const head = batch[0];
  if (!head) return;
  const codec = head.codec;
  const maxAttempts = head.options.maxAttempts ?? 64;
  const base = head.options.baseDelayMs ?? 1;
  const maxDelay = head.options.maxDelayMs ?? 100;
  let live = batch;
  let known = cache.get(key);
  let lastErr: unknown;
  for (let attempt = 0; attempt < maxAttempts; attempt++) {
    const cached = known !== undefined;
    if (!known) known = await read(kv, key, codec);
    let value = known.value;
    let declined = false;
    const changed: boolean[] = [];
    const failed = new Map<Pending, unknown>();
    for (const p of live) {
      let next: unknown;
      try {
        next = await p.mutate(value, known.revision);
      } catch (err) {
        failed.set(p, err);
        changed.push(false);
        continue;
      }
      if (next === undefined) {
        declined = true;
        changed.push(false);
      } else {
        value = next;
        changed.push(true);
      }
    }
    if (declined && cached) {
      // A remembered value may be stale (another process wrote since): declining on it would skip a change
      // the stored value needs, so a decline counts only once it is confirmed on a fresh read.
      known = undefined;
      cache.delete(key);
      attempt--;
      continue;
    }
    if (failed.size > 0) {
      for (const [p, err] of failed) p.reject(err);
      const kept: boolean[] = [];
      live = live.filter((p, i) => {
        if (failed.has(p)) return false;
        kept.push(changed[i] ?? false);
        return true;
      });
      changed.length = 0;
      changed.push(...kept);
    }
    if (!changed.includes(true)) {
      cache.set(key, known);
      for (const p of live) p.resolve({ value: known.value, revision: known.revision, changed: false });
      return;
    }
    try {
      const data = codec.encode(value);
      const revision =
        known.revision === 0 ? await kv.create(key, data) : await kv.update(key, data, known.revision);
      cache.set(key, { revision, value });
      live.forEach((p, i) => {
        p.resolve({ value, revision, changed: changed[i] ?? false });
      });
      return;
    } catch (err) {
      if (!isCasConflict(err)) {
        cache.delete(key);
        throw err;
      }
      lastErr = err;
      known = undefined;
      cache.delete(key);
      // A remembered revision that conflicts was stale, not contended: read and write again at once, as a
      // first attempt (a cancel through a replica whose remembered copy of the run is old pays one read).
      if (cached) {
        attempt--;
        continue;
      }
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
 * Notes a value of a key this process has just written outside casUpdate (a `kv.create`, say) or read (already
 * decoded), with its revision, so the next casUpdate of the key starts from it instead of reading it. Kept only
 * when newer than what is known. Should another process have written the key since, that update conflicts
 * and reads it then, as with any remembered revision.
 */
export function rememberRevision<T>(kv: KV, key: string, revision: number, value: T): void {
  const known = stateOf(kv).known;
  const current = known.get(key);
  if (current === undefined || current.revision < revision) known.set(key, { revision, value });
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
