import {
  type ConsumerMessages,
  DeliverPolicy,
  type JsMsg,
  type OrderedConsumerOptions,
} from "@nats-io/jetstream";
import type { Fabric } from "./connection.js";
import { describeUnavailable } from "./errors.js";
import { type BucketSpec, ensureBucket, streamInfo, streamVanished } from "./streams.js";

/** One change of a key, as a bucket watch delivers it. */
export interface BucketChange {
  key: string;
  /** The KV revision (stream sequence) of the change. */
  revision: number;
  operation: "PUT" | "DEL" | "PURGE";
  /** Empty for DEL and PURGE. */
  value: Uint8Array;
  /** When the server stored the change, ms since the epoch. */
  storedAtMs: number;
}

export interface BucketWatchOptions {
  /** Key filter (`>` by default; `a.b.>`, `*.x`, or one key). */
  key?: string;
  /**
   * What comes first: "updates" (default) only changes from now on; "last" the current value of every
   * key, then changes; "history" every change the bucket still holds, then new ones.
   */
  include?: "updates" | "last" | "history";
  /** Start at this revision (a follower resuming after the last change it handled), whatever `include` says. */
  fromRevision?: number;
  /** Skip DEL and PURGE changes. */
  ignoreDeletes?: boolean;
  /** First wait before a restart; doubles per failed restart up to 5 s (default 250 ms). */
  restartDelayMs?: number;
  /**
   * Idle heartbeat of the consumer in ms (default 2,000): a watch whose consumer went away notices
   * after about two missed heartbeats.
   */
  idleHeartbeatMs?: number;
  /** Told every time the watch lost its consumer and is about to restart (for logs and metrics). */
  onRestart?: (info: { reason: string; restarts: number; resumeFrom: number | "start" }) => void;
}

export interface BucketWatch {
  /** Stops the watch; resolves when no handler call is running. */
  stop(): Promise<void>;
  /** How many times the watch restarted after losing its consumer or its bucket. */
  readonly restarts: number;
  /** Revision the watch has caught up to: the last change delivered, or where "updates" started. */
  readonly lastRevision: number;
  /** Resolves when the watch has ended: after `stop()`, or when the fabric was closed. */
  readonly closed: Promise<void>;
  /**
   * Resolves once the first consumer is open (with "updates", changes from then on are delivered), or
   * when the watch stops before that. Never rejects: a watch that cannot start yet keeps trying.
   */
  readonly ready: Promise<void>;
}

const KV_OPERATION = "KV-Operation";
const MAX_RESTART_DELAY_MS = 5_000;

/**
 * Follows the changes of a KV bucket and keeps following them whatever happens to the consumer behind
 * it. A plain KV watch goes silent for good when its consumer is deleted, when the bucket is deleted, or
 * when a server restarts with an empty store; this one notices (consumer closed, stream not found,
 * missed heartbeats), reports it (`onRestart`, a warning in the fabric's log) and starts again:
 *
 * - with the bucket still there, from the revision after the last one delivered, so nothing is missed
 *   and nothing delivered twice;
 * - with the bucket gone, it is created again (with `spec`) and everything in the new bucket is
 *   delivered, since its revisions start over.
 *
 * The handler is called one change at a time, in revision order; a handler that throws is logged and
 * the watch goes on.
 */
export function watchBucket(
  fabric: Fabric,
  spec: BucketSpec,
  handler: (change: BucketChange) => void | Promise<void>,
  options: BucketWatchOptions = {},
): BucketWatch {
  return new Watcher(fabric, spec, handler, options).start();
}

class Watcher implements BucketWatch {
  #fabric: Fabric;
  #spec: BucketSpec;
  #handler: (change: BucketChange) => void | Promise<void>;
  #options: BucketWatchOptions;
  #stream: string;
  #filter: string;
  #messages: ConsumerMessages | undefined;
  #stopped = false;
  #restarts = 0;
  #last = 0;
  /** Creation time of the stream the revisions belong to. */
  #created: string | undefined;
  #chain: Promise<void> = Promise.resolve();
  #closed: Promise<void>;
  #resolveClosed: () => void = () => undefined;
  #ready: Promise<void>;
  #resolveReady: () => void = () => undefined;
  #stopFabricListener: () => void = () => undefined;

  constructor(
    fabric: Fabric,
    spec: BucketSpec,
    handler: (change: BucketChange) => void | Promise<void>,
    options: BucketWatchOptions,
  ) {
    this.#fabric = fabric;
    this.#spec = spec;
    this.#handler = handler;
    this.#options = options;
    this.#stream = `KV_${spec.name}`;
    this.#filter = `$KV.${spec.name}.${options.key ?? ">"}`;
    this.#closed = new Promise((r) => {
      this.#resolveClosed = r;
    });
    this.#ready = new Promise((r) => {
      this.#resolveReady = r;
    });
  }

  get ready(): Promise<void> {
    return this.#ready;
  }

  get restarts(): number {
    return this.#restarts;
  }

  get lastRevision(): number {
    return this.#last;
  }

  get closed(): Promise<void> {
    return this.#closed;
  }

  start(): this {
    this.#stopFabricListener = this.#fabric.onStateChange((state) => {
      if (state === "closed") void this.stop();
    });
    void this.#run("start");
    return this;
  }

  async stop(): Promise<void> {
    if (!this.#stopped) {
      this.#stopped = true;
      this.#stopFabricListener();
      this.#messages?.stop();
      this.#messages = undefined;
    }
    await this.#chain;
    this.#resolveReady();
    this.#resolveClosed();
  }

  /** Opens the consumer, retrying with backoff until it is open or the watch is stopped. */
  async #run(from: "start" | "resume"): Promise<void> {
    let delay = this.#options.restartDelayMs ?? 250;
    const first = this.#options.fromRevision;
    let resumeFrom: "start" | number =
      from === "resume" ? this.#last + 1 : first !== undefined && first > 0 ? first : "start";
    while (!this.#stopped) {
      try {
        await this.#open(resumeFrom);
        return;
      } catch (err) {
        if (this.#stopped) return;
        this.#fabric.logger.warn(
          { bucket: this.#spec.name, err: describeUnavailable(err) },
          "bucket watch could not start; retrying",
        );
        await new Promise((r) => setTimeout(r, delay));
        delay = Math.min(MAX_RESTART_DELAY_MS, delay * 2);
        // A bucket that vanished meanwhile numbers from 1 again: take everything it holds.
        if (resumeFrom !== "start" && (await this.#bucketReplaced().catch(() => false))) {
          resumeFrom = 1;
          this.#last = 0;
        }
      }
    }
  }

  async #open(resumeFrom: "start" | number): Promise<void> {
    await this.#fabric.ready(5_000);
    await ensureBucket(this.#fabric, this.#spec);
    const info = await streamInfo(await this.#fabric.jsm(), this.#stream);
    if (!info) throw new Error(`stream ${this.#stream} is missing`);
    if (resumeFrom !== "start" && this.#created !== undefined && info.created !== this.#created) {
      // Created again since the last delivery: its revisions are new, deliver all of them.
      resumeFrom = 1;
      this.#last = 0;
    }
    this.#created = info.created;
    if (resumeFrom === "start" && (this.#options.include ?? "updates") === "updates") {
      // "From now on" is from the stream's last sequence on: a restart then resumes from there too,
      // instead of replaying what came before the watch.
      resumeFrom = info.state.last_seq + 1;
    }
    if (resumeFrom !== "start" && this.#last === 0) this.#last = resumeFrom - 1;
    const consumer = await this.#fabric.js.consumers.get(this.#stream, this.#consumerOptions(resumeFrom));
    if (this.#stopped) return;
    const messages = await consumer.consume({
      max_messages: 256,
      idle_heartbeat: this.#options.idleHeartbeatMs ?? 2_000,
      callback: (m) => this.#enqueue(m),
    });
    this.#messages = messages;
    this.#resolveReady();
    void this.#supervise(messages);
  }

  #consumerOptions(resumeFrom: "start" | number): Partial<OrderedConsumerOptions> {
    const base = { filter_subjects: this.#filter };
    if (resumeFrom !== "start")
      return { ...base, deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: resumeFrom };
    switch (this.#options.include ?? "updates") {
      case "last":
        return { ...base, deliver_policy: DeliverPolicy.LastPerSubject };
      case "history":
        return { ...base, deliver_policy: DeliverPolicy.All };
      default:
        return { ...base, deliver_policy: DeliverPolicy.New };
    }
  }

  /** Watches the consumer's status; on a loss that the client will not repair by itself, restarts. */
  async #supervise(messages: ConsumerMessages): Promise<void> {
    let reason: string | undefined;
    const closed = messages.closed().then(
      (err) => {
        reason ??= err ? `consumer closed: ${describeUnavailable(err)}` : "consumer closed";
      },
      (err: unknown) => {
        reason ??= `consumer failed: ${describeUnavailable(err)}`;
      },
    );
    const watchStatus = (async () => {
      for await (const s of messages.status()) {
        // An ordered consumer re-creates a deleted consumer by itself, but not a deleted stream.
        if (s.type === "stream_not_found") {
          reason = "the bucket's stream is gone";
          messages.stop();
          return;
        }
      }
    })();
    await Promise.race([closed, watchStatus]);
    if (this.#stopped || this.#messages !== messages) return;
    this.#messages = undefined;
    messages.stop();
    await this.#restart(reason ?? "consumer ended");
  }

  async #restart(reason: string): Promise<void> {
    if (this.#stopped) return;
    this.#restarts++;
    const replaced = await this.#bucketReplaced().catch(() => false);
    const resumeFrom: number | "start" = replaced ? 1 : this.#last + 1;
    this.#fabric.logger.warn(
      { bucket: this.#spec.name, reason, restarts: this.#restarts, resumeFrom },
      "bucket watch lost its consumer; restarting",
    );
    this.#options.onRestart?.({ reason, restarts: this.#restarts, resumeFrom });
    if (replaced) this.#created = undefined;
    await this.#chain;
    if (replaced) this.#last = 0;
    await this.#run("resume");
  }

  /** True when the stream is missing (and then forgotten so it is created again) or was created again. */
  async #bucketReplaced(): Promise<boolean> {
    const info = await streamInfo(await this.#fabric.jsm(), this.#stream);
    if (!info) {
      await streamVanished(this.#fabric, this.#stream, new Error("stream not found"));
      return true;
    }
    return this.#created !== undefined && info.created !== this.#created;
  }

  #enqueue(m: JsMsg): void {
    const change = this.#decode(m);
    if (!change) return;
    this.#chain = this.#chain.then(async () => {
      if (this.#stopped || change.revision <= this.#last) return;
      this.#last = change.revision;
      if (this.#options.ignoreDeletes && change.operation !== "PUT") return;
      try {
        await this.#handler(change);
      } catch (err) {
        this.#fabric.logger.warn(
          { bucket: this.#spec.name, key: change.key, err: String(err) },
          "bucket watch handler failed",
        );
      }
    });
  }

  #decode(m: JsMsg): BucketChange | undefined {
    const prefix = `$KV.${this.#spec.name}.`;
    if (!m.subject.startsWith(prefix)) return undefined;
    const op = m.headers?.get(KV_OPERATION) ?? "";
    return {
      key: m.subject.slice(prefix.length),
      revision: m.seq,
      operation: op === "DEL" ? "DEL" : op === "PURGE" ? "PURGE" : "PUT",
      value: m.data,
      storedAtMs: Math.floor(Number(m.info.timestampNanos) / 1_000_000),
    };
  }
}
