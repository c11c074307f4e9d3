import { type Fabric, isUnavailableError, type Logger, silentLogger } from "@loominal/fabric";
import {
  FINAL_SUBTASK_STATUSES,
  LoominalError,
  type OrchestrationPhase,
  type OrchestrationRecord,
  randomId,
  type ShuttleWorkContext,
  type SubtaskPlan,
  type SubtaskState,
  type SubtaskStatus,
  type WorkEvent,
  type WorkItem,
  type WorkOfferInput,
} from "@loominal/protocol";
import { type DriverInfo, DriverLocks } from "./driver.js";
import { InvalidTransitionError, OrchestrationNotFoundError, PathEscapeError, PlanError } from "./errors.js";
import type { FileRead, WorkDir } from "./paths.js";
import { assertTransition, isTerminalPhase, withPhase } from "./phases.js";
import { orderPlan, type PlanTemplate, planTemplate } from "./plan.js";
import type { OrchestrationStore } from "./store.js";
import { type Synthesis, type SynthesisFormat, synthesize } from "./synthesis.js";

/** The part of Warp's WorkQueue that Shuttle uses. */
export interface WorkQueuePort {
  offer(input: WorkOfferInput): Promise<WorkItem>;
  get(workId: string): Promise<WorkItem | undefined>;
  cancel(workId: string, reason?: string): Promise<unknown>;
  watchEvents(handler: (event: WorkEvent) => void): { stop(): unknown } | Promise<{ stop(): unknown }>;
}

export interface ShuttleOptions {
  fabric: Fabric;
  projectId: string;
  /** The agent on whose behalf work is offered (the parent agent). */
  agentId: string;
  store: OrchestrationStore;
  queue: WorkQueuePort;
  logger?: Logger;
  /**
   * How often every orchestration this process drives is compared with the work ledger, catching up on
   * events missed while NATS was unreachable and retrying offers that failed. Default 5000 ms.
   */
  reconcileIntervalMs?: number;
  /** How long a tool waits for NATS before answering "NATS unreachable". Default 2000 ms. */
  natsWaitMs?: number;
  /** Boundary of offered work (default: Warp's default boundary). */
  boundary?: string;
}

/** Bytes of an output file returned by `results()`; the rest is reported as truncated. */
export const OUTPUT_READ_LIMIT = 256 * 1024;
/** Bytes of a worker's result kept in the orchestration record. */
const RESULT_KEEP_BYTES = 16 * 1024;
/** Largest orchestration record accepted, in bytes of JSON (the KV mirror must take it). */
const RECORD_MAX_BYTES = 512 * 1024;

export type AssessOutcome =
  | { kind: "template"; template: PlanTemplate }
  | { kind: "plan"; record: OrchestrationRecord };

export interface OrchestrationSummary {
  orchestrationId: string;
  task: string;
  phase: OrchestrationPhase;
  createdAt: string;
  updatedAt: string;
  subtasks: number;
  completed: number;
  failed: number;
  outstanding: number;
  /** Whether the orchestration's directory is in this process's work dir. */
  local: boolean;
}

export interface SubtaskResult {
  id: string;
  title: string;
  status: SubtaskStatus;
  wave: number;
  workId: string | undefined;
  claims: number;
  claimedBy: string | undefined;
  result: unknown;
  error: string | undefined;
  outputPath: string;
  output: FileRead | undefined;
}

export interface ResultsView {
  record: OrchestrationRecord;
  subtasks: SubtaskResult[];
  /** Subtasks without an output file, with their status. */
  missingOutputs: Array<{ id: string; status: SubtaskStatus }>;
}

export interface CancelOutcome {
  record: OrchestrationRecord;
  cancelledWork: string[];
  /** Work items that could not be cancelled (NATS unreachable, already finished), with the reason. */
  notCancelled: Array<{ subtaskId: string; workId: string; reason: string }>;
}

const OUTSTANDING: readonly SubtaskStatus[] = ["waiting", "offered", "claimed"];

function now(): string {
  return new Date().toISOString();
}

function subtaskDir(id: string): string[] {
  return ["subtasks", id];
}

/**
 * Shuttle: plans a task into subtasks, offers them as Warp work wave by wave, follows the work events,
 * and collects and synthesises the outputs. Every orchestration is a file in the work dir first and a
 * KV record second, so it survives restarts and NATS outages.
 */
export class Shuttle {
  readonly store: OrchestrationStore;
  readonly workDir: WorkDir;
  readonly drivers: DriverLocks;
  #fabric: Fabric;
  #projectId: string;
  #agentId: string;
  #queue: WorkQueuePort;
  #logger: Logger;
  #natsWaitMs: number;
  #boundary: string | undefined;
  /** Per orchestration, the tail of its queue of mutations: one write at a time, in order. */
  #tails = new Map<string, Promise<unknown>>();
  /** Work item → subtask, for every subtask of an orchestration this process drives. */
  #byWork = new Map<string, { orchestrationId: string; subtaskId: string }>();
  /** Orchestrations this process drives that are still spawning or executing. */
  #active = new Set<string>();
  #offersInFlight = 0;
  /** Orchestrations inside a spawn() call right now. */
  #spawning = new Set<string>();
  #watch: { stop(): unknown } | undefined;
  #watchStarting = false;
  #timer: NodeJS.Timeout | undefined;
  #ticks = 0;
  #closed = false;
  #stopStateListener: () => void;
  #reconcileSoon: NodeJS.Timeout | undefined;

  constructor(options: ShuttleOptions) {
    this.#fabric = options.fabric;
    this.#projectId = options.projectId;
    this.#agentId = options.agentId;
    this.store = options.store;
    this.workDir = options.store.workDir;
    this.#queue = options.queue;
    this.#logger = options.logger ?? silentLogger();
    this.#natsWaitMs = options.natsWaitMs ?? 2_000;
    this.#boundary = options.boundary;
    this.drivers = new DriverLocks(this.workDir);
    const interval = options.reconcileIntervalMs ?? 5_000;
    this.#timer = setInterval(() => void this.#tick(), interval);
    this.#timer.unref();
    this.#stopStateListener = this.#fabric.onStateChange((state) => {
      if (state === "connected") void this.#tick();
    });
  }

  /**
   * Adopts the orchestrations of the work dir left running by a process that is gone, pushes records the
   * bucket missed, and starts following work events. Call once after construction.
   */
  async start(): Promise<void> {
    await this.store.markAllPending();
    await this.#adoptOrphans();
    void this.#tick();
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer) clearInterval(this.#timer);
    if (this.#reconcileSoon) clearTimeout(this.#reconcileSoon);
    this.#stopStateListener();
    await this.#watch?.stop();
    this.#watch = undefined;
    await Promise.allSettled([...this.#tails.values()]);
    await this.drivers.releaseAll();
    this.store.close();
  }

  // ── planning ──────────────────────────────────────────────────────────────────────────────────────

  /** Validates and orders a plan into an orchestration in `assessment`; without subtasks, a template. */
  async assess(task: string, subtasks?: SubtaskPlan[]): Promise<AssessOutcome> {
    if (subtasks === undefined) return { kind: "template", template: planTemplate(task) };
    const plan = orderPlan(subtasks);
    const orchestrationId = randomId();
    const at = now();
    const record: OrchestrationRecord = {
      orchestrationId,
      projectId: this.#projectId,
      task,
      phase: "assessment",
      version: 1,
      createdBy: this.#agentId,
      createdAt: at,
      updatedAt: at,
      waves: plan.waves,
      subtasks: plan.subtasks.map((s) => ({
        id: s.id,
        title: s.title,
        description: s.description,
        capability: s.capability,
        dependsOn: s.dependsOn,
        wave: plan.waveOf.get(s.id) ?? 0,
        status: "waiting",
        outputFile: [...subtaskDir(s.id), "output.md"].join("/"),
        claims: 0,
        updatedAt: at,
      })),
      history: [{ from: null, to: "assessment", at }],
      checkpoints: [],
      directory: this.workDir.path(orchestrationId),
    };
    const size = Buffer.byteLength(JSON.stringify(record), "utf8");
    if (size > RECORD_MAX_BYTES) {
      throw new PlanError(
        `the plan is ${size} bytes of JSON; the limit is ${RECORD_MAX_BYTES}. Shorten the descriptions and put detail in files the workers read`,
      );
    }
    await this.workDir.ensureDir(orchestrationId);
    const lock = await this.drivers.acquire(orchestrationId);
    if (!lock.ok) throw this.#heldElsewhere(orchestrationId, lock.holder);
    await this.store.save(record);
    return { kind: "plan", record };
  }

  // ── spawning and execution ────────────────────────────────────────────────────────────────────────

  /**
   * Creates a directory per subtask, offers the first wave as Warp work and moves to `execution`.
   * Later waves are offered as their dependencies complete, by this process following work events.
   */
  async spawn(orchestrationId: string): Promise<OrchestrationRecord> {
    const current = await this.#loadDriven(orchestrationId);
    assertTransition(current.phase, "spawning");
    await this.#needNats();
    // Spawning is saved before anything is offered, so a crash part-way leaves a record that the next
    // Shuttle server adopts and finishes instead of one that looks untouched.
    await this.#mutate(orchestrationId, async (rec) => {
      const next = withPhase(rec, "spawning", now());
      for (const s of next.subtasks) await this.workDir.ensureDir(orchestrationId, ...subtaskDir(s.id));
      return next;
    });
    this.#active.add(orchestrationId);
    this.#spawning.add(orchestrationId);
    try {
      await this.#mutate(orchestrationId, async (rec) => {
        const next = await this.#advance(rec);
        const offered = next.subtasks.filter((s) => s.workId !== undefined).map((s) => s.id);
        const note = `offered ${offered.length > 0 ? offered.join(", ") : "nothing yet"}`;
        return withPhase(next, "execution", now(), note);
      });
    } finally {
      this.#spawning.delete(orchestrationId);
    }
    // A plan whose work all finished already moves on to collection here.
    return this.#mutate(orchestrationId, (rec) => this.#advance(rec));
  }

  /** Where a subtask's output goes, absolute. */
  outputPath(record: OrchestrationRecord, subtask: SubtaskState): string {
    return this.workDir.path(record.orchestrationId, subtask.outputFile);
  }

  /**
   * Recomputes what can move: blocks subtasks whose dependencies failed, offers subtasks whose
   * dependencies completed, and moves a finished execution to `collection`.
   */
  async #advance(record: OrchestrationRecord): Promise<OrchestrationRecord> {
    if (record.phase !== "spawning" && record.phase !== "execution") return record;
    const byId = new Map(record.subtasks.map((s) => [s.id, s]));
    const at = now();
    // Plan order is a topological order only within waves, so walk the waves.
    for (const wave of record.waves) {
      for (const id of wave) {
        const s = byId.get(id);
        if (!s || (s.status !== "waiting" && s.status !== "blocked")) continue;
        const badDep = s.dependsOn.find((d) => {
          const st = byId.get(d)?.status;
          return st === "failed" || st === "cancelled" || st === "blocked";
        });
        if (badDep) {
          if (s.status !== "blocked") {
            byId.set(id, {
              ...s,
              status: "blocked",
              error: `dependency ${badDep} did not complete`,
              updatedAt: at,
            });
          }
          continue;
        }
        if (s.status === "blocked")
          byId.set(id, { ...s, status: "waiting", error: undefined, updatedAt: at });
      }
    }
    let subtasks = record.subtasks.map((s) => byId.get(s.id) ?? s);
    const ready = subtasks.filter(
      (s) => s.status === "waiting" && s.dependsOn.every((d) => byId.get(d)?.status === "completed"),
    );
    if (ready.length > 0 && this.#fabric.isConnected) {
      const offered = new Map<string, SubtaskState>();
      for (const s of ready) {
        const done = await this.#offer(record, s, byId);
        if (done) offered.set(s.id, done);
      }
      subtasks = subtasks.map((s) => offered.get(s.id) ?? s);
    }
    let next: OrchestrationRecord = { ...record, subtasks };
    if (next.phase === "execution" && subtasks.every((s) => FINAL_SUBTASK_STATUSES.includes(s.status))) {
      const failed = subtasks.filter((s) => s.status !== "completed").map((s) => `${s.id} (${s.status})`);
      next = withPhase(
        next,
        "collection",
        now(),
        failed.length === 0 ? "every subtask completed" : `finished with ${failed.join(", ")}`,
      );
      this.#stopDriving(next);
    }
    return next;
  }

  async #offer(
    record: OrchestrationRecord,
    s: SubtaskState,
    byId: Map<string, SubtaskState>,
  ): Promise<SubtaskState | undefined> {
    const workDir = this.workDir.path(record.orchestrationId, ...subtaskDir(s.id));
    const outputPath = this.outputPath(record, s);
    const context: ShuttleWorkContext = {
      orchestrationId: record.orchestrationId,
      subtaskId: s.id,
      title: s.title,
      workDir,
      outputPath,
      dependencies: s.dependsOn.map((d) => {
        const dep = byId.get(d);
        return {
          subtaskId: d,
          title: dep?.title ?? d,
          outputPath: dep ? this.outputPath(record, dep) : "",
        };
      }),
    };
    const description = [
      s.title,
      "",
      s.description,
      "",
      `Write your output (Markdown) to ${outputPath}.`,
      ...(context.dependencies.length > 0
        ? [
            "Outputs of the subtasks this one depends on:",
            ...context.dependencies.map((d) => `- ${d.title}: ${d.outputPath}`),
          ]
        : []),
    ].join("\n");
    this.#offersInFlight++;
    try {
      const item = await this.#queue.offer({
        taskId: `shuttle-${record.orchestrationId}-${s.id}`,
        description: description.slice(0, 20_000),
        capability: s.capability,
        ...(this.#boundary ? { boundary: this.#boundary } : {}),
        contextData: { shuttle: context },
      });
      this.#byWork.set(item.workId, { orchestrationId: record.orchestrationId, subtaskId: s.id });
      const at = now();
      return { ...s, status: "offered", workId: item.workId, offeredAt: at, updatedAt: at };
    } catch (err) {
      // The subtask stays waiting; the next reconcile offers it again.
      this.#logger.warn(
        { orchestrationId: record.orchestrationId, subtaskId: s.id, err: String(err) },
        "could not offer a subtask; will retry",
      );
      if (!isUnavailableError(err) && err instanceof LoominalError && err.code === "invalid_input") {
        const at = now();
        return {
          ...s,
          status: "failed",
          error: `Warp refused the work item: ${err.message}`,
          finishedAt: at,
          updatedAt: at,
        };
      }
      return undefined;
    } finally {
      this.#offersInFlight--;
    }
  }

  /** Applies a ledger state of a subtask's work item; older states than the one applied are ignored. */
  #applyItem(record: OrchestrationRecord, subtaskId: string, item: WorkItem): OrchestrationRecord {
    const at = now();
    const subtasks = record.subtasks.map((s): SubtaskState => {
      if (s.id !== subtaskId || s.workId !== item.workId) return s;
      if (s.workUpdatedAt && Date.parse(item.updatedAt) < Date.parse(s.workUpdatedAt)) return s;
      const base = {
        ...s,
        workUpdatedAt: item.updatedAt,
        claims: Math.max(s.claims, item.attempts),
        updatedAt: at,
        ...(item.claim ? { claimedBy: item.claim.agentId } : {}),
        ...(item.claim?.progressNote ? { lastNote: item.claim.progressNote } : {}),
      };
      switch (item.status) {
        case "pending":
          return {
            ...base,
            status: "offered",
            ...(item.lastError
              ? { error: `attempt ${item.lastError.attempt}: ${item.lastError.reason}` }
              : {}),
          };
        case "claimed":
          return { ...base, status: "claimed" };
        case "completed":
          return {
            ...base,
            status: "completed",
            error: undefined,
            result: keepResult(item.result),
            finishedAt: item.finishedAt ?? at,
            ...(item.completedBy ? { claimedBy: item.completedBy } : {}),
          };
        case "dead":
          return {
            ...base,
            status: "failed",
            error: item.dead?.reason ?? item.lastError?.reason ?? "the work item died",
            finishedAt: item.dead?.at ?? at,
          };
        case "cancelled":
        case "discarded":
          return {
            ...base,
            status: "cancelled",
            error: item.cancelReason ?? `work item ${item.status}`,
            finishedAt: item.finishedAt ?? at,
          };
        default:
          return s;
      }
    });
    return { ...record, subtasks };
  }

  #onEvent(event: WorkEvent): void {
    const ref = this.#byWork.get(event.workId);
    if (!ref) {
      // The offer that created this item may not have returned yet; look again shortly.
      if (this.#offersInFlight > 0) this.#scheduleReconcile();
      return;
    }
    void this.#mutate(ref.orchestrationId, (rec) =>
      this.#advance(this.#applyItem(rec, ref.subtaskId, event.item)),
    ).catch((err) => this.#logger.warn({ ...ref, err: String(err) }, "could not apply a work event"));
  }

  #scheduleReconcile(): void {
    if (this.#reconcileSoon || this.#closed) return;
    this.#reconcileSoon = setTimeout(() => {
      this.#reconcileSoon = undefined;
      void this.#reconcileAll();
    }, 100);
    this.#reconcileSoon.unref();
  }

  /** Compares one driven orchestration with the work ledger and advances it. */
  async reconcile(orchestrationId: string): Promise<OrchestrationRecord> {
    return this.#mutate(orchestrationId, async (rec) => {
      let next = rec;
      if (this.#fabric.isConnected) {
        for (const s of rec.subtasks) {
          if (!s.workId || (s.status !== "offered" && s.status !== "claimed")) continue;
          try {
            const item = await this.#queue.get(s.workId);
            if (item) next = this.#applyItem(next, s.id, item);
          } catch (err) {
            this.#logger.warn(
              { orchestrationId, workId: s.workId, err: String(err) },
              "could not read a work item",
            );
          }
        }
      }
      next = await this.#advance(next);
      // A spawn interrupted by a restart: its work is offered now, so it is executing.
      if (next.phase === "spawning" && !this.#spawning.has(orchestrationId)) {
        next = withPhase(next, "execution", now(), "resumed after the spawning server stopped");
      }
      return next;
    });
  }

  async #reconcileAll(): Promise<void> {
    for (const id of [...this.#active]) {
      try {
        await this.reconcile(id);
      } catch (err) {
        this.#logger.warn({ orchestrationId: id, err: String(err) }, "reconcile failed");
      }
    }
  }

  async #tick(): Promise<void> {
    if (this.#closed) return;
    this.#ticks++;
    if (this.#ticks % 6 === 0) await this.#adoptOrphans().catch(() => undefined);
    if (!this.#fabric.isConnected) return;
    await this.#ensureWatching();
    await this.#reconcileAll();
    await this.store.flush();
  }

  async #ensureWatching(): Promise<void> {
    if (this.#watch || this.#watchStarting || this.#closed) return;
    this.#watchStarting = true;
    try {
      this.#watch = await this.#queue.watchEvents((e) => this.#onEvent(e));
      if (this.#closed) await this.#watch.stop();
    } catch (err) {
      this.#logger.warn({ err: String(err) }, "could not follow work events yet; will retry");
    } finally {
      this.#watchStarting = false;
    }
  }

  /** Takes over spawning/executing orchestrations whose driver process is gone. */
  async #adoptOrphans(): Promise<void> {
    for (const rec of await this.store.listLocal()) {
      if (rec.phase !== "spawning" && rec.phase !== "execution") continue;
      if (this.#active.has(rec.orchestrationId)) continue;
      const lock = await this.drivers.acquire(rec.orchestrationId);
      if (!lock.ok) continue;
      this.#startDriving(rec);
      this.#logger.info({ orchestrationId: rec.orchestrationId }, "driving orchestration");
    }
  }

  #startDriving(rec: OrchestrationRecord): void {
    this.#active.add(rec.orchestrationId);
    for (const s of rec.subtasks) {
      if (s.workId) this.#byWork.set(s.workId, { orchestrationId: rec.orchestrationId, subtaskId: s.id });
    }
  }

  #stopDriving(rec: OrchestrationRecord): void {
    this.#active.delete(rec.orchestrationId);
    for (const s of rec.subtasks) if (s.workId) this.#byWork.delete(s.workId);
  }

  // ── phases, state, results ────────────────────────────────────────────────────────────────────────

  /**
   * Records a checkpoint, optionally moving to `phase`. Moving to `failed` or `cancelled` cancels the
   * outstanding work; moving to `collection` needs every subtask finished; `spawning` happens only
   * through spawn().
   */
  async checkpoint(
    orchestrationId: string,
    phase?: OrchestrationPhase,
    note?: string,
  ): Promise<OrchestrationRecord> {
    const current = await this.#loadDriven(orchestrationId);
    if (phase === "cancelled") return (await this.cancel(orchestrationId, note)).record;
    if (phase !== undefined && phase !== current.phase) {
      assertTransition(current.phase, phase);
      if (phase === "spawning") {
        throw new InvalidTransitionError(
          "move to spawning with shuttle_spawn_subagents, which offers the work",
          {
            from: current.phase,
            to: phase,
          },
        );
      }
      if (phase === "collection") {
        const open = current.subtasks.filter((s) => OUTSTANDING.includes(s.status)).map((s) => s.id);
        if (open.length > 0) {
          throw new InvalidTransitionError(
            `cannot move to collection while ${open.length} subtasks are outstanding (${open.join(", ")}); wait for them or cancel with shuttle_cancel`,
            { from: current.phase, to: phase, outstanding: open },
          );
        }
      }
      if (phase === "failed") {
        this.#stopDriving(current);
        await this.#cancelOutstanding(current, note ?? "orchestration failed");
      }
    }
    return this.#mutate(orchestrationId, async (rec) => {
      let next = rec;
      const at = now();
      if (phase !== undefined && phase !== rec.phase) {
        next = withPhase(rec, phase, at, note);
        if (phase === "failed") {
          next = this.#finishOutstanding(next, "cancelled", note ?? "orchestration failed");
          this.#stopDriving(next);
        }
      }
      return {
        ...next,
        checkpoints: [...next.checkpoints, { at, phase: next.phase, ...(note ? { note } : {}) }],
      };
    });
  }

  /** The orchestration from the work dir, else from the project's bucket. */
  async get(orchestrationId: string): Promise<OrchestrationRecord> {
    const local = await this.store.load(orchestrationId);
    if (local) return local;
    const remote = await this.store.loadRemote(orchestrationId);
    if (remote) return remote;
    throw new OrchestrationNotFoundError(orchestrationId);
  }

  isLocal(record: OrchestrationRecord): boolean {
    return record.directory === this.workDir.path(record.orchestrationId);
  }

  async list(options: { phase?: OrchestrationPhase; limit?: number } = {}): Promise<OrchestrationSummary[]> {
    const limit = options.limit ?? 20;
    const local = await this.store.listLocal();
    const merged = new Map<string, { record: OrchestrationRecord; local: boolean }>();
    for (const r of local) merged.set(r.orchestrationId, { record: r, local: true });
    for (const r of await this.store.listRemote()) {
      const have = merged.get(r.orchestrationId);
      if (!have) merged.set(r.orchestrationId, { record: r, local: false });
    }
    return [...merged.values()]
      .filter((m) => options.phase === undefined || m.record.phase === options.phase)
      .sort((a, b) => b.record.updatedAt.localeCompare(a.record.updatedAt))
      .slice(0, limit)
      .map((m) => ({ ...summarize(m.record), local: m.local }));
  }

  /** Each subtask's status, result and output file (missing ones named). Reads only. */
  async results(orchestrationId: string): Promise<ResultsView> {
    const record = await this.get(orchestrationId);
    const local = this.isLocal(record);
    const subtasks: SubtaskResult[] = [];
    for (const s of record.subtasks) {
      const outputPath = local ? this.outputPath(record, s) : `${record.directory}/${s.outputFile}`;
      const output = local ? await this.#readOutput(record, s) : undefined;
      subtasks.push({
        id: s.id,
        title: s.title,
        status: s.status,
        wave: s.wave,
        workId: s.workId,
        claims: s.claims,
        claimedBy: s.claimedBy,
        result: s.result,
        error: s.error,
        outputPath,
        output,
      });
    }
    const missingOutputs = subtasks
      .filter((s) => s.output === undefined)
      .map((s) => ({ id: s.id, status: s.status }));
    return { record, subtasks, missingOutputs };
  }

  /**
   * Merges the outputs in plan order into `synthesis.md` (or `.json`) in the orchestration directory.
   * From `collection` it records `synthesis` and then `complete` (every subtask's output merged) or
   * `failed` (some subtask failed or left no output, as the document says). From a final phase it only
   * rewrites the document.
   */
  async synthesize(
    orchestrationId: string,
    format: SynthesisFormat = "markdown",
  ): Promise<{ record: OrchestrationRecord; synthesis: Synthesis; path: string }> {
    const current = await this.#loadDriven(orchestrationId);
    if (current.phase === "assessment" || current.phase === "spawning" || current.phase === "execution") {
      const open = current.subtasks.filter((s) => OUTSTANDING.includes(s.status)).map((s) => s.id);
      throw new InvalidTransitionError(
        `cannot synthesise while the orchestration is in ${current.phase}${open.length > 0 ? ` with ${open.length} subtasks outstanding (${open.join(", ")})` : ""}; wait until shuttle_get_state shows collection, or cancel with shuttle_cancel`,
        { from: current.phase, to: "synthesis", outstanding: open },
      );
    }
    let out: { synthesis: Synthesis; path: string } | undefined;
    const record = await this.#mutate(orchestrationId, async (rec) => {
      let next = rec;
      if (next.phase === "collection") next = withPhase(next, "synthesis", now());
      const outputs = new Map<string, FileRead | undefined>();
      for (const s of next.subtasks) outputs.set(s.id, await this.#readOutput(next, s));
      const synthesis = synthesize(next, outputs, format);
      const file = format === "json" ? "synthesis.json" : "synthesis.md";
      const path = await this.workDir.writeFile([orchestrationId, file], synthesis.document);
      out = { synthesis, path };
      next = { ...next, synthesisFile: file };
      if (next.phase === "synthesis") {
        next =
          synthesis.gaps.length === 0
            ? withPhase(next, "complete", now(), `${synthesis.included.length} outputs merged`)
            : withPhase(
                next,
                "failed",
                now(),
                `synthesised with gaps: ${synthesis.gaps.map((g) => `${g.subtaskId} (${g.status})`).join(", ")}`,
              );
      }
      return next;
    });
    if (!out) throw new Error("synthesis produced no document");
    return { record, ...out };
  }

  /** Cancels outstanding work items and moves the orchestration to `cancelled`. */
  async cancel(orchestrationId: string, reason?: string): Promise<CancelOutcome> {
    const current = await this.#loadDriven(orchestrationId);
    if (isTerminalPhase(current.phase)) assertTransition(current.phase, "cancelled");
    const why = reason ?? "orchestration cancelled";
    // Stop following first, so the events of our own cancellations do not block dependants meanwhile.
    this.#stopDriving(current);
    const { cancelled, notCancelled } = await this.#cancelOutstanding(current, why);
    const record = await this.#mutate(orchestrationId, async (rec) => {
      const next = this.#finishOutstanding(withPhase(rec, "cancelled", now(), why), "cancelled", why);
      this.#stopDriving(next);
      return next;
    });
    return { record, cancelledWork: cancelled, notCancelled };
  }

  async #cancelOutstanding(
    record: OrchestrationRecord,
    reason: string,
  ): Promise<{ cancelled: string[]; notCancelled: CancelOutcome["notCancelled"] }> {
    const cancelled: string[] = [];
    const notCancelled: CancelOutcome["notCancelled"] = [];
    for (const s of record.subtasks) {
      if (!s.workId || (s.status !== "offered" && s.status !== "claimed")) continue;
      try {
        if (!this.#fabric.isConnected) throw this.#fabric.unavailable();
        await this.#queue.cancel(s.workId, reason);
        cancelled.push(s.workId);
      } catch (err) {
        notCancelled.push({
          subtaskId: s.id,
          workId: s.workId,
          reason: err instanceof Error ? err.message : String(err),
        });
      }
    }
    return { cancelled, notCancelled };
  }

  #finishOutstanding(record: OrchestrationRecord, status: "cancelled", reason: string): OrchestrationRecord {
    const at = now();
    return {
      ...record,
      subtasks: record.subtasks.map((s) =>
        OUTSTANDING.includes(s.status) ? { ...s, status, error: reason, finishedAt: at, updatedAt: at } : s,
      ),
    };
  }

  /**
   * A subtask's output file. One that is a link leading out of the work dir is not read and counts as
   * missing, so a worker cannot make Shuttle disclose a file elsewhere.
   */
  async #readOutput(record: OrchestrationRecord, s: SubtaskState): Promise<FileRead | undefined> {
    try {
      return await this.workDir.readFile(this.outputPath(record, s), OUTPUT_READ_LIMIT);
    } catch (err) {
      if (!(err instanceof PathEscapeError)) throw err;
      this.#logger.warn({ orchestrationId: record.orchestrationId, subtaskId: s.id }, err.message);
      return undefined;
    }
  }

  // ── plumbing ─────────────────────────────────────────────────────────────────────────────────────

  async #needNats(): Promise<void> {
    await this.#fabric.ready(this.#natsWaitMs);
  }

  /** A local orchestration this process drives (taking the lock if its driver is gone). */
  async #loadDriven(orchestrationId: string): Promise<OrchestrationRecord> {
    const record = await this.store.load(orchestrationId);
    if (!record) {
      const remote = await this.store.loadRemote(orchestrationId);
      if (remote) {
        throw new LoominalError(
          "forbidden",
          `orchestration ${orchestrationId} lives in ${remote.directory} on another host or work dir; change it through the Shuttle server that created it`,
          { details: { orchestrationId, directory: remote.directory } },
        );
      }
      throw new OrchestrationNotFoundError(orchestrationId);
    }
    const lock = await this.drivers.acquire(orchestrationId);
    if (!lock.ok) throw this.#heldElsewhere(orchestrationId, lock.holder);
    if ((record.phase === "spawning" || record.phase === "execution") && !this.#active.has(orchestrationId)) {
      this.#startDriving(record);
    }
    return record;
  }

  #heldElsewhere(orchestrationId: string, holder: DriverInfo): LoominalError {
    return new LoominalError(
      "conflict",
      `orchestration ${orchestrationId} is driven by the Shuttle server with pid ${holder.pid} on ${holder.hostname}; call this tool through that server, or stop it and this one takes over`,
      { details: { orchestrationId, holderPid: holder.pid, holderHost: holder.hostname } },
    );
  }

  /**
   * Runs `change` on the current record and saves the result with `version + 1`, one mutation per
   * orchestration at a time. Returning the same object saves nothing.
   */
  #mutate(
    orchestrationId: string,
    change: (record: OrchestrationRecord) => Promise<OrchestrationRecord> | OrchestrationRecord,
  ): Promise<OrchestrationRecord> {
    const tail = this.#tails.get(orchestrationId) ?? Promise.resolve();
    const run = tail.then(async () => {
      const record = await this.store.load(orchestrationId);
      if (!record) throw new OrchestrationNotFoundError(orchestrationId);
      const next = await change(record);
      if (next === record) return record;
      const saved: OrchestrationRecord = { ...next, version: record.version + 1, updatedAt: now() };
      await this.store.save(saved);
      return saved;
    });
    const settled = run.catch(() => undefined);
    this.#tails.set(orchestrationId, settled);
    void settled.then(() => {
      if (this.#tails.get(orchestrationId) === settled) this.#tails.delete(orchestrationId);
    });
    return run;
  }
}

export function summarize(record: OrchestrationRecord): Omit<OrchestrationSummary, "local"> {
  const count = (pred: (s: SubtaskState) => boolean) => record.subtasks.filter(pred).length;
  return {
    orchestrationId: record.orchestrationId,
    task: record.task.length > 200 ? `${record.task.slice(0, 200)}…` : record.task,
    phase: record.phase,
    createdAt: record.createdAt,
    updatedAt: record.updatedAt,
    subtasks: record.subtasks.length,
    completed: count((s) => s.status === "completed"),
    failed: count((s) => s.status === "failed" || s.status === "blocked"),
    outstanding: count((s) => OUTSTANDING.includes(s.status)),
  };
}

function keepResult(result: WorkItem["result"]): unknown {
  if (result === undefined) return undefined;
  const json = JSON.stringify(result);
  if (Buffer.byteLength(json, "utf8") <= RESULT_KEEP_BYTES) return result;
  return { truncated: true, preview: json.slice(0, RESULT_KEEP_BYTES / 2) };
}
