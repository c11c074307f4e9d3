import { type Fabric, Lease, type Logger, leaseBucket } from "@loominal/fabric";
import { buckets, LEASES_BUCKET_TTL_MS, leaseKeys } from "@loominal/protocol";

/** One job of the maintenance pass; it should stop early when `signal` aborts (the lease was lost). */
export interface MaintenanceTask {
  name: string;
  run(signal: AbortSignal): Promise<void>;
  /** Run at most once per this many ms (default: every pass). */
  everyMs?: number;
}

export interface WorkMaintenanceOptions {
  fabric: Fabric;
  projectId: string;
  /** Shown as the lease holder. */
  holder: string;
  /** Time between passes while holding the lease, and between tries to take it (ms). */
  intervalMs: number;
  tasks: MaintenanceTask[];
  logger: Logger;
}

/**
 * Runs the work queue's maintenance (lapsed claims, stranded offers, retention) in exactly one process
 * per project at a time: the holder of the lease `<projectId>.work-maintenance` in the shared
 * `loom-leases` bucket. Every process that opens Warp runs one; the others try to take the lease each
 * interval, so when the holder stops (or dies: the key expires `LEASES_BUCKET_TTL_MS` after its last
 * renewal) another takes over. A pass never depends on the holder's memory: each starts from what NATS
 * holds, so a takeover loses nothing.
 */
export class WorkMaintenance {
  #opts: WorkMaintenanceOptions;
  #lease: Lease | undefined;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #stopped = false;
  #lastRun = new Map<string, number>();

  constructor(opts: WorkMaintenanceOptions) {
    this.#opts = opts;
  }

  /** Whether this process holds the maintenance lease now. */
  get holding(): boolean {
    return this.#lease?.held === true;
  }

  start(): void {
    if (this.#timer || this.#stopped) return;
    this.#timer = setInterval(() => void this.runOnce(), this.#opts.intervalMs);
    this.#timer.unref();
    void this.runOnce();
  }

  /** One pass: takes the lease if free, and runs the tasks if it holds it. Never throws. */
  runOnce(): Promise<void> {
    if (this.#stopped) return Promise.resolve();
    // A pass still running (a slow store) is not doubled.
    if (!this.#running) {
      const run = this.#pass().catch((err: unknown) =>
        this.#opts.logger.debug({ err: String(err) }, "work maintenance pass failed; retrying next interval"),
      );
      this.#running = run.finally(() => {
        this.#running = undefined;
      });
    }
    return this.#running;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearInterval(this.#timer);
    await this.#running;
    await this.#lease?.release().catch(() => undefined);
    this.#lease = undefined;
  }

  async #pass(): Promise<void> {
    const { fabric } = this.#opts;
    if (!fabric.isConnected) return;
    if (!this.#lease?.held) {
      this.#lease = undefined;
      const kv = await leaseBucket(fabric, buckets.leases(), LEASES_BUCKET_TTL_MS);
      this.#lease = await Lease.tryAcquire(kv, leaseKeys.workMaintenance(this.#opts.projectId), {
        holder: this.#opts.holder,
        ttlMs: LEASES_BUCKET_TTL_MS,
        renewIntervalMs: Math.floor(LEASES_BUCKET_TTL_MS / 3),
        logger: this.#opts.logger,
      });
      if (!this.#lease) return;
      this.#opts.logger.debug({ projectId: this.#opts.projectId }, "holding the work maintenance lease");
    }
    const lease = this.#lease;
    for (const task of this.#opts.tasks) {
      if (!lease.held || this.#stopped) return;
      const last = this.#lastRun.get(task.name) ?? 0;
      if (task.everyMs !== undefined && Date.now() - last < task.everyMs) continue;
      this.#lastRun.set(task.name, Date.now());
      try {
        await task.run(lease.signal);
      } catch (err) {
        this.#opts.logger.warn({ task: task.name, err: String(err) }, "work maintenance task failed");
      }
    }
  }
}
