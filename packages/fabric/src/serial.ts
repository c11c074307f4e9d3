/**
 * One queue of tasks per key: tasks for the same key run one at a time, in the order they were added;
 * tasks for different keys run concurrently. A failed task does not stop the ones after it.
 *
 * A key's entry is dropped as soon as its last task settles, so the queue holds only the keys with work
 * queued or running, however many keys it has ever seen.
 */
export class KeyedSerialQueue<K = string> {
  #tails = new Map<K, Promise<void>>();

  /** Runs `task` after every task queued earlier for `key` has settled; resolves or rejects as it does. */
  run<T>(key: K, task: () => T | Promise<T>): Promise<T> {
    const previous = this.#tails.get(key) ?? Promise.resolve();
    const result = previous.then(task);
    const settled = result.then(
      () => undefined,
      () => undefined,
    );
    this.#tails.set(key, settled);
    void settled.then(() => {
      if (this.#tails.get(key) === settled) this.#tails.delete(key);
    });
    return result;
  }

  /** Whether a task for `key` is queued or running. */
  busy(key: K): boolean {
    return this.#tails.has(key);
  }

  /** Resolves once every task queued so far (for any key) has settled. */
  async idle(): Promise<void> {
    await Promise.all(this.#tails.values());
  }

  /** How many keys have a task queued or running. */
  get size(): number {
    return this.#tails.size;
  }
}
