import type { Logger } from "@loominal/fabric";
import type { WorkEvent } from "@loominal/protocol";

/** A running follower of work events: it restarts itself after losing its consumer; `closed` says when it ended. */
export interface EventFollower {
  stop(): unknown;
  readonly closed?: Promise<void>;
}

/** Where work events come from (Warp's WorkQueue.watchEvents). */
export type WatchEvents = (handler: (event: WorkEvent) => void) => EventFollower | Promise<EventFollower>;

/**
 * Keeps one follower of work events running for the orchestrator: `ensure()` starts it when there is
 * none (a failure is logged and tried again on the next call), and a follower that ended (its connection
 * closed) is forgotten so the next `ensure()` replaces it. Losing its consumer or the ledger bucket is
 * handled inside the follower itself, which restarts and catches up.
 */
export class WorkEventFollower {
  #watchEvents: WatchEvents;
  #onEvent: (event: WorkEvent) => void;
  #logger: Logger;
  #watch: EventFollower | undefined;
  #starting = false;
  #stopped = false;

  constructor(watchEvents: WatchEvents, onEvent: (event: WorkEvent) => void, logger: Logger) {
    this.#watchEvents = watchEvents;
    this.#onEvent = onEvent;
    this.#logger = logger;
  }

  /** Whether a follower is running. */
  get following(): boolean {
    return this.#watch !== undefined;
  }

  async ensure(): Promise<void> {
    if (this.#watch || this.#starting || this.#stopped) return;
    this.#starting = true;
    try {
      const watch = await this.#watchEvents((e) => this.#onEvent(e));
      this.#watch = watch;
      if (this.#stopped) await watch.stop();
      void watch.closed?.then(() => {
        if (this.#watch !== watch || this.#stopped) return;
        this.#logger.warn("work event watch ended; following again on the next tick");
        this.#watch = undefined;
      });
    } catch (err) {
      this.#logger.warn({ err: String(err) }, "could not follow work events yet; will retry");
    } finally {
      this.#starting = false;
    }
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#watch?.stop();
    this.#watch = undefined;
  }
}
