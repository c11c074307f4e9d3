import { DeliverPolicy, type Fabric, jsonCodec, readAll, streamInfo } from "@loominal/fabric";
import {
  buckets,
  keys,
  type RunEvent,
  type RunnerHeartbeat,
  type RunnerPauseRecord,
  type RunRecord,
  runEventMessageSchema,
  runEventsOf,
  runnerHeartbeatSchema,
  runnerPauseRecordSchema,
  runRecordSchema,
  streams,
  subjects,
  TERMINAL_RUN_EVENTS,
} from "@loominal/protocol";

const runCodec = jsonCodec(runRecordSchema);
const heartbeatCodec = jsonCodec(runnerHeartbeatSchema);
const pauseCodec = jsonCodec(runnerPauseRecordSchema);
/** A message on a run's event subject: one event or a batch of consecutive ones. */
const eventCodec = jsonCodec(runEventMessageSchema);

/** Ledger writes of runner-runs read to find the newest runs (the bucket keeps one value per run). */
const RECENT_RUNS_WINDOW = 2_000;
/** Events of one run the dashboard shows at most. */
export const MAX_RUN_EVENTS = 1_000;
const READ_IDLE_MS = 30_000;

export interface RunnerOverview {
  /** False until some Runner replica has created its buckets on this NATS. */
  available: boolean;
  /** `running`, `pausing`, or `paused` (pausing, and no live replica has an unparked run). */
  state: "running" | "pausing" | "paused";
  pause: RunnerPauseRecord | null;
  replicas: RunnerHeartbeat[];
  /** The most recently written runs, newest first. */
  runs: RunRecord[];
}

const kvStream = (bucket: string) => `KV_${bucket}`;
const kvSubject = (bucket: string, key: string) => `$KV.${bucket}.${key}`;

function deleted(headers: { get(k: string): string } | undefined): boolean {
  const op = headers?.get("KV-Operation");
  return op === "DEL" || op === "PURGE";
}

/**
 * A read-only view of the Runner's state in NATS (KV `runner-runs`, `runner-replicas`, `runner-state`,
 * stream `runner_events`): Weft's dashboard shows it without depending on the Runner's code. It never
 * creates a Runner bucket or stream (their settings are the Runner's), and reads streams through
 * temporary consumers, so it takes nothing from the Runner.
 */
export class RunnerView {
  #fabric: Fabric;

  constructor(fabric: Fabric) {
    this.#fabric = fabric;
  }

  async #exists(bucket: string): Promise<boolean> {
    return (await streamInfo(await this.#fabric.jsm(), kvStream(bucket))) !== undefined;
  }

  /** Live replicas: each one's current heartbeat (a replica whose heartbeat expired is not listed). */
  async replicas(): Promise<RunnerHeartbeat[]> {
    const bucket = buckets.runnerReplicas();
    if (!(await this.#exists(bucket))) return [];
    const { messages } = await readAll(this.#fabric, kvStream(bucket), {
      start: { from: "lastPerSubject" },
      filterSubject: kvSubject(bucket, "replica.>"),
      idleMs: READ_IDLE_MS,
    });
    const out: RunnerHeartbeat[] = [];
    for (const m of messages) {
      if (deleted(m.headers)) continue;
      const r = heartbeatCodec.safeDecode(m.data, m.subject);
      if (r.ok) out.push(r.value);
    }
    return out.sort((a, b) => a.replica_id.localeCompare(b.replica_id));
  }

  async pause(): Promise<RunnerPauseRecord | null> {
    const bucket = buckets.runnerState();
    if (!(await this.#exists(bucket))) return null;
    const jsm = await this.#fabric.jsm();
    const m = await jsm.streams
      .getMessage(kvStream(bucket), { last_by_subj: kvSubject(bucket, keys.runnerPause()) })
      .catch(() => undefined);
    if (!m || deleted(m.header)) return null;
    const r = pauseCodec.safeDecode(m.data, "runner pause");
    return r.ok ? r.value : null;
  }

  /** The runs written most recently (created or changed), newest first by creation. */
  async recentRuns(limit: number): Promise<RunRecord[]> {
    const bucket = buckets.runnerRuns();
    const info = await streamInfo(await this.#fabric.jsm(), kvStream(bucket));
    if (!info || info.state.messages === 0) return [];
    const from = Math.max(info.state.first_seq, info.state.last_seq - RECENT_RUNS_WINDOW + 1);
    const { messages } = await readAll(this.#fabric, kvStream(bucket), {
      start: { from: "sequence", seq: from },
      idleMs: READ_IDLE_MS,
    });
    const byKey = new Map<string, RunRecord | undefined>();
    for (const m of messages) {
      if (deleted(m.headers)) {
        byKey.set(m.subject, undefined);
        continue;
      }
      const r = runCodec.safeDecode(m.data, m.subject);
      if (r.ok) byKey.set(m.subject, r.value);
    }
    return [...byKey.values()]
      .filter((r): r is RunRecord => r !== undefined)
      .sort((a, b) => b.created_at.localeCompare(a.created_at))
      .slice(0, limit);
  }

  async overview(limit: number): Promise<RunnerOverview> {
    const available = await this.#exists(buckets.runnerRuns());
    if (!available) return { available, state: "running", pause: null, replicas: [], runs: [] };
    const [pause, replicas, runs] = await Promise.all([
      this.pause(),
      this.replicas(),
      this.recentRuns(limit),
    ]);
    return { available, state: pauseState(pause, replicas), pause, replicas, runs };
  }

  /** A run's events so far (at most MAX_RUN_EVENTS, oldest first). */
  async runEvents(runId: string): Promise<RunEvent[]> {
    const stream = streams.runnerEvents();
    if (!(await streamInfo(await this.#fabric.jsm(), stream))) return [];
    const { messages } = await readAll(this.#fabric, stream, {
      start: { from: "all" },
      filterSubject: subjects.runnerEvents(runId),
      idleMs: READ_IDLE_MS,
    });
    const out: RunEvent[] = [];
    for (const m of messages.slice(-MAX_RUN_EVENTS)) {
      const r = eventCodec.safeDecode(m.data, m.subject);
      if (r.ok) out.push(...runEventsOf(r.value));
    }
    return out.slice(-MAX_RUN_EVENTS);
  }

  /**
   * Follows run records as they are written (from now on) until `signal` aborts, calling `onRun` with
   * each; resolves when the follow ends.
   */
  async followRuns(
    onRun: (run: RunRecord) => void,
    signal: AbortSignal,
    onFollowing?: () => void,
  ): Promise<void> {
    await this.#follow(
      kvStream(buckets.runnerRuns()),
      undefined,
      DeliverPolicy.New,
      signal,
      (data, subject) => {
        const r = runCodec.safeDecode(data, subject);
        if (r.ok) onRun(r.value);
        return false;
      },
      onFollowing,
    );
  }

  /** Follows a run's events from its first one, until its terminal event or until `signal` aborts. */
  async followRunEvents(runId: string, onEvent: (e: RunEvent) => void, signal: AbortSignal): Promise<void> {
    await this.#follow(
      streams.runnerEvents(),
      subjects.runnerEvents(runId),
      DeliverPolicy.All,
      signal,
      (data, subject) => {
        const r = eventCodec.safeDecode(data, subject);
        if (!r.ok) return false;
        for (const e of runEventsOf(r.value)) {
          onEvent(e);
          if (TERMINAL_RUN_EVENTS.has(e.type)) return true;
        }
        return false;
      },
    );
  }

  /** Reads a stream through an ordered consumer until `handle` says it is done or `signal` aborts. */
  async #follow(
    stream: string,
    filter: string | undefined,
    deliver: DeliverPolicy,
    signal: AbortSignal,
    handle: (data: Uint8Array, subject: string) => boolean,
    onFollowing?: () => void,
  ): Promise<void> {
    const info = signal.aborted ? undefined : await streamInfo(await this.#fabric.jsm(), stream);
    if (!info) return;
    // "From now on" is pinned to the stream's last sequence now, not to whenever the server creates the
    // consumer: whatever is written once `onFollowing` is called is delivered.
    const consumer = await this.#fabric.js.consumers.get(stream, {
      ...(deliver === DeliverPolicy.New
        ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: info.state.last_seq + 1 }
        : { deliver_policy: deliver }),
      ...(filter !== undefined ? { filter_subjects: filter } : {}),
    });
    const messages = await consumer.consume({ max_messages: 256 });
    onFollowing?.();
    const stop = () => void messages.stop();
    signal.addEventListener("abort", stop, { once: true });
    try {
      for await (const m of messages) if (handle(m.data, m.subject)) return;
    } finally {
      signal.removeEventListener("abort", stop);
      await messages.close().catch(() => undefined);
    }
  }
}

/** The cluster's state as the Runner reports it: paused once every live replica parked for this pause. */
export function pauseState(
  pause: RunnerPauseRecord | null,
  replicas: RunnerHeartbeat[],
): RunnerOverview["state"] {
  if (!pause || pause.state === "running") return "running";
  const parked = replicas.every((r) => r.pause_since === pause.since && r.unparked_runs === 0);
  return parked ? "paused" : "pausing";
}
