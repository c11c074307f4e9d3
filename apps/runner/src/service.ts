import { createHash } from "node:crypto";
import { performance } from "node:perf_hooks";
import { type Fabric, isCasConflict, jsonCodec, Lease, type Logger } from "@loominal/fabric";
import { ConfigError, keys, randomId, runnerUserToken, subjects } from "@loominal/protocol";
import { JetStreamApiError } from "@nats-io/jetstream";
import type { KvWatchEntry } from "@nats-io/kv";
import { type Msg, NoRespondersError, type Subscription } from "@nats-io/transport-node";
import { z } from "zod";
import type { AgentCatalog, AgentDefinition } from "./agents.js";
import { AdmissionPuller, type AdmitMsg } from "./cluster/admit.js";
import { EventLog } from "./cluster/events.js";
import {
  type Heartbeat,
  heartbeatSchema,
  type PauseRecord,
  pauseRecordSchema,
  type QuotaRecord,
  type RunEvent,
  type RunRecord,
  type RunRequest,
  type RunStatus,
  runRecordSchema,
  runRequestSchema,
  TERMINAL,
} from "./cluster/records.js";
import { LockStore, listKeys, lockKeysOf, PauseStore, QuotaStore, RunStore } from "./cluster/state.js";
import { openStores, type RunnerStores } from "./cluster/stores.js";
import type { RunnerConfig } from "./env.js";
import { type ChainEntry, type EmitEvent, type LoopResult, RunStop, runAgentLoop } from "./loop.js";
import type { RunnerMetrics } from "./metrics.js";
import { AnthropicProvider } from "./providers/anthropic.js";
import { MockProvider } from "./providers/mock.js";
import { OpenAiProvider } from "./providers/openai.js";
import { RunnerTools } from "./tools.js";

const requestCodec = jsonCodec(runRequestSchema);
const recordCodec = jsonCodec(runRecordSchema);
const heartbeatCodec = jsonCodec(heartbeatSchema);
const pauseCodec = jsonCodec(pauseRecordSchema);
const cancelRequestCodec = jsonCodec(z.object({ run_id: z.string(), reason: z.string() }));
const cancelReplyCodec = jsonCodec(z.object({ ok: z.boolean() }));
const leaseHolderCodec = jsonCodec(z.object({ holder: z.string() }).passthrough());

/** How often a replica looks for runs it owns but does not run, and how old they must be (ms). */
const ORPHAN_CHECK_MS = 10_000;
const ORPHAN_MIN_AGE_MS = 10_000;

/** How long a cancel wake-up for a run not executing here is kept, in case the run is starting (ms). */
const EARLY_STOP_KEEP_MS = 60_000;

/**
 * How long after its end the reaper frees the slots of a run whose replica is alive but has not freed them
 * itself (ms); a replica frees them as soon as the run's loop has stopped.
 */
const ENDED_RELEASE_AFTER_MS = 30_000;

/** How long a liveness probe waits for an answer (ms); no answer in time is not taken for a death. */
const PROBE_TIMEOUT_MS = 1_000;

/**
 * Probes start this long after this replica's own connection came up (or at most a TTL): after a NATS
 * restart the others reconnect at their own pace (backoff up to 2 s) and must not be taken for dead.
 */
const PROBE_GRACE_MS = 5_000;

/** Users the reaper sweeps at once. */
const SWEEP_CONCURRENCY = 32;

/** JetStream API error: the stream is at max_msgs with discard new. */
const JS_MAX_MESSAGES = 10077;

/** An admission refusal, as the HTTP layer answers it. */
export interface Refusal {
  status: number;
  code: string;
  error: string;
  headers?: Record<string, string>;
  extra?: Record<string, unknown>;
}

export type Outcome<T> = { ok: true; value: T } | { ok: false; refusal: Refusal };

export interface SubmitInput {
  agent: string;
  prompt: string;
  user_id: string;
  /** Makes a retry safe: the run id derives from the user and this key, so a repeat gets the same run. */
  idempotency_key?: string | undefined;
  tenant_id?: string | undefined;
  agent_id?: string | undefined;
  session_id?: string | undefined;
  metadata?: Record<string, unknown> | undefined;
  run_timeout_seconds?: number | undefined;
}

/** An admitted run; `duplicate` when the request repeated an idempotency key that already had its run. */
export interface Submitted {
  record: RunRecord;
  duplicate: boolean;
}

export type ClusterState = "running" | "pausing" | "paused";

interface ActiveRun {
  record: RunRecord;
  controller: AbortController;
  parked: boolean;
  finished: Promise<void>;
}

export interface RunnerServiceOptions {
  config: RunnerConfig;
  fabric: Fabric;
  agents: AgentCatalog;
  logger: Logger;
  metrics?: RunnerMetrics;
  /** The URL this replica serves on (shown in heartbeats). */
  url?: string;
}

/**
 * One runner replica: admits runs, pulls run requests while it has capacity, executes them, answers
 * cancels for its runs, heartbeats, and takes its turn as the cluster's reaper.
 */
export class RunnerService {
  readonly replicaId: string;
  readonly config: RunnerConfig;
  readonly events: EventLog;
  #o: RunnerServiceOptions;
  #log: Logger;
  #stores!: RunnerStores;
  runs!: RunStore;
  quotas!: QuotaStore;
  locks!: LockStore;
  pauses!: PauseStore;
  tools!: RunnerTools;
  #active = new Map<string, ActiveRun>();
  #pauseState: PauseRecord["state"] = "running";
  #pauseSince: string | null = null;
  #wakers = new Set<() => void>();
  #draining = false;
  #stopped = false;
  #startedAt = new Date().toISOString();
  #instance = randomId();
  #timers: NodeJS.Timeout[] = [];
  #cancelSub: Subscription | undefined;
  #pauseWatch: { stop(): void } | undefined;
  #pullLoop: Promise<void> | undefined;
  #reaper: Lease | undefined;
  #reaping = false;
  #reapAgain = false;
  /** Stops (cancel wake-ups) that arrived for runs not executing here yet. */
  #earlyStops = new Map<string, { status: "cancelled" | "failed"; stopReason: string; at: number }>();
  #offState: (() => void) | undefined;
  /** Revision of this replica's last heartbeat write (0: none yet, or it must register afresh). */
  #hbRevision = 0;
  #hbRunning: Promise<void> | undefined;
  #hbAgain = false;
  /**
   * performance.now() until which this replica's heartbeat key cannot have expired or been taken away: the
   * send time of its last acknowledged heartbeat + TTL − margin. Past it, no run here starts a step until a
   * heartbeat confirms the replica is still counted alive (see #stepGuard).
   */
  #liveUntil = 0;
  #fenceMarginMs: number;
  #hbTimeoutMs: number;
  /** Replicas whose cancel subject had no responders: since when, at which heartbeat revision. */
  #suspects = new Map<string, { since: number; revision: number }>();
  /** When this replica's NATS connection last came up (performance.now()). */
  #connectedAt = performance.now();
  /** Requests taken but not yet executing (between delivery and the record's move to running). */
  #starting = 0;

  constructor(options: RunnerServiceOptions) {
    this.#o = options;
    this.config = options.config;
    this.replicaId = options.config.replicaId;
    this.#log = options.logger;
    this.events = new EventLog(options.fabric, options.config.natsReplicas);
    this.#hbTimeoutMs = Math.max(
      options.config.heartbeatIntervalMs,
      Math.floor(options.config.replicaTtlMs / 4),
    );
    this.#fenceMarginMs = Math.max(
      options.config.heartbeatIntervalMs,
      Math.floor(options.config.replicaTtlMs / 5),
    );
  }

  get fabric(): Fabric {
    return this.#o.fabric;
  }

  /** The URL this replica serves on, shown in its heartbeat. */
  setUrl(url: string): void {
    this.#o.url = url;
  }

  get activeRuns(): number {
    return this.#active.size;
  }

  async start(): Promise<void> {
    const c = this.config;
    this.#stores = await openStores(this.fabric, c);
    this.runs = new RunStore(this.#stores.runs);
    this.quotas = new QuotaStore(this.#stores.quotas);
    this.locks = new LockStore(this.#stores.locks);
    this.pauses = new PauseStore(this.#stores.state);
    this.tools = new RunnerTools({
      fabric: this.fabric,
      memory: this.#stores.memory,
      evals: this.#stores.evals,
    });
    await this.#claimReplicaId();
    // Subscribed (and confirmed by the server) before the first heartbeat: from then on, other replicas may
    // probe this subject, and a replica with a heartbeat but no subscriber there is taken for a dead one.
    this.#cancelSub = this.fabric.nc.subscribe(subjects.runnerCancel(this.replicaId), {
      callback: (err, msg) => {
        if (!err) this.#onCancelMessage(msg);
      },
    });
    await this.fabric.nc.flush();
    const pause = await this.pauses.get();
    this.#pauseState = pause.state;
    this.#pauseSince = pause.state === "pausing" ? pause.since : null;
    await this.#watchPause();
    await this.#heartbeat();
    await this.#failOrphans();
    // Runs this replica left `running` without running them (an end it could not write during an outage).
    this.#every(ORPHAN_CHECK_MS, () => this.#failOrphans(ORPHAN_MIN_AGE_MS));
    // Runs here that another replica ended: the cancel's wake-up is a plain publish, lost if this replica
    // was cut off when it was sent; this is the slow path that catches them, and a reconnect the fast one.
    this.#every(ORPHAN_CHECK_MS, () => this.#stopRunsEndedElsewhere());
    this.#offState = this.fabric.onStateChange((state) => {
      if (state !== "connected") {
        // Cut off: the others may take this replica for dead once their probes have found no responders
        // for RUNNER_DEATH_CONFIRM_MS. No step after half of that until a heartbeat says otherwise (a
        // short blip — a NATS restart — does not hold every run up at once).
        if (c.deathConfirmMs > 0) {
          this.#liveUntil = Math.min(this.#liveUntil, performance.now() + c.deathConfirmMs / 2);
        }
        this.#suspects.clear();
        return;
      }
      this.#connectedAt = performance.now();
      if (!this.#stopped) void this.#stopRunsEndedElsewhere().catch(() => undefined);
    });
    if (c.deathConfirmMs > 0) {
      this.#every(Math.min(c.reaperIntervalMs, 500), () => this.#probeReplicas());
    }
    this.#every(c.heartbeatIntervalMs, () => this.#heartbeat());
    this.#every(c.reaperIntervalMs, () => this.#reap());
    this.#every(Math.max(250, Math.floor(c.lockTtlMs / 3)), () => this.#refreshLocks());
    this.#pullLoop = this.#pull();
    this.#log.info({ replica: this.replicaId }, "runner replica started");
  }

  #every(ms: number, task: () => Promise<unknown>): void {
    let busy = false;
    const t = setInterval(() => {
      if (busy || this.#stopped) return;
      busy = true;
      task()
        .catch((err: unknown) => this.#log.warn({ err: String(err) }, "periodic task failed"))
        .finally(() => {
          busy = false;
        });
    }, ms);
    this.#timers.push(t);
  }

  #wake(): void {
    for (const w of this.#wakers) w();
    this.#wakers.clear();
  }

  #waitForWake(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(done, ms);
      function done() {
        clearTimeout(t);
        resolve();
      }
      this.#wakers.add(done);
    });
  }

  // ---------------------------------------------------------------- admission

  /** Admits a run: session lock, agent_id, pause, per-user quota, then the cluster-wide queue. */
  async submit(input: SubmitInput): Promise<Outcome<Submitted>> {
    const c = this.config;
    const refuse = (r: Refusal): Outcome<Submitted> => {
      this.#o.metrics?.admissionRefused.inc({ code: r.code });
      return { ok: false, refusal: r };
    };
    const agent = this.#o.agents.get(input.agent);
    if (!agent) {
      return refuse({
        status: 404,
        code: "unknown_agent",
        error: `no agent named ${input.agent}; known: ${this.#o.agents
          .list()
          .map((a) => a.name)
          .join(", ")}`,
      });
    }
    if (this.#draining) {
      return refuse({
        status: 503,
        code: "replica_draining",
        error: "this replica is shutting down; send the run to another",
      });
    }
    const key = input.idempotency_key;
    const runId =
      key !== undefined
        ? idempotentRunId(input.user_id, key)
        : runnerUserToken(input.user_id) + randomId().slice(0, 16);
    if (key !== undefined) {
      // A repeat of a request that has its run (its answer was lost, or its replica died before answering).
      const existing = await this.runs.get(runId);
      if (existing) return { ok: true, value: { record: existing, duplicate: true } };
    }
    const now = new Date().toISOString();
    const request: RunRequest = {
      run_id: runId,
      agent: agent.name,
      prompt: input.prompt,
      user_id: input.user_id,
      tenant_id: input.tenant_id ?? null,
      agent_id: input.agent_id ?? null,
      session_id: input.session_id ?? null,
      metadata: input.metadata ?? null,
      run_timeout_seconds: input.run_timeout_seconds ?? null,
      accepted_by: this.replicaId,
      created_at: now,
    };
    const taken: string[] = [];
    const undoLocks = async () => {
      await Promise.all(taken.map((k) => this.locks.release(k, runId).catch(() => undefined)));
    };
    if (request.session_id !== null) {
      const key = keys.runnerSessionLock(request.session_id);
      if (!(await this.locks.take(key, runId, this.replicaId))) {
        const holder = await this.locks.holder(key);
        return refuse({
          status: 409,
          code: "session_busy",
          error: `session ${request.session_id} has a run in progress${holder ? ` (${holder.run_id})` : ""}; wait for it to end or cancel it`,
        });
      }
      taken.push(key);
    }
    if (request.agent_id !== null) {
      const key = keys.runnerAgentIdLock(request.agent_id);
      if (!(await this.locks.take(key, runId, this.replicaId))) {
        await undoLocks();
        return refuse({
          status: 409,
          code: "agent_id_in_use",
          error: `agent_id ${request.agent_id} belongs to a run in progress; choose another or wait`,
        });
      }
      taken.push(key);
    }
    // The pause as this replica's watch of the flag has it (set before the replica serves, and within
    // milliseconds of a change anywhere): no read per admission. A request admitted in the moment between a
    // pause and its arrival here waits in the queue, as nothing is pulled while the cluster is pausing.
    if (this.#pauseState !== "running") {
      await undoLocks();
      return refuse({
        status: 503,
        code: "runtime_paused",
        error: "the runtime is paused; POST /v1/_resume to resume",
      });
    }
    const quota = await this.quotas.acquire(input.user_id, runId, this.replicaId, c.maxRunsPerUser);
    if (!quota.admitted) {
      await undoLocks();
      return refuse({
        status: 429,
        code: "per_user_quota_exhausted",
        error: `user ${input.user_id} has ${quota.active} runs queued or running, the cap is ${c.maxRunsPerUser}; retry later`,
        headers: { "retry-after": "5" },
        extra: { user_id: input.user_id, cap: c.maxRunsPerUser },
      });
    }
    // With an idempotency key, a repeat whose first request reached the stream is deduplicated (message id).
    let repeated = false;
    try {
      const ack = await this.fabric.js.publish(subjects.runnerAdmit(), requestCodec.encode(request), {
        msgID: runId,
      });
      repeated = ack.duplicate;
    } catch (err) {
      await this.quotas.release(input.user_id, [runId]).catch(() => undefined);
      await undoLocks();
      if (err instanceof JetStreamApiError && err.code === JS_MAX_MESSAGES) {
        return refuse({
          status: 429,
          code: "backpressure",
          error: `the cluster has ${c.maxConcurrentRuns} runs running and ${c.queueMax} waiting; retry later`,
          headers: { "retry-after": "1" },
        });
      }
      throw err;
    }
    const record: RunRecord = {
      ...requestWithoutPrompt(request),
      status: "queued",
      stop_reason: null,
      error: null,
      replica_id: this.replicaId,
      started_at: null,
      ended_at: null,
      usage: { input_tokens: 0, output_tokens: 0 },
      iterations: 0,
      admit_ack: null,
    };
    // A replica may already have picked the request up and written the record as running (or, with an
    // idempotency key, a repeat of this request admitted it meanwhile).
    if (!(await this.runs.create(record))) {
      const current = (await this.runs.get(runId)) ?? record;
      if (!repeated) this.#o.metrics?.runsAccepted.inc();
      return { ok: true, value: { record: current, duplicate: repeated } };
    }
    if (!repeated) this.#o.metrics?.runsAccepted.inc();
    return { ok: true, value: { record, duplicate: repeated } };
  }

  // ---------------------------------------------------------------- execution

  /**
   * Pulls run requests while this replica has free slots and the cluster is not paused. A pull stays open
   * at the server (300 ms, cluster/admit.ts) and is asked again as soon as it ends (or its end is overdue),
   * so a new request is delivered at once without a subscription to the admission subject (which cost every
   * replica a message per run).
   * Without a free slot it waits for a run here to end, the pause to lift, or 250 ms (slots freed on
   * other replicas count in the consumer's max_ack_pending, not here).
   */
  async #pull(): Promise<void> {
    const puller = new AdmissionPuller(this.fabric.nc, (m) => this.#admitted(m));
    try {
      while (!this.#stopped && !this.#draining) {
        const free = this.#free();
        if (free <= 0 || this.#pauseState !== "running" || performance.now() >= this.#liveUntil) {
          await this.#waitForWake(250);
          continue;
        }
        try {
          await puller.pull(free);
        } catch (err) {
          if (this.#stopped) return;
          this.#log.warn({ err: String(err) }, "pulling run requests failed; retrying");
          await this.#waitForWake(500);
        }
      }
    } finally {
      await puller.close();
    }
  }

  #free(): number {
    return this.config.replicaMaxRuns - this.#active.size - this.#starting;
  }

  /** A run request delivered by a pull (possibly one this side had already stopped waiting for). */
  #admitted(m: AdmitMsg): void {
    if (this.#draining || this.#stopped) {
      m.nak();
      return;
    }
    if (this.#free() <= 0) {
      // Delivered on a pull this side counted as ended, after its slots were given to a later pull.
      m.nak(100);
      return;
    }
    this.#starting++;
    void this.#take(m)
      .catch((err: unknown) => {
        this.#log.error({ err: String(err) }, "could not start a run; it will be redelivered");
        m.nak(1_000);
      })
      .finally(() => {
        this.#starting--;
      });
  }

  /** A run request delivered to this replica: start it, or settle what a dead replica left behind. */
  async #take(m: AdmitMsg): Promise<void> {
    const parsed = requestCodec.safeDecode(m.data, "run request");
    if (!parsed.ok) {
      this.#log.error({ err: parsed.error.message }, "dropping an unreadable run request");
      m.term();
      return;
    }
    const request = parsed.value;
    const startPatch = {
      replica_id: this.replicaId,
      started_at: new Date().toISOString(),
      admit_ack: m.reply,
    };
    // queued → running directly: the read of the record is the compare-and-set's own.
    let start = await this.runs.start(request.run_id, startPatch);
    if (!start.started && !start.current) {
      // The accepting replica has not written the record yet (or died before it could).
      const fresh: RunRecord = {
        ...requestWithoutPrompt(request),
        status: "running",
        stop_reason: null,
        error: null,
        usage: { input_tokens: 0, output_tokens: 0 },
        iterations: 0,
        ended_at: null,
        ...startPatch,
      };
      if (await this.runs.create(fresh)) {
        await this.#holdSlotOfDeadAcceptor(request);
        return this.#launch(request, fresh, m);
      }
      // Written meanwhile: queued by its acceptor (start it), or already further on.
      start = await this.runs.start(request.run_id, startPatch);
    }
    if (start.started) return this.#launch(request, start.started, m);
    const record = start.current;
    if (!record) {
      m.nak(500);
      return;
    }
    if (TERMINAL.has(record.status)) {
      // Cancelled (or failed) before it started.
      await this.#releaseSlots(record);
      m.ack();
      return;
    }
    if (record.status === "running") {
      if (record.replica_id === this.replicaId) return;
      if (!(await this.#isLive(record.replica_id))) {
        await this.failRun(record, "replica_died", `replica ${record.replica_id} stopped heartbeating`);
        m.ack();
      }
      return;
    }
    m.nak(500);
  }

  /**
   * A request whose acceptor died between publishing it and writing its record: the reaper frees the slot
   * of such a run (no record, dead acceptor) — it cannot tell a request still in the stream from one that
   * never got there — so the run, now recorded here, takes its slot back (above the cap if need be: it was
   * admitted under it) and holds it while it runs, like any other.
   */
  async #holdSlotOfDeadAcceptor(request: RunRequest): Promise<void> {
    if (request.accepted_by === this.replicaId) return;
    try {
      if (await this.#isLive(request.accepted_by)) return;
      await this.quotas.acquire(request.user_id, request.run_id, this.replicaId, Number.POSITIVE_INFINITY);
    } catch (err) {
      // The run goes on either way (its record says running here); only the cap may be off by one.
      this.#log.warn({ err: String(err), run: request.run_id }, "could not take back a quota slot");
    }
  }

  /** Starts executing (the run is in #active when this returns) without waiting for its end. */
  #launch(request: RunRequest, record: RunRecord, m: AdmitMsg): void {
    void this.#execute(request, record, m).catch((err: unknown) =>
      this.#log.error({ err: String(err), run: record.run_id }, "run bookkeeping failed"),
    );
  }

  async #execute(request: RunRequest, record: RunRecord, m: AdmitMsg): Promise<void> {
    const c = this.config;
    const agent = this.#o.agents.get(request.agent);
    const controller = new AbortController();
    let resolveFinished!: () => void;
    const active: ActiveRun = {
      record,
      controller,
      parked: false,
      finished: new Promise((r) => {
        resolveFinished = r;
      }),
    };
    this.#active.set(record.run_id, active);
    const early = this.#earlyStops.get(record.run_id);
    if (early) {
      this.#earlyStops.delete(record.run_id);
      controller.abort(new RunStop(early.status, early.stopReason));
    }
    this.#o.metrics?.activeRuns.set(this.#active.size);
    this.#heartbeatIfPausing();
    const working = setInterval(() => m.working(), Math.max(250, Math.floor(c.admitAckWaitMs / 3)));
    const timeout =
      request.run_timeout_seconds !== null
        ? setTimeout(
            () => controller.abort(new RunStop("failed", "run_timeout")),
            request.run_timeout_seconds * 1_000,
          )
        : undefined;
    let seq = 0;
    const events = this.events.writer(record.run_id);
    const emit: EmitEvent = async (type, data) => {
      seq++;
      const n = seq;
      const terminal = type === "done" || type === "error";
      await this.#persist(() => events.publish(n, type, data, terminal), "storing a run event");
      if (type === "retry") this.#o.metrics?.providerRetries.inc({ reason: String(data.reason) });
    };
    const started = Date.now();
    let result: LoopResult;
    try {
      if (!agent) {
        result = {
          status: "failed",
          stopReason: "unknown_agent",
          error: `this replica has no agent ${request.agent}; give every replica the same RUNNER_AGENTS`,
          usage: { inputTokens: 0, outputTokens: 0 },
          iterations: 0,
        };
      } else {
        await emit("started", {
          agent: agent.name,
          replica_id: this.replicaId,
          providers: agent.providers.map((p) => `${p.provider}:${p.model ?? agent.model}`),
        });
        result = await runAgentLoop({
          prompt: request.prompt,
          system: agent.system,
          chain: this.#chain(agent),
          tools: this.tools.forRun(record, agent.tools),
          emit,
          signal: controller.signal,
          pauseGate: (signal) => this.#pauseGate(active, emit, signal),
          stepGuard: (signal) => this.#stepGuard(signal),
          maxIterations: agent.maxIterations,
          toolConcurrency: c.toolConcurrency,
          retryBaseMs: c.retryBaseMs,
          maxRetries: c.maxRetries,
          maxFallbacks: c.maxFallbacks,
        });
      }
    } catch (err) {
      result = {
        status: "failed",
        stopReason: "internal_error",
        error: String(err),
        usage: { inputTokens: 0, outputTokens: 0 },
        iterations: 0,
      };
    } finally {
      clearInterval(working);
      clearTimeout(timeout);
    }
    try {
      const usage = { input_tokens: result.usage.inputTokens, output_tokens: result.usage.outputTokens };
      // Every event of the run is stored before its end is: a reader that sees the end sees them all.
      await this.#persist(() => events.confirm(), "storing a run event");
      const ended = await this.#persist(() =>
        this.runs.transition(
          record.run_id,
          result.status,
          {
            stop_reason: result.stopReason,
            error: result.error ?? null,
            ended_at: new Date().toISOString(),
            usage,
            iterations: result.iterations,
          },
          (r) => r.replica_id === this.replicaId,
        ),
      );
      if (ended) {
        await Promise.resolve()
          .then(() =>
            emit(result.status === "failed" ? "error" : "done", {
              status: result.status,
              stop_reason: result.stopReason,
              ...(result.error ? { error: result.error } : {}),
              usage,
            }),
          )
          .catch((err: unknown) =>
            this.#log.warn({ err: String(err), run: record.run_id }, "terminal event not stored"),
          );
        this.#o.metrics?.runsFinished.inc({ status: result.status });
        this.#o.metrics?.runDuration.observe((Date.now() - started) / 1_000);
      }
      await this.#persist(() => this.#releaseSlots(record));
      m.ack();
    } finally {
      this.#active.delete(record.run_id);
      this.#o.metrics?.activeRuns.set(this.#active.size);
      this.#heartbeatIfPausing();
      resolveFinished();
      this.#wake();
    }
  }

  /**
   * Retries a write of the run's own bookkeeping (its events, its end) while NATS is away (a reconnect
   * takes a few seconds), so a short outage neither fails a run nor leaves it `running`; the periodic
   * orphan check catches what still fails. Only for idempotent writes: event publishes carry a message
   * id, and the end is a compare-and-set.
   */
  async #persist<T>(write: () => Promise<T>, what = "ending a run"): Promise<T> {
    let delay = 100;
    for (let attempt = 1; ; attempt++) {
      try {
        return await write();
      } catch (err) {
        if (attempt >= 8 || this.#stopped) throw err;
        this.#log.warn({ err: String(err), attempt }, `${what} failed; retrying`);
        await new Promise((r) => setTimeout(r, delay));
        delay = Math.min(delay * 2, 2_000);
      }
    }
  }

  #chain(agent: AgentDefinition): ChainEntry[] {
    const c = this.config;
    return agent.providers.map((p) => {
      const model = p.model ?? agent.model ?? "";
      const label = `${p.provider}:${model}`;
      const apiKey = (fallback: string | undefined) =>
        p.apiKeyEnv !== undefined ? process.env[p.apiKeyEnv] : fallback;
      switch (p.provider) {
        case "mock":
          return {
            provider: new MockProvider({
              latencyMs: p.mock?.latencyMs ?? c.mock.latencyMs,
              jitterMs: p.mock?.jitterMs ?? c.mock.jitterMs,
              rate429: p.mock?.rate429 ?? c.mock.rate429,
              rate500: p.mock?.rate500 ?? c.mock.rate500,
            }),
            model,
            maxTokens: p.maxTokens ?? 1024,
            label,
          };
        case "anthropic":
          return {
            provider: new AnthropicProvider({
              apiKey: apiKey(c.anthropic.apiKey),
              baseUrl: p.baseUrl ?? c.anthropic.baseUrl,
            }),
            model,
            maxTokens: p.maxTokens ?? 4096,
            label,
          };
        default:
          return {
            provider: new OpenAiProvider({
              apiKey: apiKey(c.openai.apiKey),
              baseUrl: p.baseUrl ?? c.openai.baseUrl,
            }),
            model,
            maxTokens: p.maxTokens ?? 4096,
            label,
          };
      }
    });
  }

  #pausing(): boolean {
    return this.#pauseState !== "running";
  }

  /**
   * A run started or ended here. While the cluster is pausing the heartbeat goes at once: its count of
   * unparked runs is what tells the others that this replica has parked everything. Otherwise the periodic
   * heartbeat carries the new count (a write per run start and end was a tenth of a run's NATS traffic).
   */
  #heartbeatIfPausing(): void {
    if (this.#pausing()) void this.#heartbeat().catch(() => undefined);
  }

  /** At an iteration boundary: park while the cluster is pausing, then go on. */
  async #pauseGate(active: ActiveRun, emit: EmitEvent, signal: AbortSignal): Promise<void> {
    if (this.#pauseState === "running") return;
    active.parked = true;
    await emit("paused", {});
    void this.#heartbeat().catch(() => undefined);
    try {
      while (this.#pausing()) {
        if (signal.aborted) throw signal.reason;
        await Promise.race([
          this.#waitForWake(1_000),
          new Promise((r) => signal.addEventListener("abort", r, { once: true })),
        ]);
      }
    } finally {
      active.parked = false;
      void this.#heartbeat().catch(() => undefined);
    }
    await emit("resumed", {});
  }

  /** Frees the run's quota slot and locks. */
  async #releaseSlots(record: RunRecord): Promise<void> {
    await Promise.all([
      this.quotas.release(record.user_id, [record.run_id]),
      ...lockKeysOf(record).map((k) => this.locks.release(k, record.run_id)),
    ]);
  }

  async #refreshLocks(): Promise<void> {
    await Promise.all(
      [...this.#active.values()].flatMap(({ record }) =>
        lockKeysOf(record).map((k) => this.locks.refresh(k, record.run_id, this.replicaId)),
      ),
    );
  }

  // ---------------------------------------------------------------- cancel

  /**
   * Cancels a run wherever it is, without waiting for the replica that runs it: `cancelled` is written over
   * the queued or running record by compare-and-set (a terminal state is written once: the first writer
   * wins), and that write is the acknowledgement. The owner is then told on `runner.cancel.<replica>` (a
   * wake-up, not a request) and stops the run at its next await; it frees the run's slots when its loop
   * has stopped. A queued run's slots are freed here. See docs/runner.md, "Cancel".
   */
  async cancel(runId: string, reason: string): Promise<Outcome<RunRecord>> {
    const stopReason = reason === "client disconnected" ? reason : `cancelled: ${reason}`;
    const r = await this.runs.cancel(runId, { stop_reason: stopReason, ended_at: new Date().toISOString() });
    if (!r.ended) {
      if (!r.current)
        return { ok: false, refusal: { status: 404, code: "not_found", error: `no run ${runId}` } };
      return {
        ok: false,
        refusal: {
          status: 409,
          code: "run_finished",
          error: `run ${runId} already ended: ${r.current.status}`,
          extra: { status: r.current.status },
        },
      };
    }
    const ended = r.ended;
    this.#o.metrics?.runsFinished.inc({ status: "cancelled" });
    // The rest after the answer (it is written in the caller's continuation, before any immediate): the
    // owner's wake-up, the terminal event (followers of the run end on it) and, for a run no replica had
    // started, its slots (a replica that pulls its request later finds it ended and acknowledges it).
    setImmediate(() => this.#afterCancel(ended, r.from, stopReason));
    return { ok: true, value: ended };
  }

  /** What follows a cancel's compare-and-set: waking the owner, the `done` event, a queued run's slots. */
  #afterCancel(ended: RunRecord, from: RunStatus, stopReason: string): void {
    const runId = ended.run_id;
    if (from === "running") {
      if (ended.replica_id === this.replicaId) this.#stopLocal(runId, "cancelled", stopReason);
      else {
        try {
          this.fabric.nc.publish(
            subjects.runnerCancel(ended.replica_id),
            cancelRequestCodec.encode({ run_id: runId, reason: stopReason }),
          );
        } catch {
          // NATS away: the owner finds the record cancelled on its next check of its runs.
        }
      }
    }
    void (async () => {
      await this.#persist(
        () => this.events.append(runId, "done", { status: "cancelled", stop_reason: stopReason }),
        "storing a cancelled run's end",
      );
      if (from === "queued") await this.#persist(() => this.#releaseSlots(ended), "freeing a run's slots");
    })().catch((err: unknown) =>
      this.#log.warn({ err: String(err), run: runId }, "bookkeeping after a cancel failed"),
    );
  }

  /**
   * Stops a run executing here (its record already says how it ended, or will by this replica's own write).
   * A stop for a run not (yet) here is remembered for a minute: the wake-up can overtake the start.
   */
  #stopLocal(runId: string, status: "cancelled" | "failed", stopReason: string): boolean {
    const active = this.#active.get(runId);
    if (active) {
      if (!active.controller.signal.aborted) active.controller.abort(new RunStop(status, stopReason));
      return true;
    }
    const now = Date.now();
    for (const [id, e] of this.#earlyStops) if (now - e.at > EARLY_STOP_KEEP_MS) this.#earlyStops.delete(id);
    this.#earlyStops.set(runId, { status, stopReason, at: now });
    return false;
  }

  /** A message on this replica's cancel subject: a wake-up for a cancelled run, or a liveness probe. */
  #onCancelMessage(msg: Msg): void {
    if (msg.data.length === 0) {
      // A probe: any answer says this replica's connection is alive (see #probeReplicas).
      if (msg.reply) msg.respond(cancelReplyCodec.encode({ ok: true }));
      return;
    }
    const r = cancelRequestCodec.safeDecode(msg.data, "cancel request");
    if (!r.ok) {
      if (msg.reply) msg.respond(cancelReplyCodec.encode({ ok: false }));
      return;
    }
    const found = this.#stopLocal(r.value.run_id, "cancelled", r.value.reason);
    if (!msg.reply) return;
    // A request (a replica of an earlier version waits for the run to have ended): answer once it has.
    const active = this.#active.get(r.value.run_id);
    void Promise.race([active?.finished, new Promise((res) => setTimeout(res, 5_000))]).then(() =>
      msg.respond(cancelReplyCodec.encode({ ok: found })),
    );
  }

  /**
   * Runs executing here whose record another replica ended (a cancel whose wake-up was lost while this
   * replica was cut off, or the reaper): stop them. Called periodically and after a reconnect.
   */
  async #stopRunsEndedElsewhere(): Promise<void> {
    await Promise.all(
      [...this.#active.values()].map(async (a) => {
        if (a.controller.signal.aborted) return;
        const record = await this.runs.get(a.record.run_id);
        if (!record || !TERMINAL.has(record.status)) return;
        this.#stopLocal(
          a.record.run_id,
          record.status === "cancelled" ? "cancelled" : "failed",
          record.stop_reason ?? record.status,
        );
      }),
    );
  }

  /**
   * Fails a running run whose replica is gone (first writer wins), appends its error event, and frees its
   * quota slot, locks and global slot (by acknowledging its admission message).
   */
  async failRun(
    record: RunRecord,
    stopReason: string,
    error: string,
    later?: Array<() => Promise<void>>,
  ): Promise<RunRecord | undefined> {
    const failed = await this.runs.transition(
      record.run_id,
      "failed",
      { stop_reason: stopReason, error, ended_at: new Date().toISOString() },
      (r) => r.status === "running" && r.replica_id === record.replica_id,
    );
    if (!failed) return undefined;
    this.#log.warn(
      { run: record.run_id, replica: record.replica_id, stopReason },
      "run failed: its replica is gone",
    );
    this.#o.metrics?.runsFinished.inc({ status: "failed" });
    const bookkeeping = async () => {
      await this.events
        .append(record.run_id, "error", { status: "failed", stop_reason: stopReason, error })
        .catch(() => undefined);
      await this.#releaseSlots(failed);
      if (failed.admit_ack) this.fabric.nc.publish(failed.admit_ack, "+ACK");
    };
    // The reaper ends every run of a dead replica first and does the rest after: the end is what callers wait for.
    if (later) later.push(bookkeeping);
    else await bookkeeping();
    return failed;
  }

  // ---------------------------------------------------------------- liveness and the reaper

  /**
   * Two live processes must never share a replica id (each would take the other's runs for its own).
   * A heartbeat of another process with this id is waited out (a restart after a crash waits at most
   * one RUNNER_REPLICA_TTL_MS); a live one keeps heartbeating and makes the start fail.
   */
  async #claimReplicaId(): Promise<void> {
    const key = keys.runnerReplica(this.replicaId);
    const deadline = Date.now() + this.config.replicaTtlMs + 2 * this.config.heartbeatIntervalMs;
    for (;;) {
      const e = await this.#stores.replicas.get(key);
      const hb = e?.operation === "PUT" ? heartbeatCodec.safeDecode(e.value, key) : undefined;
      if (!hb?.ok || hb.value.instance === this.#instance) return;
      if (Date.now() > deadline) {
        throw new ConfigError(
          `RUNNER_REPLICA_ID ${this.replicaId} is in use by a live replica (started ${hb.value.started_at}); give each replica its own id`,
        );
      }
      await new Promise((r) => setTimeout(r, this.config.heartbeatIntervalMs));
    }
  }

  /** Runs an earlier process with this replica id left running when it died: they cannot go on. */
  async #failOrphans(minAgeMs = 0): Promise<void> {
    for (const quota of await this.quotas.all()) {
      for (const runId of Object.keys(quota.runs)) {
        if (this.#active.has(runId)) continue;
        const record = await this.runs.get(runId);
        if (record?.status !== "running" || record.replica_id !== this.replicaId || this.#active.has(runId))
          continue;
        // A run that has only just moved to running may not be in #active yet.
        if (Date.now() - Date.parse(record.started_at ?? record.created_at) < minAgeMs) continue;
        await this.failRun(
          record,
          "replica_died",
          minAgeMs === 0
            ? `replica ${this.replicaId} restarted while the run was running`
            : `replica ${this.replicaId} lost the run (its end could not be written)`,
        );
      }
    }
  }

  /**
   * Writes this replica's heartbeat by compare-and-set on its last revision: one write at a time, a call
   * during a write is folded into one more write after it. A conflict means the key is not as this
   * replica left it — expired (frozen or cut off beyond the TTL) or deleted by a replica that found this
   * one's connection gone — so this replica counts as dead: it fences itself and joins again.
   */
  #heartbeat(): Promise<void> {
    if (this.#stopped) return Promise.resolve();
    if (this.#hbRunning) {
      this.#hbAgain = true;
      return this.#hbRunning;
    }
    const run = (async () => {
      try {
        do {
          this.#hbAgain = false;
          await this.#writeHeartbeat();
        } while (this.#hbAgain && !this.#stopped);
      } finally {
        this.#hbRunning = undefined;
      }
    })();
    this.#hbRunning = run;
    return run;
  }

  async #writeHeartbeat(): Promise<void> {
    const kv = this.#stores.replicas;
    const key = keys.runnerReplica(this.replicaId);
    for (let attempt = 0; attempt < 3; attempt++) {
      if (this.#stopped) return;
      if (!this.fabric.isConnected) throw new Error("NATS is unreachable");
      const hb: Heartbeat = {
        replica_id: this.replicaId,
        instance: this.#instance,
        started_at: this.#startedAt,
        at: new Date().toISOString(),
        active_runs: this.#active.size,
        unparked_runs: [...this.#active.values()].filter((a) => !a.parked).length,
        pause_since: this.#pauseSince,
        url: this.#o.url ?? null,
        draining: this.#draining,
      };
      const data = heartbeatCodec.encode(hb);
      const sentAt = performance.now();
      try {
        // An update waits at most a heartbeat interval (a quarter TTL when longer), not the 5 s default: a
        // request lost across a NATS restart would hold every later heartbeat up past the TTL.
        this.#hbRevision =
          this.#hbRevision === 0
            ? await kv.create(key, data)
            : await kv.put(key, data, { previousSeq: this.#hbRevision, timeout: this.#hbTimeoutMs });
        this.#liveUntil = Math.max(this.#liveUntil, sentAt + this.config.replicaTtlMs - this.#fenceMarginMs);
        return;
      } catch (err) {
        if (!isCasConflict(err)) throw err;
      }
      const e = await kv.get(key);
      // Deleted by stop() while this write was on its way.
      if (this.#stopped) return;
      const current = e?.operation === "PUT" ? heartbeatCodec.safeDecode(e.value, key) : undefined;
      if (e && current?.ok && current.value.instance === this.#instance) {
        // This replica's own earlier write, whose answer was lost.
        this.#hbRevision = e.revision;
        continue;
      }
      if (current?.ok) {
        this.#fence("another process heartbeats with this replica id");
        throw new ConfigError(
          `RUNNER_REPLICA_ID ${this.replicaId} is in use by another live replica (started ${current.value.started_at}); give each replica its own id`,
        );
      }
      this.#fence(
        e
          ? "another replica found this one's NATS connection gone and took it for dead"
          : "its heartbeat expired",
      );
      this.#hbRevision = 0;
    }
  }

  /**
   * This replica counts as dead for the others (the reaper fails its runs, or will): it stops every run it
   * executes — their ends lose to the reaper's, or are the same `replica_died` — and takes no step until it
   * has joined again with a fresh heartbeat.
   */
  #fence(reason: string): void {
    this.#liveUntil = 0;
    const runs = [...this.#active.keys()];
    this.#log.error(
      { replica: this.replicaId, reason, runs: runs.length },
      "this replica was taken for dead; its runs are lost, it stops them and joins again",
    );
    for (const id of runs) this.#stopLocal(id, "failed", "replica_died");
  }

  /**
   * Before every provider call and tool call of a run. First lets I/O already received run (after a
   * freeze, timers fire before anything is read: a cancel's wake-up, or the heartbeat's conflict, would
   * come only after the step). Then, when this replica cannot be sure it still counts as alive — its last
   * acknowledged heartbeat is older than TTL − margin, or NATS went away since — waits for a heartbeat to
   * say so; one that finds the replica taken for dead stops the run (#fence).
   */
  async #stepGuard(signal: AbortSignal): Promise<void> {
    await new Promise((r) => setImmediate(r));
    for (;;) {
      if (signal.aborted) throw signal.reason;
      if (performance.now() < this.#liveUntil) return;
      await Promise.race([
        this.#heartbeat().catch(() => undefined),
        new Promise((r) => setTimeout(r, this.config.heartbeatIntervalMs)),
      ]);
      if (signal.aborted) throw signal.reason;
      if (performance.now() < this.#liveUntil) return;
      await new Promise((r) => setTimeout(r, Math.min(250, this.config.heartbeatIntervalMs)));
    }
  }

  /**
   * The fast death signal. A request to a replica's cancel subject is answered "no responders" by the
   * server as soon as that replica's connection is gone (a killed process's socket closes at once); a
   * frozen replica keeps its connection, so its probes only time out, which proves nothing. Two such
   * answers at least RUNNER_DEATH_CONFIRM_MS apart, with no heartbeat between them, and the replica is
   * taken for dead (#declareDead) without waiting for its heartbeat to expire. Probes start only once this
   * replica's own connection has been up for PROBE_GRACE_MS (or the TTL, when shorter).
   */
  async #probeReplicas(): Promise<void> {
    if (this.#draining || this.#stopped) return;
    const grace = Math.min(this.config.replicaTtlMs, PROBE_GRACE_MS);
    if (!this.fabric.isConnected || performance.now() - this.#connectedAt < grace) {
      this.#suspects.clear();
      return;
    }
    const entries = (await this.#heartbeatEntries()).filter((e) => e.hb.replica_id !== this.replicaId);
    const seen = new Set(entries.map((e) => e.hb.replica_id));
    for (const id of this.#suspects.keys()) if (!seen.has(id)) this.#suspects.delete(id);
    await Promise.all(
      entries.map(async ({ hb, revision }) => {
        const id = hb.replica_id;
        const gone = await this.#connectionGone(id);
        const now = performance.now();
        if (!gone) {
          this.#suspects.delete(id);
          return;
        }
        const s = this.#suspects.get(id);
        if (!s || s.revision !== revision) {
          this.#suspects.set(id, { since: now, revision });
          return;
        }
        if (now - s.since < this.config.deathConfirmMs) return;
        this.#suspects.delete(id);
        await this.#declareDead(id, revision);
      }),
    );
  }

  async #connectionGone(replicaId: string): Promise<boolean> {
    try {
      await this.fabric.nc.request(subjects.runnerCancel(replicaId), new Uint8Array(0), {
        timeout: PROBE_TIMEOUT_MS,
      });
      return false;
    } catch (err) {
      return isNoResponders(err);
    }
  }

  /**
   * Deletes the dead replica's heartbeat — by compare-and-set on the revision both probes saw, so a
   * replica that heartbeated meanwhile is left alone — and its reaper lease if it held it, then sweeps.
   * Should it be alive after all, its next heartbeat finds the key gone and it fences itself.
   */
  async #declareDead(replicaId: string, revision: number): Promise<void> {
    const kv = this.#stores.replicas;
    try {
      await kv.delete(keys.runnerReplica(replicaId), { previousSeq: revision });
    } catch (err) {
      if (isCasConflict(err)) return;
      throw err;
    }
    this.#log.warn({ replica: replicaId }, "replica's NATS connection is gone: taken for dead");
    const lease = await kv.get(keys.runnerReaperLease());
    if (lease?.operation === "PUT") {
      const holder = leaseHolderCodec.safeDecode(lease.value, "reaper lease");
      if (holder.ok && holder.value.holder === replicaId) {
        await kv.delete(keys.runnerReaperLease(), { previousSeq: lease.revision }).catch((err: unknown) => {
          if (!isCasConflict(err)) throw err;
        });
      }
    }
    await this.#reap();
  }

  /** Heartbeats of the live replicas, with their revisions. */
  async #heartbeatEntries(): Promise<Array<{ hb: Heartbeat; revision: number }>> {
    const out: Array<{ hb: Heartbeat; revision: number }> = [];
    const list = await listKeys(this.#stores.replicas, keys.runnerReplicasPrefix());
    await Promise.all(
      list.map(async (k) => {
        const e = await this.#stores.replicas.get(k);
        if (e?.operation !== "PUT") return;
        const hb = heartbeatCodec.safeDecode(e.value, k);
        if (hb.ok) out.push({ hb: hb.value, revision: e.revision });
      }),
    );
    return out;
  }

  /** Heartbeats of the live replicas (a missing key is a dead replica). */
  async replicas(): Promise<Heartbeat[]> {
    return (await this.#heartbeatEntries())
      .map((e) => e.hb)
      .sort((a, b) => a.replica_id.localeCompare(b.replica_id));
  }

  async #isLive(replicaId: string): Promise<boolean> {
    if (replicaId === this.replicaId) return true;
    const e = await this.#stores.replicas.get(keys.runnerReplica(replicaId));
    return e?.operation === "PUT";
  }

  /** Whether this replica holds the reaper lease now. */
  get isReaper(): boolean {
    return this.#reaper?.held === true;
  }

  async #reap(): Promise<void> {
    if (this.#draining) return;
    if (this.#reaping) {
      // A sweep under way may have read the heartbeats before a replica was found dead: one more after it.
      this.#reapAgain = true;
      return;
    }
    this.#reaping = true;
    try {
      if (!this.#reaper?.held) {
        await this.#reaper?.release().catch(() => undefined);
        this.#reaper = await Lease.tryAcquire(this.#stores.replicas, keys.runnerReaperLease(), {
          holder: this.replicaId,
          ttlMs: this.config.replicaTtlMs,
          renewIntervalMs: Math.max(50, Math.floor(this.config.replicaTtlMs / 4)),
          logger: this.#log,
        });
        if (!this.#reaper) return;
        this.#log.info({ replica: this.replicaId }, "this replica is now the reaper");
      }
      do {
        this.#reapAgain = false;
        await this.#sweep(this.#reaper.signal);
      } while (this.#reapAgain && this.#reaper.held);
    } finally {
      this.#reaping = false;
    }
  }

  /**
   * One pass over every admitted run (the quota sets): a running run whose replica is dead is failed;
   * the slots of ended runs, and of runs whose record a dead replica never wrote, are freed.
   */
  async #sweep(signal: AbortSignal): Promise<void> {
    const seenAt = Date.now();
    const live = new Set((await this.replicas()).map((r) => r.replica_id));
    live.add(this.replicaId);
    // Users are swept SWEEP_CONCURRENCY at a time: after a replica with hundreds of runs dies, failing them
    // one user after another would take a round trip per write in series.
    const quotas = await this.quotas.all();
    let next = 0;
    const lane = async () => {
      while (next < quotas.length && !signal.aborted) {
        const quota = quotas[next++];
        if (quota) await this.#sweepUser(quota, live, seenAt, later);
      }
    };
    const later: Array<() => Promise<void>> = [];
    await Promise.all(Array.from({ length: Math.min(SWEEP_CONCURRENCY, quotas.length) }, lane));
    // Then the failed runs' events and slots, as many at once.
    let k = 0;
    const rest = async () => {
      while (k < later.length) {
        const task = later[k++];
        await task?.().catch((err: unknown) =>
          this.#log.warn({ err: String(err) }, "freeing a failed run's slots failed; the next sweep retries"),
        );
      }
    };
    await Promise.all(Array.from({ length: Math.min(SWEEP_CONCURRENCY, later.length) }, rest));
  }

  /** `live`: the replicas with a heartbeat at `seenAt` (a run started after that is not judged by it). */
  async #sweepUser(
    quota: QuotaRecord,
    live: Set<string>,
    seenAt: number,
    later: Array<() => Promise<void>>,
  ): Promise<void> {
    await Promise.all(
      Object.entries(quota.runs).map(async ([runId, acceptedBy]) => {
        const record = await this.runs.get(runId);
        if (!record) {
          // Only while the dead replica is still its acceptor: a repeat of the request may have taken it over.
          if (!live.has(acceptedBy)) await this.quotas.release(quota.user_id, [runId], acceptedBy);
          return;
        }
        if (TERMINAL.has(record.status)) {
          // Ended, its slots still held: the replica that ran it frees them once its loop has stopped (a run
          // cancelled from elsewhere goes on until the owner hears of it). Its death, or a long delay, frees
          // them here — its global slot too, by acknowledging the admission message the record names.
          const ownerGone = !live.has(record.replica_id);
          const endedAgo = Date.now() - Date.parse(record.ended_at ?? record.created_at);
          if (!ownerGone && endedAgo < ENDED_RELEASE_AFTER_MS) return;
          await this.#releaseSlots(record);
          if (record.admit_ack) this.fabric.nc.publish(record.admit_ack, "+ACK");
          return;
        }
        if (
          record.status === "running" &&
          !live.has(record.replica_id) &&
          Date.parse(record.started_at ?? record.created_at) < seenAt
        ) {
          await this.failRun(record, "replica_died", `replica ${record.replica_id} is gone`, later);
        }
      }),
    );
  }

  // ---------------------------------------------------------------- pause

  async #watchPause(): Promise<void> {
    const w = await this.#stores.state.watch({ key: keys.runnerPause() });
    this.#pauseWatch = w;
    void (async () => {
      for await (const e of w as AsyncIterable<KvWatchEntry>) {
        const v = e.operation === "PUT" ? pauseCodec.safeDecode(e.value, "pause") : undefined;
        this.#pauseState = v?.ok ? v.value.state : "running";
        this.#pauseSince = v?.ok && v.value.state === "pausing" ? v.value.since : null;
        // The heartbeat first: it is how the rest of the cluster sees that this replica saw the change.
        void this.#heartbeat().catch(() => undefined);
        this.#wake();
      }
    })();
  }

  /** running → pausing; then waits up to `timeoutMs` for every run of every replica to park. */
  async pause(timeoutMs: number): Promise<Outcome<ClusterState>> {
    const r = await this.pauses.set("pausing", this.replicaId);
    if (!r.ok) {
      return {
        ok: false,
        refusal: { status: 409, code: "already_pausing", error: "the runtime is already pausing or paused" },
      };
    }
    this.#pauseState = "pausing";
    this.#pauseSince = r.record.since;
    void this.#heartbeat().catch(() => undefined);
    this.#wake();
    const deadline = Date.now() + timeoutMs;
    let state = await this.clusterState();
    while (state === "pausing" && Date.now() < deadline) {
      await new Promise((res) => setTimeout(res, 50));
      state = await this.clusterState();
    }
    return { ok: true, value: state };
  }

  async resume(): Promise<Outcome<ClusterState>> {
    const r = await this.pauses.set("running", this.replicaId);
    if (!r.ok)
      return { ok: false, refusal: { status: 409, code: "not_paused", error: "the runtime is not paused" } };
    this.#pauseState = "running";
    this.#pauseSince = null;
    void this.#heartbeat().catch(() => undefined);
    this.#wake();
    return { ok: true, value: "running" };
  }

  /**
   * `paused` once the flag says pausing and every live replica has seen this very pause (its heartbeat
   * names the pause) and has no run that has not parked.
   */
  async clusterState(): Promise<ClusterState> {
    const p = await this.pauses.get();
    if (p.state === "running") return "running";
    const mine = [...this.#active.values()].filter((a) => !a.parked).length;
    if (mine > 0 || this.#pauseSince !== p.since) return "pausing";
    const others = (await this.replicas()).filter((r) => r.replica_id !== this.replicaId);
    return others.every((r) => r.pause_since === p.since && r.unparked_runs === 0) ? "paused" : "pausing";
  }

  // ---------------------------------------------------------------- reading

  /** Cluster-wide concurrency: global from the admission consumer, per user from the quota sets. */
  async stats(): Promise<Record<string, unknown>> {
    const info = await this.#stores.admit.info(false);
    const users: Record<string, { active: number; queued: number; cap: number }> = {};
    for (const q of await this.quotas.all()) {
      const records = await Promise.all(Object.keys(q.runs).map((id) => this.runs.get(id)));
      users[q.user_id] = {
        active: records.filter((r) => r?.status === "running").length,
        queued: records.filter((r) => r === undefined || r.status === "queued").length,
        cap: this.config.maxRunsPerUser,
      };
    }
    return {
      global: { active: info.num_ack_pending, queued: info.num_pending, cap: this.config.maxConcurrentRuns },
      users,
      replicas: await this.replicas(),
    };
  }

  followEvents(runId: string, after: number, signal: AbortSignal): AsyncGenerator<RunEvent> {
    return this.events.follow(runId, after, signal);
  }

  /** Every change of the user's run records (the reaper's too), starting with their current state. */
  async *watchUser(userId: string, signal: AbortSignal): AsyncGenerator<RunRecord> {
    const w = await this.#stores.runs.watch({ key: keys.runnerUserRunsPrefix(userId) });
    const stop = () => w.stop();
    signal.addEventListener("abort", stop, { once: true });
    try {
      for await (const e of w as AsyncIterable<KvWatchEntry>) {
        if (e.operation !== "PUT") continue;
        const r = recordCodec.safeDecode(e.value, e.key);
        if (r.ok && r.value.user_id === userId) yield r.value;
      }
    } finally {
      signal.removeEventListener("abort", stop);
      w.stop();
    }
  }

  // ---------------------------------------------------------------- shutdown

  /**
   * Graceful stop: takes no new runs, lets running ones finish for up to RUNNER_DRAIN_TIMEOUT_MS, fails
   * the rest (`replica_shutdown`), then removes its heartbeat and gives up the reaper lease. Queued
   * requests stay in the stream for the other replicas.
   */
  async drain(): Promise<void> {
    if (this.#draining) return;
    this.#draining = true;
    this.#wake();
    await this.#heartbeat().catch(() => undefined);
    const all = () => Promise.all([...this.#active.values()].map((a) => a.finished));
    const inTime = await Promise.race([
      all().then(() => true),
      new Promise<boolean>((r) => setTimeout(() => r(false), this.config.drainTimeoutMs)),
    ]);
    if (!inTime) {
      for (const a of this.#active.values()) a.controller.abort(new RunStop("failed", "replica_shutdown"));
      await all();
    }
    await this.#pullLoop?.catch(() => undefined);
    await this.stop();
  }

  /** Stops timers and subscriptions and removes the heartbeat (does not close the NATS connection). */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#wake();
    for (const t of this.#timers) clearInterval(t);
    this.#pauseWatch?.stop();
    this.#offState?.();
    await this.#reaper?.release().catch(() => undefined);
    await this.#hbRunning?.catch(() => undefined);
    // The heartbeat goes before the probe subscription, so no replica takes this one for a dead one.
    await this.#stores?.replicas.delete(keys.runnerReplica(this.replicaId)).catch(() => undefined);
    this.#cancelSub?.unsubscribe();
  }
}

/**
 * The run id of an idempotent request: the user's token (so the user's runs still list by prefix) and 16 hex
 * of sha256 over the user id and the key. The same user and key always give the same run.
 */
export function idempotentRunId(userId: string, key: string): string {
  const h = createHash("sha256").update(`runner-idempotency\n${userId}\n${key}`).digest("hex");
  return runnerUserToken(userId) + h.slice(0, 16);
}

function requestWithoutPrompt(r: RunRequest): Omit<RunRequest, "prompt"> {
  const { prompt: _prompt, ...rest } = r;
  return rest;
}

function isNoResponders(err: unknown): boolean {
  if (err instanceof NoRespondersError) return true;
  const cause = (err as { cause?: unknown })?.cause;
  return cause instanceof NoRespondersError || /no responders/i.test(String((err as Error)?.message));
}
