import { JetStreamApiError } from "@nats-io/jetstream";
import type { KV, KvEntry } from "@nats-io/kv";
import type { JsonCodec } from "./codec.js";
import { CasConflictError } from "./errors.js";

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

interface KeyState {
  tail: Promise<unknown>;
  /** Last revision and value this process wrote or read; saves a get on the next update. */
  known?: { revision: number; value: unknown };
}

const keyStates = new WeakMap<KV, Map<string, KeyState>>();

function stateOf(kv: KV, key: string): KeyState {
  let m = keyStates.get(kv);
  if (!m) {
    m = new Map();
    keyStates.set(kv, m);
  }
  let s = m.get(key);
  if (!s) {
    s = { tail: Promise.resolve() };
    m.set(key, s);
  }
  return s;
}

/**
 * Read-modify-write of one JSON key by compare-and-set on its revision.
 *
 * Updates of the same key through the same KV handle are queued in-process, so one process never
 * races itself; across processes a conflict (10071) re-reads and retries with jittered exponential
 * backoff, at most `maxAttempts` times, then throws CasConflictError. The revision returned by the
 * last write is reused, so an uncontended update costs one round trip.
 */
export function casUpdate<T>(
  kv: KV,
  key: string,
  codec: JsonCodec<T>,
  mutate: CasMutation<T>,
  options: CasOptions = {},
): Promise<CasResult<T>> {
  const state = stateOf(kv, key);
  const run = state.tail.then(
    () => casLoop(kv, key, codec, mutate, options, state),
    () => casLoop(kv, key, codec, mutate, options, state),
  );
  state.tail = run.catch(() => undefined);
  return run;
}

async function casLoop<T>(
  kv: KV,
  key: string,
  codec: JsonCodec<T>,
  mutate: CasMutation<T>,
  options: CasOptions,
  state: KeyState,
): Promise<CasResult<T>> {
  const maxAttempts = options.maxAttempts ?? 64;
  const base = options.baseDelayMs ?? 1;
  const maxDelay = options.maxDelayMs ?? 100;
  let known = state.known as { revision: number; value: T | undefined } | undefined;
  let lastErr: unknown;
  for (let attempt = 0; attempt < maxAttempts; attempt++) {
    if (!known) known = await read(kv, key, codec);
    const next = await mutate(known.value, known.revision);
    if (next === undefined) {
      state.known = known;
      return { value: known.value, revision: known.revision, changed: false };
    }
    try {
      const data = codec.encode(next);
      const revision =
        known.revision === 0 ? await kv.create(key, data) : await kv.update(key, data, known.revision);
      state.known = { revision, value: next };
      return { value: next, revision, changed: true };
    } catch (err) {
      if (!isCasConflict(err)) {
        state.known = undefined;
        throw err;
      }
      lastErr = err;
      known = undefined;
      state.known = undefined;
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

/** Forgets what this process knows of a key's revision (after a delete done elsewhere, for example). */
export function forgetRevision(kv: KV, key: string): void {
  keyStates.get(kv)?.delete(key);
}

/** The bucket name behind a KV handle (for messages). */
export function bucketName(kv: KV): string {
  const b: unknown = (kv as unknown as { bucket?: unknown }).bucket;
  return typeof b === "string" ? b : "kv";
}
