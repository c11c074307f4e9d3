import {
  type Fabric,
  isUnavailableError,
  KeyedSerialQueue,
  type Logger,
  silentLogger,
} from "@loominal/fabric";
import {
  AGENT_ID_RE,
  FINAL_SUBTASK_STATUSES,
  LoominalError,
  type OrchestrationPhase,
  type OrchestrationRecord,
  randomId,
  type ShuttleWorkContext,
  type SubtaskPlan,
  type SubtaskState,
  type WorkEvent,
  type WorkItem,
} from "@loominal/protocol";
import type { OfferInput } from "@loominal/warp";
import { PendingCancels } from "./cancels.js";
import { type DriverInfo, DriverLocks } from "./driver.js";
import { InvalidTransitionError, OrchestrationNotFoundError, PlanError } from "./errors.js";
import { type EventFollower, WorkEventFollower } from "./event-follower.js";
import type { FileRead, WorkDir } from "./paths.js";
import { assertTransition, isTerminalPhase, withPhase } from "./phases.js";
import { orderPlan, type PlanTemplate, planTemplate } from "./plan.js";
import { type ResultsView, readOutput, resultsView } from "./results.js";
import { clip, type OrchestrationStore } from "./store.js";
import {
  appendCheckpoint,
  applyWorkItem,
  finishOutstanding,
  now,
  type OrchestrationSummary,
  OUTSTANDING,
  replaceSubtasks,
  settleBlocked,
  subtaskDir,
  summarize,
} from "./subtask-states.js";
import { type Synthesis, type SynthesisFormat, synthesize } from "./synthesis.js";
import {
  AppliedStates,
  MAX_OFFER_GENERATIONS,
  subtaskWorkId,
  wasDroppedByWarp,
  workIdGeneration,
} from "./work-items.js";

export { OUTPUT_READ_LIMIT, type ResultsView, type SubtaskResult } from "./results.js";
export {
  appendCheckpoint,
  CHECKPOINTS_KEPT,
  type OrchestrationSummary,
  summarize,
} from "./subtask-states.js";

/** The part of Warp's WorkQueue that Shuttle uses. */
export interface WorkQueuePort {
  offer(input: OfferInput): Promise<WorkItem>;
  get(workId: string): Promise<WorkItem | undefined>;
  cancel(workId: string, reason?: string): Promise<unknown>;
  watchEvents(handler: (event: WorkEvent) => void): EventFollower | Promise<EventFollower>;
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
   * events missed while NATS was unreachable, retrying offers and cancellations that failed, and
   * re-checking its driver locks. Default 5000 ms.
   */
  reconcileIntervalMs?: number;
  /** How long a tool waits for NATS before answering "NATS unreachable". Default 2000 ms. */
  natsWaitMs?: number;
  /** Boundary of offered work (default: Warp's default boundary). */
  boundary?: string;
}

/** Largest plan accepted, in bytes of JSON of the new record. */
const RECORD_MAX_BYTES = 512 * 1024;
/** Characters of a checkpoint note kept (the record's schema allows 2 000). */
const CHECKPOINT_NOTE_MAX = 2_000;
/** Adoption scans (every sixth reconcile tick) between two re-reads of the whole work dir. */
const ADOPT_EVERY_TICKS = 6;

export type AssessOutcome =
  | { kind: "template"; template: PlanTemplate }
  | { kind: "plan"; record: OrchestrationRecord };

export interface CancelOutcome {
  record: OrchestrationRecord;
  cancelledWork: string[];
  /** Work items that could not be cancelled (NATS unreachable, already finished), with the reason. */
  notCancelled: Array<{ subtaskId: string; workId: string; reason: string }>;
}

type OfferOutcome = { kind: "item"; item: WorkItem } | { kind: "refused"; error: string } | { kind: "retry" };

type Commit = (next: OrchestrationRecord) => Promise<OrchestrationRecord>;

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
  #mutations = new KeyedSerialQueue<string>();
  /** Work item → subtask, for every subtask of an orchestration this process drives. */
  #byWork = new Map<string, { orchestrationId: string; subtaskId: string }>();
  /** Orchestrations this process drives that are still spawning or executing. */
  #active = new Set<string>();
  /** Orchestrations inside a spawn() call right now. */
  #spawning = new Set<string>();
  #applied = new AppliedStates();
  #cancels: PendingCancels;
  /** Final orchestrations the adoption scan has seen with nothing left to do: not read again. */
  #settled = new Set<string>();
  #follower: WorkEventFollower;
  #timer: NodeJS.Timeout | undefined;
  #ticks = 0;
  #ticking: Promise<void> | undefined;
  #reconciling: Promise<void> | undefined;
  #reconcileAgain = false;
  #closed = false;
  #stopStateListener: () => void;

  constructor(options: ShuttleOptions) {
    this.#fabric = options.fabric;
    this.#projectId = options.projectId;
    this.#agentId = options.agentId;
    this.store = options.store;
    this.workDir = options.store.workDir;
    this.#queue = options.queue;
    this.#logger = options.logger ?? silentLogger();
    this.#follower = new WorkEventFollower(
      (handler) => this.#queue.watchEvents(handler),
      (e) => this.#onEvent(e),
      this.#logger,
    );
    this.#natsWaitMs = options.natsWaitMs ?? 2_000;
    this.#boundary = options.boundary;
    this.drivers = new DriverLocks(this.workDir);
    this.#cancels = new PendingCancels(this.workDir);
    const interval = options.reconcileIntervalMs ?? 5_000;
    this.#timer = setInterval(() => void this.#tick(), interval);
    this.#timer.unref();
    this.#stopStateListener = this.#fabric.onStateChange((state) => {
      if (state === "connected") void this.#tick();
    });
  }

  /**
   * Adopts the orchestrations of the work dir left running (or half-cancelled) by a process that is gone,
   * pushes records the bucket missed, and starts following work events. Call once after construction.
   */
  async start(): Promise<void> {
    await this.store.markAllPending();
    await this.#adoptOrphans();
    void this.#tick();
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer) clearInterval(this.#timer);
    this.#stopStateListener();
    await this.#follower.stop();
    await this.#ticking;
    await this.#mutations.idle();
    await this.drivers.close();
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
    const spawning = await this.#mutate(orchestrationId, async (rec) => {
      const next = withPhase(rec, "spawning", now());
      for (const s of next.subtasks) await this.workDir.ensureDir(orchestrationId, ...subtaskDir(s.id));
      return next;
    });
    this.#startDriving(spawning);
    this.#spawning.add(orchestrationId);
    try {
      await this.#mutate(orchestrationId, async (rec, commit) => {
        // Cancelled (or failed) meanwhile: nothing more is offered.
        if (rec.phase !== "spawning") return rec;
        const next = await this.#advance(rec, commit);
        const offered = next.subtasks.filter((s) => s.status !== "waiting").map((s) => s.id);
        const note = `offered ${offered.length > 0 ? offered.join(", ") : "nothing yet"}`;
        return withPhase(next, "execution", now(), note);
      });
    } finally {
      this.#spawning.delete(orchestrationId);
    }
    // A plan whose work all finished already moves on to collection here.
    return this.#mutate(orchestrationId, (rec, commit) => this.#advance(rec, commit));
  }

  /** Where a subtask's output goes, absolute. */
  outputPath(record: OrchestrationRecord, subtask: SubtaskState): string {
    return this.workDir.path(record.orchestrationId, subtask.outputFile);
  }

  /**
   * Recomputes what can move: blocks subtasks whose dependencies failed, offers subtasks whose
   * dependencies completed, and moves a finished execution to `collection`. Runs inside a mutation, on
   * the current record: an orchestration that is no longer spawning or executing offers nothing.
   */
  async #advance(record: OrchestrationRecord, commit: Commit): Promise<OrchestrationRecord> {
    if (record.phase !== "spawning" && record.phase !== "execution") return record;
    let next = settleBlocked(record);
    if (this.#fabric.isConnected) next = await this.#offerReady(next, commit);
    const subtasks = next.subtasks;
    if (next.phase === "execution" && subtasks.every((s) => FINAL_SUBTASK_STATUSES.includes(s.status))) {
      const failed = subtasks.filter((s) => s.status !== "completed").map((s) => `${s.id} (${s.status})`);
      next = withPhase(
        next,
        "collection",
        now(),
        failed.length === 0 ? "every subtask completed" : `finished with ${failed.join(", ")}`,
      );
      this.#stopDriving(next.orchestrationId);
    }
    return next;
  }

  /**
   * Offers every waiting subtask whose dependencies completed. Their work ids are derived from the
   * orchestration and subtask and saved before anything is offered: if the process dies between an offer
   * and the save after it, the next pass offers the same ids again and Warp answers with the items it
   * already has, so a subtask is never queued twice.
   */
  async #offerReady(record: OrchestrationRecord, commit: Commit): Promise<OrchestrationRecord> {
    const status = new Map(record.subtasks.map((s) => [s.id, s.status]));
    const ready = record.subtasks
      .filter((s) => s.status === "waiting" && s.dependsOn.every((d) => status.get(d) === "completed"))
      .map((s) => s.id);
    if (ready.length === 0) return record;
    let next = record;
    const unrecorded = next.subtasks.filter((s) => ready.includes(s.id) && s.workId === undefined);
    if (unrecorded.length > 0) {
      next = await commit(
        replaceSubtasks(
          next,
          unrecorded.map((s) => ({ ...s, workId: subtaskWorkId(next, s.id) })),
        ),
      );
    }
    this.#startDriving(next);
    for (const id of ready) {
      // A second round only when Warp dropped the first offer and the subtask moved to a new work id.
      for (let round = 0; round < 2; round++) {
        const s = next.subtasks.find((x) => x.id === id);
        if (!s?.workId || s.status !== "waiting") break;
        const outcome = await this.#offer(next, s, s.workId);
        if (outcome.kind === "retry") break;
        if (outcome.kind === "refused") {
          const at = now();
          next = replaceSubtasks(next, [
            { ...s, status: "failed", error: outcome.error, finishedAt: at, updatedAt: at },
          ]);
          break;
        }
        const item = outcome.item;
        if (wasDroppedByWarp(item)) {
          next = await this.#nextGeneration(next, s, commit);
          continue;
        }
        this.#applied.onRead(item);
        next = applyWorkItem(next, s.id, item);
        break;
      }
    }
    return next;
  }

  /**
   * Warp cancelled the subtask's item itself because its offer never reached the queue (NATS dropped
   * between the ledger write and the publish). The same id would only return that item, so the subtask
   * moves to its next derived work id, saved before it is offered.
   */
  async #nextGeneration(
    record: OrchestrationRecord,
    s: SubtaskState,
    commit: Commit,
  ): Promise<OrchestrationRecord> {
    const generation = (s.workId ? workIdGeneration(record, s.id, s.workId) : undefined) ?? 0;
    const at = now();
    if (generation + 1 >= MAX_OFFER_GENERATIONS) {
      return replaceSubtasks(record, [
        {
          ...s,
          status: "failed",
          error: `Warp dropped ${MAX_OFFER_GENERATIONS} offers of this subtask (the offer could not be queued)`,
          finishedAt: at,
          updatedAt: at,
        },
      ]);
    }
    this.#logger.warn(
      { orchestrationId: record.orchestrationId, subtaskId: s.id, workId: s.workId },
      "Warp dropped the offer of a subtask; offering it again under a new work id",
    );
    const next = await commit(
      replaceSubtasks(record, [{ ...s, workId: subtaskWorkId(record, s.id, generation + 1), updatedAt: at }]),
    );
    this.#startDriving(next);
    return next;
  }

  async #offer(record: OrchestrationRecord, s: SubtaskState, workId: string): Promise<OfferOutcome> {
    const byId = new Map(record.subtasks.map((x) => [x.id, x]));
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
    try {
      const item = await this.#queue.offer({
        workId,
        taskId: `shuttle-${record.orchestrationId}-${s.id}`,
        description: description.slice(0, 20_000),
        capability: s.capability,
        ...(this.#boundary ? { boundary: this.#boundary } : {}),
        contextData: { shuttle: context },
      });
      return { kind: "item", item };
    } catch (err) {
      this.#logger.warn(
        { orchestrationId: record.orchestrationId, subtaskId: s.id, workId, err: String(err) },
        "could not offer a subtask; will retry",
      );
      if (!isUnavailableError(err) && err instanceof LoominalError) {
        if (err.code === "invalid_input")
          return { kind: "refused", error: `Warp refused the work item: ${err.message}` };
        if (err.code === "conflict")
          return {
            kind: "refused",
            error: `Warp holds another item under this subtask's work id: ${err.message}`,
          };
      }
      // The subtask stays waiting with its work id; the next reconcile offers the same id again.
      return { kind: "retry" };
    }
  }

  #onEvent(event: WorkEvent): void {
    const ref = this.#byWork.get(event.workId);
    if (!ref) return;
    void this.#mutate(ref.orchestrationId, async (rec, commit) => {
      if (rec.phase !== "spawning" && rec.phase !== "execution") return rec;
      const item = await this.#newerState(event);
      if (!item) return rec;
      return this.#advance(applyWorkItem(rec, ref.subtaskId, item), commit);
    }).catch((err) => this.#logger.warn({ ...ref, err: String(err) }, "could not apply a work event"));
  }

  /** The state to apply for an event: its item when newer, the ledger's current state when unsure, or none. */
  async #newerState(event: WorkEvent): Promise<WorkItem | undefined> {
    const verdict = this.#applied.onEvent(event);
    if (verdict === "apply") return event.item;
    if (verdict === "skip" || !this.#fabric.isConnected) return undefined;
    try {
      const item = await this.#queue.get(event.workId);
      if (!item) return undefined;
      const known = AppliedStates.same(item, event.item) ? event.revision : undefined;
      return this.#applied.onRead(item, known) ? item : undefined;
    } catch (err) {
      this.#logger.warn({ workId: event.workId, err: String(err) }, "could not read a work item");
      return undefined;
    }
  }

  /** Compares one driven orchestration with the work ledger and advances it. */
  async reconcile(orchestrationId: string): Promise<OrchestrationRecord> {
    return this.#mutate(orchestrationId, async (rec, commit) => {
      if (rec.phase !== "spawning" && rec.phase !== "execution") return rec;
      let next = rec;
      if (this.#fabric.isConnected) {
        for (const s of rec.subtasks) {
          if (!s.workId || (s.status !== "offered" && s.status !== "claimed")) continue;
          try {
            const item = await this.#queue.get(s.workId);
            if (item && this.#applied.onRead(item)) next = applyWorkItem(next, s.id, item);
          } catch (err) {
            this.#logger.warn(
              { orchestrationId, workId: s.workId, err: String(err) },
              "could not read a work item",
            );
          }
        }
      }
      next = await this.#advance(next, commit);
      // A spawn interrupted by a restart: its work is offered now, so it is executing.
      if (next.phase === "spawning" && !this.#spawning.has(orchestrationId)) {
        next = withPhase(next, "execution", now(), "resumed after the spawning server stopped");
      }
      return next;
    });
  }

  /** Reconciles every driven orchestration; a call while one runs makes it run once more afterwards. */
  #reconcileAll(): Promise<void> {
    if (this.#reconciling) {
      this.#reconcileAgain = true;
      return this.#reconciling;
    }
    this.#reconciling = (async () => {
      do {
        this.#reconcileAgain = false;
        for (const id of [...this.#active]) {
          if (this.#closed) return;
          try {
            await this.reconcile(id);
          } catch (err) {
            this.#logger.warn({ orchestrationId: id, err: String(err) }, "reconcile failed");
          }
        }
      } while (this.#reconcileAgain && !this.#closed);
    })().finally(() => {
      this.#reconciling = undefined;
    });
    return this.#reconciling;
  }

  /** One reconcile tick at a time: a tick due while one runs is skipped (the next one comes soon). */
  #tick(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    if (this.#ticking) return this.#ticking;
    this.#ticking = this.#tickOnce()
      .catch((err) => this.#logger.warn({ err: String(err) }, "reconcile tick failed"))
      .finally(() => {
        this.#ticking = undefined;
      });
    return this.#ticking;
  }

  async #tickOnce(): Promise<void> {
    this.#ticks++;
    await this.#verifyLocks();
    if (this.#ticks % ADOPT_EVERY_TICKS === 0) {
      await this.#adoptOrphans().catch((err) =>
        this.#logger.warn(
          { workDir: this.workDir.root, err: String(err) },
          "could not scan the work dir for orchestrations to adopt; will retry",
        ),
      );
    }
    if (this.#closed || !this.#fabric.isConnected) return;
    await this.#follower.ensure();
    await this.#reconcileAll();
    await this.#retryCancels();
    await this.store.flush();
  }

  /** A server that finds another instance in a lock it held stops driving that orchestration. */
  async #verifyLocks(): Promise<void> {
    for (const id of this.drivers.held) {
      let kept: boolean;
      try {
        kept = await this.drivers.verify(id);
      } catch (err) {
        this.#logger.warn({ orchestrationId: id, err: String(err) }, "could not read a driver lock");
        continue;
      }
      if (kept || this.#closed) continue;
      this.#stopDriving(id);
      this.#cancels.forget(id);
      const holder = await this.drivers.holder(id).catch(() => undefined);
      this.#logger.warn(
        { orchestrationId: id, holderPid: holder?.pid, holderHost: holder?.hostname },
        "lost the driver lock of an orchestration to another Shuttle server; no longer driving it",
      );
    }
  }

  /**
   * Takes over orchestrations whose driver process is gone: spawning or executing ones, and cancelled or
   * failed ones with cancellations still pending. Final orchestrations with nothing pending are
   * remembered and not read again.
   */
  async #adoptOrphans(): Promise<void> {
    for (const id of await this.workDir.listDirs()) {
      if (this.#closed) return;
      if (!AGENT_ID_RE.test(id) || this.#settled.has(id) || this.#active.has(id) || this.#cancels.has(id))
        continue;
      const rec = await this.store.load(id).catch((err) => {
        this.#logger.warn({ orchestrationId: id, err: String(err) }, "cannot read an orchestration");
        return undefined;
      });
      if (!rec) continue;
      if (isTerminalPhase(rec.phase)) {
        const endedEarly = rec.phase === "cancelled" || rec.phase === "failed";
        const pending = endedEarly ? await this.#cancels.load(id) : undefined;
        if (!pending) {
          this.#settled.add(id);
          continue;
        }
        const lock = await this.drivers.acquire(id);
        if (!lock.ok) {
          this.#cancels.forget(id);
          continue;
        }
        this.#logger.info(
          { orchestrationId: id, items: pending.items.length },
          "resuming the cancellation of an orchestration's work items",
        );
        continue;
      }
      if (rec.phase !== "spawning" && rec.phase !== "execution") continue;
      const lock = await this.drivers.acquire(id);
      if (!lock.ok) continue;
      this.#startDriving(rec);
      this.#logger.info({ orchestrationId: id }, "driving orchestration");
    }
  }

  #startDriving(rec: OrchestrationRecord): void {
    this.#active.add(rec.orchestrationId);
    for (const s of rec.subtasks) {
      if (s.workId) this.#byWork.set(s.workId, { orchestrationId: rec.orchestrationId, subtaskId: s.id });
    }
  }

  #stopDriving(orchestrationId: string): void {
    this.#active.delete(orchestrationId);
    for (const [workId, ref] of this.#byWork) {
      if (ref.orchestrationId !== orchestrationId) continue;
      this.#byWork.delete(workId);
      this.#applied.forget(workId);
    }
  }

  // ── phases, state, results ────────────────────────────────────────────────────────────────────────

  /**
   * Records a checkpoint, optionally moving to `phase`. Moving to `failed` or `cancelled` cancels the
   * outstanding work; moving to `collection` needs every subtask finished; `spawning` happens only
   * through spawn() and `complete` only through synthesize(), which checks that no output is missing.
   * A note longer than 2 000 characters is cut.
   */
  async checkpoint(
    orchestrationId: string,
    phase?: OrchestrationPhase,
    noteGiven?: string,
  ): Promise<OrchestrationRecord> {
    const note = noteGiven === undefined ? undefined : clip(noteGiven, CHECKPOINT_NOTE_MAX);
    const current = await this.#loadDriven(orchestrationId);
    if (phase === "cancelled") return (await this.cancel(orchestrationId, note)).record;
    if (phase !== undefined && phase !== current.phase) {
      assertTransition(current.phase, phase);
      if (phase === "spawning") {
        throw new InvalidTransitionError(
          "move to spawning with shuttle_spawn_subagents, which offers the work",
          { from: current.phase, to: phase },
        );
      }
      if (phase === "complete") {
        throw new InvalidTransitionError(
          "an orchestration completes only through shuttle_synthesize_results, which merges the outputs and moves to complete when none is missing (or to failed, naming the gaps); call it instead",
          { from: current.phase, to: phase },
        );
      }
    }
    return this.#mutate(orchestrationId, async (rec, commit) => {
      let next = rec;
      const at = now();
      if (phase !== undefined && phase !== rec.phase) {
        if (phase === "failed") {
          next = (await this.#endEarly(rec, "failed", note ?? "orchestration failed", commit)).record;
        } else {
          if (phase === "collection") {
            const open = rec.subtasks.filter((s) => OUTSTANDING.includes(s.status)).map((s) => s.id);
            if (open.length > 0) {
              throw new InvalidTransitionError(
                `cannot move to collection while ${open.length} subtasks are outstanding (${open.join(", ")}); wait for them or cancel with shuttle_cancel`,
                { from: rec.phase, to: phase, outstanding: open },
              );
            }
          }
          next = withPhase(rec, phase, at, note);
        }
      }
      return {
        ...next,
        checkpoints: appendCheckpoint(next.checkpoints, { at, phase: next.phase, ...(note ? { note } : {}) }),
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
    return resultsView(this.workDir, this.#logger, record, this.isLocal(record));
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
      const problems = new Map<string, string>();
      for (const s of next.subtasks) {
        const read = await readOutput(this.workDir, this.#logger, next, s);
        outputs.set(s.id, read.file);
        if (read.problem) problems.set(s.id, read.problem);
      }
      const synthesis = synthesize(next, outputs, format, problems);
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
                clip(
                  `synthesised with gaps: ${synthesis.gaps.map((g) => `${g.subtaskId} (${g.status})`).join(", ")}`,
                  2_000,
                ),
              );
      }
      return next;
    });
    if (!out) throw new Error("synthesis produced no document");
    return { record, ...out };
  }

  /**
   * Cancels outstanding work items and moves the orchestration to `cancelled`, in one serialised change
   * of the current record, so an offer being made at the same moment is either in the record (and
   * cancelled) or never made. Items Warp cannot be asked about now (NATS unreachable) are cancelled when
   * it returns.
   */
  async cancel(orchestrationId: string, reason?: string): Promise<CancelOutcome> {
    await this.#loadDriven(orchestrationId);
    const why = reason ?? "orchestration cancelled";
    let outcome: Omit<CancelOutcome, "record"> = { cancelledWork: [], notCancelled: [] };
    const record = await this.#mutate(orchestrationId, async (rec, commit) => {
      if (isTerminalPhase(rec.phase)) assertTransition(rec.phase, "cancelled");
      const ended = await this.#endEarly(rec, "cancelled", why, commit);
      outcome = ended.outcome;
      return ended.record;
    });
    return { record, ...outcome };
  }

  /**
   * Ends an orchestration as `cancelled` or `failed` inside a mutation: the work items to cancel are
   * saved as pending first, then the phase, then Warp is asked to cancel them; what Warp could not take
   * stays pending for the reconcile loop.
   */
  async #endEarly(
    rec: OrchestrationRecord,
    phase: "cancelled" | "failed",
    reason: string,
    commit: Commit,
  ): Promise<{ record: OrchestrationRecord; outcome: Omit<CancelOutcome, "record"> }> {
    this.#stopDriving(rec.orchestrationId);
    const items = rec.subtasks
      .filter((s) => s.workId !== undefined && OUTSTANDING.includes(s.status))
      .map((s) => ({ subtaskId: s.id, workId: s.workId ?? "" }));
    await this.#cancels.set(rec.orchestrationId, { reason, items });
    const record = await commit(finishOutstanding(withPhase(rec, phase, now(), reason), reason));
    const outcome = await this.#cancelPending(rec.orchestrationId);
    return { record, outcome };
  }

  /** Asks Warp to cancel an orchestration's pending cancellations; keeps those NATS could not take. */
  async #cancelPending(orchestrationId: string): Promise<Omit<CancelOutcome, "record">> {
    const cancelledWork: string[] = [];
    const notCancelled: CancelOutcome["notCancelled"] = [];
    const pending = this.#cancels.get(orchestrationId);
    if (!pending) return { cancelledWork, notCancelled };
    const left: typeof pending.items = [];
    for (const item of pending.items) {
      try {
        if (!this.#fabric.isConnected) throw this.#fabric.unavailable();
        await this.#queue.cancel(item.workId, pending.reason);
        cancelledWork.push(item.workId);
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        if (isUnavailableError(err) || !this.#fabric.isConnected) {
          left.push(item);
          notCancelled.push({ ...item, reason: `${message}; it will be cancelled when NATS is back` });
        } else if (!(err instanceof LoominalError && err.code === "not_found")) {
          // Finished already (completed, dead, cancelled): nothing left to cancel. not_found: never offered.
          notCancelled.push({ ...item, reason: message });
        }
      }
    }
    await this.#cancels.set(orchestrationId, { ...pending, items: left });
    return { cancelledWork, notCancelled };
  }

  /** Retries the cancellations NATS did not take, for every orchestration this process drives. */
  async #retryCancels(): Promise<void> {
    for (const id of this.#cancels.ids) {
      if (this.#closed || !this.#fabric.isConnected) return;
      try {
        await this.#mutate(id, async (rec) => {
          // Pending cancellations of an orchestration that did not end (the change that wrote them
          // failed) were never made: forget them.
          if (rec.phase !== "cancelled" && rec.phase !== "failed") await this.#cancels.clear(id);
          else await this.#cancelPending(id);
          return rec;
        });
      } catch (err) {
        this.#logger.warn({ orchestrationId: id, err: String(err) }, "could not retry cancellations");
      }
    }
  }

  // ── plumbing ─────────────────────────────────────────────────────────────────────────────────────

  async #needNats(): Promise<void> {
    await this.#fabric.readyForCall(this.#natsWaitMs);
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
    if (isTerminalPhase(record.phase)) {
      // Final: the lock is taken only for the change itself (#mutate), then given up again.
      const holder = await this.drivers.holder(orchestrationId);
      if (holder && holder.instanceId !== this.drivers.instanceId && !this.drivers.isStale(holder))
        throw this.#heldElsewhere(orchestrationId, holder);
      return record;
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
   * orchestration at a time, while holding the orchestration's driver lock (checked again first: a
   * server that lost it stops driving and changes nothing). `commit` saves an intermediate record within
   * the change (work ids before their offers). Returning the current record saves nothing. A final
   * orchestration with no cancellations pending gives its lock up afterwards.
   */
  #mutate(
    orchestrationId: string,
    change: (
      record: OrchestrationRecord,
      commit: Commit,
    ) => Promise<OrchestrationRecord> | OrchestrationRecord,
  ): Promise<OrchestrationRecord> {
    const run = this.#mutations.run(orchestrationId, async () => {
      const lock = await this.drivers.acquire(orchestrationId);
      if (!lock.ok) {
        this.#stopDriving(orchestrationId);
        throw this.#heldElsewhere(orchestrationId, lock.holder);
      }
      const loaded = await this.store.load(orchestrationId);
      if (!loaded) throw new OrchestrationNotFoundError(orchestrationId);
      let current = loaded;
      const commit: Commit = async (next) => {
        if (next === current) return current;
        const saved: OrchestrationRecord = { ...next, version: current.version + 1, updatedAt: now() };
        await this.store.save(saved);
        current = saved;
        return saved;
      };
      try {
        return await commit(await change(current, commit));
      } finally {
        if (isTerminalPhase(current.phase) && !this.#cancels.has(orchestrationId))
          await this.drivers.release(orchestrationId);
      }
    });
    run.catch(() => {
      // What this process believed applied may not have been saved: learn it from the ledger again.
      for (const [workId, ref] of this.#byWork)
        if (ref.orchestrationId === orchestrationId) this.#applied.forget(workId);
    });
    return run;
  }
}
