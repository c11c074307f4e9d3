import type { Fabric } from "./connection.js";
import type { Logger } from "./logger.js";

export interface GracefulShutdownOptions {
  logger: Logger;
  /** Drained and closed after every closer has run, so closers can still use NATS (hand work back). */
  fabric?: Fabric;
  /** The whole shutdown (closers and drain) gets this long; then the process exits with code 1. Default 10 s. */
  timeoutMs?: number;
  /** Default SIGTERM and SIGINT. */
  signals?: NodeJS.Signals[];
  /** How the process ends (tests replace it). Default process.exit. */
  exit?: (code: number) => void;
}

interface Closer {
  name: string;
  close: () => unknown;
}

/**
 * Graceful shutdown for a service: on SIGTERM or SIGINT (once; a second signal exits at once) it runs the
 * registered closers, last registered first, then drains the NATS connection, then exits 0; 1 when a
 * closer failed or the whole took longer than `timeoutMs`.
 *
 * ```ts
 * const shutdown = new GracefulShutdown({ logger, fabric }).install();
 * shutdown.register("http server", () => new Promise((r) => server.close(() => r())));
 * shutdown.register("work claims", () => worker.handBack());
 * ```
 */
export class GracefulShutdown {
  #options: GracefulShutdownOptions;
  #closers: Closer[] = [];
  #running: Promise<number> | undefined;
  #listeners: Array<[NodeJS.Signals, () => void]> = [];

  constructor(options: GracefulShutdownOptions) {
    this.#options = options;
  }

  /** Whether shutdown has begun (stop taking new work when it has). */
  get stopping(): boolean {
    return this.#running !== undefined;
  }

  /** Adds a closer; returns a function that removes it. Closers run in reverse order of registration. */
  register(name: string, close: () => unknown): () => void {
    const closer = { name, close };
    this.#closers.push(closer);
    return () => {
      this.#closers = this.#closers.filter((c) => c !== closer);
    };
  }

  /** Listens for the signals. */
  install(): this {
    for (const signal of this.#options.signals ?? ["SIGTERM", "SIGINT"]) {
      const listener = () => {
        if (this.#running) {
          this.#options.logger.warn({ signal }, "second signal during shutdown; exiting now");
          this.#exit(1);
          return;
        }
        void this.shutdown(signal);
      };
      process.on(signal, listener);
      this.#listeners.push([signal, listener]);
    }
    return this;
  }

  /** Stops listening for the signals (without shutting down). */
  uninstall(): void {
    for (const [signal, listener] of this.#listeners) process.off(signal, listener);
    this.#listeners = [];
  }

  /**
   * Runs the shutdown once (later calls join it), exits, and resolves with the exit code. `failed` makes
   * the exit code 1 even when every closer succeeds (the process stops because something broke).
   */
  shutdown(reason: string, options: { failed?: boolean } = {}): Promise<number> {
    if (options.failed) this.#failed = true;
    this.#running ??= this.#run(reason);
    return this.#running;
  }

  #failed = false;

  async #run(reason: string): Promise<number> {
    const { logger } = this.#options;
    const timeoutMs = this.#options.timeoutMs ?? 10_000;
    logger.info({ reason, timeoutMs }, "shutting down");
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<"timeout">((resolve) => {
      timer = setTimeout(() => resolve("timeout"), timeoutMs);
    });
    const work = this.#closeAll();
    const outcome = await Promise.race([work, timedOut]);
    clearTimeout(timer);
    let code: number;
    if (outcome === "timeout") {
      logger.error({ timeoutMs, pending: this.#pending }, "shutdown took too long; exiting");
      code = 1;
    } else {
      code = outcome && !this.#failed ? 0 : 1;
      logger.info({ code }, "shut down");
    }
    this.uninstall();
    this.#exit(code);
    return code;
  }

  #pending: string | undefined;

  /** Runs every closer and the drain; resolves with whether all succeeded. */
  async #closeAll(): Promise<boolean> {
    const { logger, fabric } = this.#options;
    let ok = true;
    for (const closer of [...this.#closers].reverse()) {
      this.#pending = closer.name;
      try {
        await closer.close();
      } catch (err) {
        ok = false;
        logger.error({ closer: closer.name, err }, "closer failed during shutdown");
      }
    }
    if (fabric) {
      this.#pending = "NATS drain";
      try {
        await fabric.close();
      } catch (err) {
        ok = false;
        logger.error({ err }, "NATS drain failed during shutdown");
      }
    }
    this.#pending = undefined;
    return ok;
  }

  #exit(code: number): void {
    (this.#options.exit ?? ((c: number) => process.exit(c)))(code);
  }
}
