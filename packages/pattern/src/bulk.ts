import { LoominalError } from "@loominal/protocol";

export type BulkOutcome<T> = ({ ok: true } & T) | { ok: false; error: { code: string; message: string } };

/** The code and message of an item that failed, as a bulk result carries them. */
export function describeError(err: unknown): { code: string; message: string } {
  if (err instanceof LoominalError) return { code: err.code, message: err.message };
  return { code: "internal", message: err instanceof Error ? err.message : String(err) };
}

/** Runs `fn` over `items` with at most `concurrency` in flight; results keep the input order. */
export async function mapBounded<T, R>(
  items: readonly T[],
  concurrency: number,
  fn: (item: T) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
  return results;
}
