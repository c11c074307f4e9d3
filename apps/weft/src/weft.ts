import { createHash } from "node:crypto";
import { encodeJson, ensureStream, type Fabric, Lease, type Logger, leaseBucket } from "@loominal/fabric";
import {
  type AgentControlReply,
  agentControlReplySchema,
  agentTypeAllowed,
  type BoundaryPolicy,
  buckets,
  DEFAULT_BOUNDARY,
  LEASES_BUCKET_TTL_MS,
  LoominalError,
  leaseKeys,
  type PresenceFilter,
  presenceMatches,
  randomId,
  type SpinUpRecord,
  streams,
  subjects,
  type TargetRecord,
  type WeftEvent,
  type WorkEvent,
  type WorkItem,
  type WorkStatus,
  warpConfigSchema,
  weftEventSchema,
} from "@loominal/protocol";
import {
  BoundaryPolicies,
  type DeadLetterListInput,
  type EventWatch,
  type OfferInput,
  type WorkListFilter,
  WorkQueue,
} from "@loominal/warp";
import { type Actor, type TargetAudit, targetChanges } from "./audit.js";
import type { WeftConfig } from "./config.js";
import { LocalMechanism, localProcessAlive } from "./mechanisms/local.js";
import type { Mechanism, RemoteStatus } from "./mechanisms/types.js";
import type { WeftMetrics } from "./metrics.js";
import { type AgentEntry, type RegistryChange, RegistryView } from "./registry-view.js";
import { RunnerView } from "./runner-view.js";
import { SpinUpStore, TargetStore } from "./stores.js";

/** The identity Weft writes into the work ledger (offeredBy, transitions): the same for every instance. */
export const WEFT_AGENT_ID = createHash("sha256").update("loominal-weft").digest("hex").slice(0, 32);
const LEADER_LEASE = leaseKeys.weftLeader();
/** Weft only offers, reads and cancels; the claimers' settings govern claims. */
const WORK_SETTINGS = warpConfigSchema.parse({}).work;
/** How long a control request (ping, shutdown) waits for the agent's answer. */
const CONTROL_TIMEOUT_MS = 3_000;
/** How many mirrored work events may await their acks at once (see #mirrorWorkEvents). */
const MIRROR_IN_FLIGHT = 32;

export interface SubmitInput {
  description: string;
  capability: string;
  boundary?: string;
  taskId?: string;
  workId?: string;
  priority?: number;
  requiredAgentType?: string;
  preferredAgentType?: string;
  deadline?: string;
  contextData?: Record<string, unknown>;
}

export interface SubmitResult {
  item: WorkItem;
  spinUp: { spinUpId: string; targetId: string } | null;
}

export interface TargetInput {
  name: string;
  description?: string;
  mechanism: TargetRecord["mechanism"];
  agentType: string;
  capabilities: string[];
  boundaries?: string[];
  config: Record<string, unknown>;
  enabled?: boolean;
  maxConcurrent?: number;
  cooldownMs?: number;
  idleTimeoutMs?: number;
  timeoutMs?: number;
  tags?: string[];
}

interface Project {
  id: string;
  work: WorkQueue;
  targets: TargetStore;
  spinUps: SpinUpStore;
}

export interface AgentListFilter {
  agentType?: string;
  status?: PresenceFilter;
  capability?: string;
  boundary?: string;
  limit?: number;
  cursor?: string;
}

export interface WeftOptions {
  config: WeftConfig;
  fabric: Fabric;
  logger: Logger;
  metrics: WeftMetrics;
  /** Extra or replacement mechanisms (tests, later mechanisms). `local` is always there. */
  mechanisms?: Mechanism[];
}

/**
 * The coordinator. Every request it answers reads and writes NATS (the work ledger and queue of Warp,
 * the registry, target and spin-up buckets), so any number of instances can serve requests; the
 * loops that decide (spin-up, verification, idle shutdown, health) run in the one instance holding the
 * `weft.leader` lease.
 */
export class Weft {
  readonly config: WeftConfig;
  readonly fabric: Fabric;
  readonly logger: Logger;
  readonly metrics: WeftMetrics;
  readonly registry: RegistryView;
  /** The Runner's state in NATS, read-only (for the dashboard). */
  readonly runner: RunnerView;
  readonly policies: BoundaryPolicies;
  #projects = new Map<string, Project>();
  #mechanisms = new Map<string, Mechanism>();
  #policyByBoundary = new Map<string, BoundaryPolicy>();
  #lease: Lease | undefined;
  #electTimer: NodeJS.Timeout | undefined;
  #loopTimer: NodeJS.Timeout | undefined;
  #loopRunning: Promise<void> | undefined;
  #decideLock: Promise<unknown> = Promise.resolve();
  #stopped = false;
  #unwatch: (() => void) | undefined;
  /** Ledger watches that mirror work events into each project's event stream (leader only). */
  #workWatches = new Map<string, Promise<EventWatch | undefined>>();
  /** The last status each agent was announced with, so a heartbeat is not an event. */
  #announced = new Map<string, string>();
  /** When the leader last asked a mechanism about a starting spin-up, by spin-up id. */
  #remoteAskedAt = new Map<string, number>();

  constructor(options: WeftOptions) {
    this.config = options.config;
    this.fabric = options.fabric;
    this.logger = options.logger;
    this.metrics = options.metrics;
    this.registry = new RegistryView(this.fabric, this.logger);
    this.runner = new RunnerView(this.fabric);
    this.policies = new BoundaryPolicies(this.fabric);
    for (const p of this.config.boundaries) this.#policyByBoundary.set(p.boundary, p);
    const local = new LocalMechanism({ dataDir: this.config.dataDir, logger: this.logger });
    this.#mechanisms.set(local.name, local);
    for (const m of options.mechanisms ?? []) this.#mechanisms.set(m.name, m);
  }

  get instanceId(): string {
    return this.config.instanceId;
  }

  get isLeader(): boolean {
    return this.#lease?.held === true;
  }

  /** Writes the boundary policies, loads the registry, creates the configured targets, starts electing. */
  async start(): Promise<void> {
    await this.fabric.ready(10_000);
    for (const p of this.config.boundaries) await this.policies.put(p);
    await this.registry.start();
    this.#unwatch = this.registry.onChange((change) => {
      if (change.type === "put") void this.#onAgentSeen(change.record.projectId, change.record.agentId);
      if (this.isLeader) this.#announceAgent(change);
    });
    for (const t of this.config.file.targets) {
      const project = this.project(t.projectId);
      if (await project.targets.find(t.name)) continue;
      const { projectId: _p, ...input } = t;
      await this.createTarget(t.projectId, input, `config-file:${this.config.configFile ?? "weft"}`).catch(
        (err: unknown) => {
          if (!(err instanceof LoominalError && err.code === "already_exists")) throw err;
        },
      );
    }
    await this.#elect();
    this.#electTimer = setInterval(() => void this.#elect(), Math.floor(LEASES_BUCKET_TTL_MS / 5));
    this.#electTimer.unref();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#stopWorkWatches();
    clearInterval(this.#electTimer);
    clearTimeout(this.#loopTimer);
    this.#unwatch?.();
    await this.#loopRunning?.catch(() => undefined);
    await this.#lease?.release().catch(() => undefined);
    await this.registry.stop();
    for (const p of this.#projects.values()) await p.work.close().catch(() => undefined);
  }

  policyOf(boundary: string): BoundaryPolicy | undefined {
    return this.#policyByBoundary.get(boundary);
  }

  get boundaryPolicies(): BoundaryPolicy[] {
    return [...this.#policyByBoundary.values()];
  }

  project(projectId: string): Project {
    let p = this.#projects.get(projectId);
    if (!p) {
      p = {
        id: projectId,
        work: new WorkQueue({
          fabric: this.fabric,
          projectId,
          agentId: WEFT_AGENT_ID,
          userId: WEFT_AGENT_ID,
          settings: WORK_SETTINGS,
          logger: this.logger,
        }),
        targets: new TargetStore(this.fabric, projectId, this.logger),
        spinUps: new SpinUpStore(this.fabric, projectId, this.logger),
      };
      this.#projects.set(projectId, p);
    }
    return p;
  }

  /** Projects this instance has served or followed since it started. */
  servedProjects(): string[] {
    return [...this.#projects.keys()].sort();
  }

  mechanism(name: string): Mechanism {
    const m = this.#mechanisms.get(name);
    if (!m)
      throw new LoominalError(
        "invalid_input",
        `mechanism ${name} is not available in this Weft (available: ${[...this.#mechanisms.keys()].join(", ")})`,
        { details: { field: "mechanism" } },
      );
    return m;
  }

  // ——— events ———

  eventStreamName(projectId: string): string {
    return streams.weftEvents(projectId);
  }

  /** The project's event stream (`loom_<p>_events`, 24 h), created on first use. */
  async ensureEventStream(projectId: string): Promise<void> {
    await ensureStream(this.fabric, {
      name: streams.weftEvents(projectId),
      subjects: [subjects.weftEventAll(projectId)],
      maxAgeMs: 86_400_000,
      duplicateWindowMs: 120_000,
    });
  }

  /** Publishes an event for SSE clients; `msgId` makes a repeat (another instance, a retry) a no-op. */
  async publishEvent(
    projectId: string,
    kind: WeftEvent["kind"],
    type: string,
    data: Record<string, unknown>,
    msgId?: string,
  ): Promise<void> {
    try {
      await this.ensureEventStream(projectId);
      const event: WeftEvent = { kind, type, projectId, at: new Date().toISOString(), data };
      await this.fabric.js.publish(
        subjects.weftEvent(projectId, kind),
        encodeJson(event),
        msgId ? { msgID: msgId } : undefined,
      );
    } catch (err) {
      this.logger.warn({ projectId, kind, type, err: String(err) }, "could not publish an event");
    }
  }

  // ——— work ———

  async submit(projectId: string, input: SubmitInput): Promise<SubmitResult> {
    const project = this.project(projectId);
    const boundary = input.boundary ?? DEFAULT_BOUNDARY;
    const policy = this.policyOf(boundary);
    if (input.requiredAgentType !== undefined && !agentTypeAllowed(policy, input.requiredAgentType))
      throw new LoominalError(
        "invalid_input",
        `boundary ${boundary} accepts only agent types ${policy?.allowedAgentTypes.join(", ")}; requiredAgentType ${input.requiredAgentType} could never claim it`,
        { details: { field: "requiredAgentType" } },
      );
    const offer: OfferInput = {
      taskId: input.taskId ?? `weft-${randomId().slice(0, 12)}`,
      description: input.description,
      capability: input.capability,
      boundary,
      ...(input.priority !== undefined ? { priority: input.priority } : {}),
      ...(input.requiredAgentType !== undefined ? { requiredAgentType: input.requiredAgentType } : {}),
      ...(input.deadline !== undefined ? { deadline: input.deadline } : {}),
      ...(input.workId !== undefined ? { workId: input.workId } : {}),
    };
    // Context only when there is some (built without `delete`, which slows every later use of the object).
    const contextData =
      input.preferredAgentType !== undefined
        ? { ...(input.contextData ?? {}), preferredAgentType: input.preferredAgentType }
        : input.contextData;
    if (contextData !== undefined && Object.keys(contextData).length > 0) offer.contextData = contextData;
    const item = await project.work.offer(offer);
    this.metrics.workSubmitted.inc();
    let spinUp: SubmitResult["spinUp"] = null;
    if (item.status === "pending" && this.isLeader) {
      const started = await this.#decide(projectId, item.capability, item.boundary, {
        requiredAgentType: input.requiredAgentType,
        preferredAgentType: input.preferredAgentType,
        queued: 1,
      }).catch((err: unknown) => {
        this.logger.warn({ projectId, err: String(err) }, "spin-up decision failed");
        return undefined;
      });
      if (started) spinUp = { spinUpId: started.spinUpId, targetId: started.targetId };
    }
    return { item, spinUp };
  }

  listWork(projectId: string, filter: WorkListFilter) {
    return this.project(projectId).work.list(filter);
  }

  async getWork(projectId: string, workId: string): Promise<WorkItem> {
    const item = await this.project(projectId).work.get(workId);
    if (!item)
      throw new LoominalError("not_found", `no work ${workId} in project ${projectId}`, {
        details: { workId },
      });
    return item;
  }

  /** The item's recent transitions (what the ledger keeps), oldest first. */
  async workHistory(projectId: string, workId: string): Promise<WorkEvent[]> {
    const events = await this.project(projectId).work.history(workId);
    if (events.length === 0)
      throw new LoominalError("not_found", `no work ${workId} in project ${projectId}`, {
        details: { workId },
      });
    return events;
  }

  // ——— dead letters (Warp's DLQ operations, as the coordinator) ———

  dlqList(projectId: string, input: DeadLetterListInput) {
    return this.project(projectId).work.dlqList(input);
  }

  dlqRetry(projectId: string, workId: string, options: { resetAttempts?: boolean }): Promise<WorkItem> {
    return this.project(projectId).work.dlqRetry(workId, options);
  }

  dlqDiscard(projectId: string, workId: string): Promise<WorkItem> {
    return this.project(projectId).work.dlqDiscard(workId);
  }

  async cancelWork(projectId: string, workId: string, reason?: string): Promise<WorkItem> {
    // The request was authorised by Weft's own tokens: cancel as the coordinator.
    const item = await this.project(projectId).work.cancel(workId, reason, { asCoordinator: true });
    return item;
  }

  // ——— agents ———

  listAgents(
    projectId: string,
    filter: AgentListFilter,
  ): { agents: AgentEntry[]; count: number; total: number; hasMore: boolean; nextCursor: string | null } {
    const all = this.registry
      .agents(projectId)
      .filter(
        (a) =>
          (filter.agentType === undefined || a.agentType === filter.agentType) &&
          (filter.status === undefined ? a.status !== "offline" : presenceMatches(a.status, filter.status)) &&
          (filter.capability === undefined || a.capabilities.includes(filter.capability)) &&
          (filter.boundary === undefined ||
            a.boundaries.length === 0 ||
            a.boundaries.includes(filter.boundary)),
      );
    const rest = filter.cursor === undefined ? all : all.filter((a) => a.agentId > (filter.cursor as string));
    const limit = filter.limit ?? 50;
    const page = rest.slice(0, limit);
    const hasMore = rest.length > page.length;
    return {
      agents: page,
      count: page.length,
      total: all.length,
      hasMore,
      nextCursor: hasMore ? (page[page.length - 1]?.agentId ?? null) : null,
    };
  }

  getAgent(projectId: string, agentId: string): AgentEntry {
    const a = this.registry.get(projectId, agentId);
    if (!a)
      throw new LoominalError("not_found", `no agent ${agentId} in project ${projectId}`, {
        details: { agentId },
      });
    return a;
  }

  /** Asks an agent to shut down on its control subject; resolves with its answer. */
  async shutdownAgent(
    projectId: string,
    agentId: string,
    options: { graceful?: boolean; reason?: string } = {},
  ): Promise<AgentControlReply> {
    this.getAgent(projectId, agentId);
    return this.control(projectId, agentId, {
      op: "shutdown",
      graceful: options.graceful ?? true,
      ...(options.reason !== undefined ? { reason: options.reason } : {}),
    });
  }

  async control(
    projectId: string,
    agentId: string,
    request: { op: "ping" | "shutdown"; graceful?: boolean; reason?: string },
  ): Promise<AgentControlReply> {
    try {
      const reply = await this.fabric.nc.request(
        subjects.agentControl(projectId, agentId),
        encodeJson(request),
        {
          timeout: CONTROL_TIMEOUT_MS,
        },
      );
      const r = agentControlReplySchema.safeParse(reply.json());
      if (!r.success)
        throw new LoominalError(
          "internal",
          `agent ${agentId} answered its control request with an invalid reply`,
        );
      return r.data;
    } catch (err) {
      if (err instanceof LoominalError) throw err;
      throw new LoominalError(
        "timeout",
        `agent ${agentId} did not answer on its control subject within ${CONTROL_TIMEOUT_MS} ms (${err instanceof Error ? err.message : String(err)}); it may not listen for control requests`,
        { details: { agentId } },
      );
    }
  }

  // ——— targets ———

  /**
   * Records a target mutation: a `target` event (`data.audit`: who, when, what changed, secrets
   * redacted) and an info log line `target audit`.
   */
  #audit(
    projectId: string,
    action: TargetAudit["action"],
    actor: Actor,
    before: TargetRecord | undefined,
    after: TargetRecord | undefined,
  ): void {
    const t = (after ?? before) as TargetRecord;
    const audit: TargetAudit = {
      action,
      actor,
      at: new Date().toISOString(),
      targetId: t.targetId,
      name: t.name,
      changes: targetChanges(before, after),
    };
    this.logger.info({ projectId, audit }, "target audit");
    void this.publishEvent(projectId, "target", action, { targetId: t.targetId, name: t.name, audit });
  }

  async createTarget(projectId: string, input: TargetInput, actor: Actor = "weft"): Promise<TargetRecord> {
    const mechanism = this.mechanism(input.mechanism);
    const config = mechanism.validateConfig(input.config);
    const d = this.config.file.defaults;
    const now = new Date().toISOString();
    const record: TargetRecord = {
      targetId: randomId(),
      projectId,
      name: input.name,
      ...(input.description !== undefined ? { description: input.description } : {}),
      mechanism: input.mechanism,
      agentType: input.agentType,
      capabilities: [...new Set(input.capabilities)],
      boundaries: [...new Set(input.boundaries ?? [])],
      config,
      enabled: input.enabled ?? true,
      maxConcurrent: input.maxConcurrent ?? d.spinUp.maxConcurrent,
      cooldownMs: input.cooldownMs ?? d.spinUp.cooldownMs,
      idleTimeoutMs: input.idleTimeoutMs ?? d.idleTimeoutMs,
      timeoutMs: input.timeoutMs ?? d.spinUp.timeoutMs,
      health: { status: "unknown" },
      useCount: 0,
      ...(input.tags !== undefined ? { tags: input.tags } : {}),
      createdAt: now,
      updatedAt: now,
    };
    const created = await this.project(projectId).targets.create(record);
    this.#audit(projectId, "created", actor, undefined, created);
    return created;
  }

  getTarget(projectId: string, idOrName: string): Promise<TargetRecord> {
    return this.project(projectId).targets.get(idOrName);
  }

  listTargets(projectId: string): Promise<TargetRecord[]> {
    return this.project(projectId).targets.list();
  }

  async updateTarget(
    projectId: string,
    idOrName: string,
    patch: Partial<TargetInput>,
    actor: Actor = "weft",
  ): Promise<TargetRecord> {
    const project = this.project(projectId);
    const cur = await project.targets.get(idOrName);
    if (patch.name !== undefined && patch.name !== cur.name && (await project.targets.find(patch.name)))
      throw new LoominalError("already_exists", `a target named ${patch.name} already exists`, {
        details: { field: "name" },
      });
    const mechanism = this.mechanism(patch.mechanism ?? cur.mechanism);
    const config = patch.config !== undefined ? mechanism.validateConfig(patch.config) : undefined;
    const updated = await project.targets.update(cur.targetId, (t) => ({
      ...t,
      ...Object.fromEntries(Object.entries(patch).filter(([k, v]) => v !== undefined && k !== "config")),
      ...(config !== undefined ? { config } : {}),
    }));
    this.#audit(projectId, "updated", actor, cur, updated);
    return updated;
  }

  async deleteTarget(projectId: string, idOrName: string, actor: Actor = "weft"): Promise<TargetRecord> {
    const project = this.project(projectId);
    const cur = await project.targets.get(idOrName);
    await project.targets.delete(cur.targetId);
    this.#audit(projectId, "deleted", actor, cur, undefined);
    return cur;
  }

  async setTargetEnabled(
    projectId: string,
    idOrName: string,
    enabled: boolean,
    actor: Actor = "weft",
  ): Promise<TargetRecord> {
    const project = this.project(projectId);
    const cur = await project.targets.get(idOrName);
    const t = await project.targets.update(cur.targetId, (x) => ({ ...x, enabled }));
    this.#audit(projectId, enabled ? "enabled" : "disabled", actor, cur, t);
    return t;
  }

  /** Runs the target's health check and records the result. */
  async testTarget(
    projectId: string,
    idOrName: string,
  ): Promise<{ target: TargetRecord; ok: boolean; message: string }> {
    const project = this.project(projectId);
    const cur = await project.targets.get(idOrName);
    const result = await this.mechanism(cur.mechanism)
      .test(cur)
      .catch((err: unknown) => ({ ok: false, message: err instanceof Error ? err.message : String(err) }));
    const now = new Date().toISOString();
    const target = await project.targets.update(cur.targetId, (t) => ({
      ...t,
      health: { status: result.ok ? "healthy" : "unhealthy", checkedAt: now, message: result.message },
      ...(result.ok ? { lastHealthyAt: now } : {}),
    }));
    return { target, ...result };
  }

  /** Starts an agent on a target now (cooldown and maxConcurrent still apply). */
  async spinUpTarget(
    projectId: string,
    idOrName: string,
    options: { capability?: string; boundary?: string; actor?: Actor } = {},
  ): Promise<SpinUpRecord> {
    const target = await this.getTarget(projectId, idOrName);
    if (!target.enabled)
      throw new LoominalError("invalid_transition", `target ${target.name} is disabled; enable it first`);
    const capability = options.capability ?? target.capabilities[0];
    if (!capability || !target.capabilities.includes(capability))
      throw new LoominalError("invalid_input", `target ${target.name} has no capability ${capability}`, {
        details: { field: "capability" },
      });
    const boundary = options.boundary ?? target.boundaries[0] ?? DEFAULT_BOUNDARY;
    const blocked = await this.#blockedReason(projectId, target);
    if (blocked)
      throw new LoominalError("conflict", `target ${target.name} cannot start an agent now: ${blocked}`);
    this.logger.info(
      { projectId, target: target.name, capability, boundary, actor: options.actor ?? "weft" },
      "spin-up requested",
    );
    return this.#launch(projectId, target, capability, boundary, "manual");
  }

  listSpinUps(projectId: string): Promise<SpinUpRecord[]> {
    return this.project(projectId).spinUps.list();
  }

  // ——— stats ———

  async stats(projectId: string): Promise<Record<string, unknown>> {
    const project = this.project(projectId);
    const [queue, targets, spinUps] = await Promise.all([
      project.work.status(),
      project.targets.list(),
      project.spinUps.list(),
    ]);
    const agents = this.registry.agents(projectId);
    const byStatus = (s: string) => agents.filter((a) => a.status === s).length;
    const spinCount = (s: SpinUpRecord["status"]) => spinUps.filter((x) => x.status === s).length;
    return {
      projectId,
      agents: {
        online: byStatus("idle") + byStatus("busy"),
        idle: byStatus("idle"),
        busy: byStatus("busy"),
        offline: byStatus("offline"),
      },
      work: {
        queued: queue.capabilities.reduce((n, c) => n + c.queued, 0),
        inFlight: queue.capabilities.reduce((n, c) => n + c.inFlight, 0),
        dead: queue.capabilities.reduce((n, c) => n + c.dead, 0),
        byCapability: queue.capabilities.map((c) => ({
          capability: c.capability,
          queued: c.queued,
          inFlight: c.inFlight,
          dead: c.dead,
        })),
      },
      targets: { total: targets.length, enabled: targets.filter((t) => t.enabled).length },
      spinUps: {
        starting: spinCount("starting"),
        running: spinCount("running"),
        failed: spinCount("failed"),
        stopped: spinCount("stopped"),
      },
    };
  }

  /** Projects Weft knows of: with registry entries, targets, or served by this instance. */
  async knownProjects(): Promise<string[]> {
    const names = new Set<string>([...this.registry.projects(), ...this.#projects.keys()]);
    const jsm = await this.fabric.jsm();
    const prefix = `KV_${buckets.targets("x").slice(0, -1)}`;
    for await (const s of jsm.streams.list()) {
      if (s.config.name.startsWith(prefix)) names.add(s.config.name.slice(prefix.length));
    }
    return [...names].sort();
  }

  // ——— leadership and loops ———

  async #elect(): Promise<void> {
    if (this.#stopped || this.#lease?.held) return;
    try {
      const kv = await leaseBucket(this.fabric, buckets.leases(), LEASES_BUCKET_TTL_MS);
      const lease = await Lease.tryAcquire(kv, LEADER_LEASE, {
        holder: this.instanceId,
        renewIntervalMs: Math.floor(LEASES_BUCKET_TTL_MS / 3),
        ttlMs: LEASES_BUCKET_TTL_MS,
        logger: this.logger,
      });
      if (!lease) return;
      this.#lease = lease;
      this.metrics.leader.set(1);
      this.logger.info(
        { instance: this.instanceId },
        "this instance leads: it runs spin-up, verification and idle shutdown",
      );
      lease.onLost((reason) => {
        this.metrics.leader.set(0);
        void this.#stopWorkWatches();
        this.logger.warn({ reason }, "lost the leader lease; another instance takes over");
      });
      this.#scheduleLoop(0);
    } catch (err) {
      this.logger.debug({ err: String(err) }, "leader election failed; trying again");
    }
  }

  #scheduleLoop(delayMs: number): void {
    if (this.#stopped) return;
    clearTimeout(this.#loopTimer);
    this.#loopTimer = setTimeout(() => {
      if (!this.isLeader) return;
      this.#loopRunning = this.tick()
        .catch((err: unknown) => this.logger.warn({ err: String(err) }, "coordinator loop failed"))
        .finally(() => this.#scheduleLoop(this.config.file.defaults.loopIntervalMs));
    }, delayMs);
    this.#loopTimer.unref();
  }

  /** One pass of the leader's loops over every project: verify, reconcile, reap idle agents, spin up. */
  async tick(): Promise<void> {
    for (const projectId of await this.knownProjects()) {
      if (!this.isLeader) return;
      try {
        await this.#tickProject(projectId);
      } catch (err) {
        this.logger.warn({ projectId, err: String(err) }, "coordinator pass failed for a project");
      }
    }
  }

  async #tickProject(projectId: string): Promise<void> {
    const project = this.project(projectId);
    this.#mirrorWorkEvents(projectId);
    const targets = await project.targets.list();
    const spinUps = await project.spinUps.list();
    const now = Date.now();
    for (const s of spinUps) {
      if (s.status === "starting") await this.#checkStarting(projectId, s, now);
      else if (s.status === "running") await this.#checkRunning(projectId, s, targets, now);
    }
    const healthEvery = this.config.file.defaults.healthCheckIntervalMs;
    for (const t of targets) {
      if (!t.enabled || healthEvery === 0) continue;
      const checked = t.health.checkedAt ? Date.parse(t.health.checkedAt) : 0;
      if (now - checked >= healthEvery) await this.testTarget(projectId, t.targetId).catch(() => undefined);
    }
    if (targets.some((t) => t.enabled)) {
      const status = await project.work.status();
      for (const c of status.capabilities)
        for (const b of c.boundaries) {
          // In flight includes offers handed back to wait (an item for another agent type): the ledger's
          // pending items below say what actually waits.
          if (b.queued + b.inFlight <= 0) continue;
          const policy = this.policyOf(b.boundary);
          if (policy && !policy.spinUp) continue;
          for (const [requiredAgentType, queued] of await this.#waitingByType(
            project,
            c.capability,
            b.boundary,
            b.queued,
          ))
            await this.#decide(projectId, c.capability, b.boundary, { requiredAgentType, queued });
        }
    }
  }

  /**
   * How many waiting items of a capability and boundary need which agent type (undefined: any allowed
   * one), from the newest pending items of the ledger: an item that requires copilot-cli waits for one
   * even while agents of another type are online.
   */
  async #waitingByType(
    project: Project,
    capability: string,
    boundary: string,
    queued: number,
  ): Promise<Map<string | undefined, number>> {
    const page = await project.work
      .list({ status: "pending", capability, boundary, limit: 50 })
      .catch(() => undefined);
    const counts = new Map<string | undefined, number>();
    if (!page) return new Map([[undefined, queued]]);
    for (const item of page.items)
      counts.set(item.requiredAgentType, (counts.get(item.requiredAgentType) ?? 0) + 1);
    return counts;
  }

  /**
   * Mirrors the project's work events (ledger transitions) into its event stream for SSE clients. The
   * message id makes a transition mirrored twice (a leader change) one event.
   */
  #mirrorWorkEvents(projectId: string): void {
    if (this.#workWatches.has(projectId)) return;
    // Up to MIRROR_IN_FLIGHT events are published before their acks come back, rather than one round trip
    // each (which left a burst's events seconds behind the answers). They go out in ledger order on the one
    // connection, so the stream stores them in that order; publishEvent never throws (it logs), so a
    // failed event is skipped as it was when they went one at a time, and a new leader resumes after the
    // newest stored event, its repeats of events still in flight here dropped by their message ids.
    const inFlight = new Set<Promise<void>>();
    const watch = this.#lastMirroredRevision(projectId)
      .then((last) =>
        this.project(projectId).work.watchEvents(
          async (e) => {
            const published = this.publishEvent(
              projectId,
              "work",
              e.type,
              {
                workId: e.workId,
                taskId: e.taskId,
                status: e.status,
                capability: e.capability,
                boundary: e.boundary,
                agentId: e.agentId,
                attempt: e.attempt,
                revision: e.revision,
                ...(e.reason !== undefined ? { reason: e.reason } : {}),
              },
              `work-${e.workId}-${e.revision}-${e.type}`,
            );
            inFlight.add(published);
            void published.then(() => inFlight.delete(published));
            if (inFlight.size >= MIRROR_IN_FLIGHT) await Promise.race(inFlight);
          },
          // Resume after the last transition mirrored (by whichever instance led then): none is missed.
          // Weft is the coordinator: it sees every item's events; its SSE clients are authorised by token.
          { fromRevision: last + 1, asCoordinator: true },
        ),
      )
      .catch((err: unknown) => {
        this.logger.warn({ projectId, err: String(err) }, "could not watch work events");
        this.#workWatches.delete(projectId);
        return undefined;
      });
    this.#workWatches.set(projectId, watch);
  }

  /** The ledger revision of the last work event in the project's event stream (0: none yet). */
  async #lastMirroredRevision(projectId: string): Promise<number> {
    await this.ensureEventStream(projectId);
    const jsm = await this.fabric.jsm();
    const m = await jsm.streams
      .getMessage(streams.weftEvents(projectId), { last_by_subj: subjects.weftEvent(projectId, "work") })
      .catch(() => undefined);
    if (!m) return 0;
    const r = weftEventSchema.safeParse(m.json());
    const revision = r.success ? r.data.data.revision : undefined;
    return typeof revision === "number" ? revision : 0;
  }

  async #stopWorkWatches(): Promise<void> {
    const watches = [...this.#workWatches.values()];
    this.#workWatches.clear();
    for (const w of watches) await (await w)?.stop().catch(() => undefined);
  }

  /** Publishes an agent event when an agent appears, changes status or leaves (not on heartbeats). */
  #announceAgent(change: RegistryChange): void {
    if (change.type === "delete") {
      const key = `${change.projectId}.${change.agentId}`;
      if (this.#announced.delete(key))
        void this.publishEvent(change.projectId, "agent", "deregistered", { agentId: change.agentId });
      return;
    }
    const r = change.record;
    const key = `${r.projectId}.${r.agentId}`;
    const status = this.registry.get(r.projectId, r.agentId)?.status ?? r.status;
    const before = this.#announced.get(key);
    if (before === status) return;
    this.#announced.set(key, status);
    void this.publishEvent(
      r.projectId,
      "agent",
      before === undefined ? "registered" : status,
      {
        agentId: r.agentId,
        agentType: r.agentType,
        status,
        capabilities: r.capabilities,
        ...(r.spinUpId ? { spinUpId: r.spinUpId } : {}),
      },
      `agent-${r.agentId}-${r.lastHeartbeat}-${status}`,
    );
  }

  /** A spin-up whose agent has not registered: verify it now, or fail it once its deadline passed. */
  async #checkStarting(projectId: string, s: SpinUpRecord, now: number): Promise<void> {
    const agent = this.registry
      .agents(projectId)
      .find((a) => a.spinUpId === s.spinUpId && a.status !== "offline");
    if (agent) {
      this.#remoteAskedAt.delete(s.spinUpId);
      await this.#verify(projectId, s.spinUpId, agent.agentId);
      return;
    }
    if (await this.#askRemote(projectId, s, now)) return;
    if (Date.parse(s.deadlineAt) > now) return;
    const { changed, record } = await this.project(projectId).spinUps.update(s.spinUpId, (cur) =>
      cur.status === "starting"
        ? {
            ...cur,
            status: "failed",
            reason: `no agent registered with spin-up id ${cur.spinUpId} within the target's timeout`,
            finishedAt: new Date().toISOString(),
          }
        : undefined,
    );
    if (!changed || !record) return;
    this.metrics.spinUps.inc({ result: "failed" });
    this.logger.warn(
      { projectId, spinUpId: s.spinUpId, target: s.targetName },
      "spin-up failed: its agent never registered",
    );
    await this.#stopHandle(record, 0);
    void this.publishEvent(projectId, "spinup", "failed", {
      spinUpId: s.spinUpId,
      targetId: s.targetId,
      reason: record.reason,
    });
  }

  /**
   * Asks the mechanism how a spin-up that has not registered is doing (at most every
   * `statusPollIntervalMs`). What it says is recorded on the spin-up; when what was started already ended
   * (Job failed, run cancelled or finished, process gone) the spin-up fails now with the mechanism's
   * reason instead of at its deadline. Returns whether it failed it.
   */
  async #askRemote(projectId: string, s: SpinUpRecord, now: number): Promise<boolean> {
    const every = this.config.file.defaults.statusPollIntervalMs;
    const mechanism = this.#mechanisms.get(s.mechanism);
    if (every === 0 || !s.handle || !mechanism?.status) return false;
    if (now - (this.#remoteAskedAt.get(s.spinUpId) ?? 0) < every) return false;
    this.#remoteAskedAt.set(s.spinUpId, now);
    let remote: RemoteStatus;
    try {
      remote = await mechanism.status(s.handle);
    } catch (err) {
      // Cannot tell (API down, host unreachable): the registration deadline still applies.
      remote = { state: "unknown", message: err instanceof Error ? err.message : String(err) };
    }
    const ended = remote.state === "failed" || remote.state === "gone" || remote.state === "succeeded";
    // The agent may have registered while the mechanism answered: that wins.
    if (ended && this.registry.agents(projectId).some((a) => a.spinUpId === s.spinUpId)) return false;
    const checkedAt = new Date().toISOString();
    const message = remote.message.slice(0, 2_000);
    const reason = `the ${s.mechanism} mechanism reports it ${remote.state} before its agent registered: ${message}`;
    const { changed, record } = await this.project(projectId).spinUps.update(s.spinUpId, (cur) => {
      if (cur.status !== "starting") return undefined;
      if (!ended && cur.remote?.state === remote.state && cur.remote.message === message) return undefined;
      const next = { ...cur, remote: { state: remote.state, message, checkedAt } };
      return ended ? { ...next, status: "failed", reason, finishedAt: checkedAt } : next;
    });
    if (!ended || !changed || !record) return false;
    this.#remoteAskedAt.delete(s.spinUpId);
    this.metrics.spinUps.inc({ result: "failed" });
    this.logger.warn(
      { projectId, spinUpId: s.spinUpId, target: s.targetName, remote: remote.state, message },
      "spin-up failed: what its mechanism started ended before the agent registered",
    );
    void this.publishEvent(
      projectId,
      "spinup",
      "failed",
      { spinUpId: s.spinUpId, targetId: s.targetId, reason, remote: remote.state },
      `spinup-${s.spinUpId}-failed`,
    );
    return true;
  }

  /** Marks a spin-up running once an agent carrying its id registered (any instance may do this). */
  async #verify(projectId: string, spinUpId: string, agentId: string): Promise<void> {
    const { changed } = await this.project(projectId).spinUps.update(spinUpId, (cur) =>
      cur.status === "starting"
        ? {
            ...cur,
            status: "running",
            agentId,
            verifiedAt: new Date().toISOString(),
            lastBusyAt: new Date().toISOString(),
          }
        : undefined,
    );
    if (!changed) return;
    this.metrics.spinUps.inc({ result: "succeeded" });
    this.logger.info({ projectId, spinUpId, agentId }, "spin-up verified: its agent registered");
    void this.publishEvent(
      projectId,
      "spinup",
      "running",
      { spinUpId, agentId },
      `spinup-${spinUpId}-running`,
    );
  }

  async #onAgentSeen(projectId: string, agentId: string): Promise<void> {
    const agent = this.registry.get(projectId, agentId);
    if (!agent?.spinUpId || agent.status === "offline") return;
    const s = await this.project(projectId)
      .spinUps.get(agent.spinUpId)
      .catch(() => undefined);
    if (s?.status === "starting") await this.#verify(projectId, s.spinUpId, agentId).catch(() => undefined);
  }

  /**
   * A running spin-up: gone (its agent went offline) → stopped, which frees its slot; idle past its
   * timeout with nothing queued for it → asked to shut down; still there a grace period later → stopped.
   */
  async #checkRunning(
    projectId: string,
    s: SpinUpRecord,
    targets: TargetRecord[],
    now: number,
  ): Promise<void> {
    const project = this.project(projectId);
    const agent = s.agentId ? this.registry.get(projectId, s.agentId) : undefined;
    const alive = localProcessAlive(s.handle);
    if (!agent || agent.status === "offline" || alive === false) {
      const { changed } = await project.spinUps.update(s.spinUpId, (cur) =>
        cur.status === "running"
          ? {
              ...cur,
              status: "stopped",
              finishedAt: new Date().toISOString(),
              reason: cur.shutdownRequestedAt ? "shut down when idle" : "its agent went offline",
            }
          : undefined,
      );
      if (changed) {
        await this.#stopHandle(s, 0);
        void this.publishEvent(projectId, "spinup", "stopped", {
          spinUpId: s.spinUpId,
          agentId: s.agentId ?? null,
        });
      }
      return;
    }
    const target = targets.find((t) => t.targetId === s.targetId);
    const idleTimeoutMs = target?.idleTimeoutMs ?? this.config.file.defaults.idleTimeoutMs;
    const lastWork = Math.max(
      Date.parse(s.lastBusyAt ?? s.verifiedAt ?? s.startedAt),
      agent.lastWorkAt ? Date.parse(agent.lastWorkAt) : 0,
      Date.parse(agent.registeredAt),
    );
    const busy = agent.currentTaskCount > 0 || agent.status === "busy";
    if (busy) {
      if (now - Date.parse(s.lastBusyAt ?? s.startedAt) > idleTimeoutMs / 4)
        await project.spinUps.update(s.spinUpId, (cur) => ({
          ...cur,
          lastBusyAt: new Date(now).toISOString(),
        }));
      return;
    }
    if (s.shutdownRequestedAt) {
      if (now - Date.parse(s.shutdownRequestedAt) > this.config.file.defaults.shutdownGraceMs) {
        this.logger.warn(
          { projectId, spinUpId: s.spinUpId, agentId: s.agentId },
          "agent did not shut down when asked; stopping it",
        );
        await this.#stopHandle(s, 5_000);
      }
      return;
    }
    if (now - lastWork < idleTimeoutMs) return;
    // Never reap an agent while work it could take waits: it may be about to claim it.
    if (await this.#queuedFor(projectId, agent)) return;
    await project.spinUps.update(s.spinUpId, (cur) => ({
      ...cur,
      shutdownRequestedAt: new Date(now).toISOString(),
    }));
    this.logger.info(
      { projectId, agentId: agent.agentId, idleMs: now - lastWork },
      "asking an idle agent to shut down",
    );
    this.metrics.idleShutdowns.inc();
    await this.control(projectId, agent.agentId, { op: "shutdown", graceful: true, reason: "idle" }).catch(
      (err: unknown) =>
        this.logger.warn(
          { agentId: agent.agentId, err: String(err) },
          "idle agent did not answer its shutdown request",
        ),
    );
    void this.publishEvent(projectId, "agent", "shutdown-requested", {
      agentId: agent.agentId,
      reason: "idle",
    });
  }

  async #queuedFor(projectId: string, agent: AgentEntry): Promise<boolean> {
    const status = await this.project(projectId).work.status();
    return status.capabilities.some(
      (c) =>
        agent.capabilities.includes(c.capability) &&
        c.boundaries.some(
          (b) => b.queued > 0 && (agent.boundaries.length === 0 || agent.boundaries.includes(b.boundary)),
        ),
    );
  }

  async #stopHandle(s: SpinUpRecord, graceMs: number): Promise<void> {
    if (!s.handle) return;
    await this.mechanism(s.mechanism)
      .stop(s.handle, { graceMs })
      .catch((err: unknown) =>
        this.logger.warn({ spinUpId: s.spinUpId, err: String(err) }, "could not stop a spin-up"),
      );
  }

  /** Why a target cannot start an agent now (disabled, unhealthy, at maxConcurrent, cooling down), or undefined. */
  async #blockedReason(projectId: string, target: TargetRecord): Promise<string | undefined> {
    if (!target.enabled) return "disabled";
    if (target.health.status === "unhealthy") return "unhealthy";
    const spinUps = await this.project(projectId).spinUps.list();
    const active = spinUps.filter(
      (s) => s.targetId === target.targetId && (s.status === "starting" || s.status === "running"),
    );
    if (active.length >= target.maxConcurrent)
      return `${active.length} of maxConcurrent ${target.maxConcurrent} agents running`;
    const last = target.lastSpinUpAt ? Date.parse(target.lastSpinUpAt) : 0;
    if (Date.now() - last < target.cooldownMs) return `cooling down (cooldownMs ${target.cooldownMs})`;
    return undefined;
  }

  /**
   * Starts an agent for work of one capability and boundary if none eligible is online and none is
   * already starting for it. Serialised in this process (only the leader calls it), so one need starts
   * one agent however many items wait.
   */
  #decide(
    projectId: string,
    capability: string,
    boundary: string,
    need: { requiredAgentType?: string | undefined; preferredAgentType?: string | undefined; queued: number },
  ): Promise<SpinUpRecord | undefined> {
    const run = this.#decideLock.then(() => this.#decideNow(projectId, capability, boundary, need));
    this.#decideLock = run.catch(() => undefined);
    return run;
  }

  async #decideNow(
    projectId: string,
    capability: string,
    boundary: string,
    need: { requiredAgentType?: string | undefined; preferredAgentType?: string | undefined; queued: number },
  ): Promise<SpinUpRecord | undefined> {
    const policy = this.policyOf(boundary);
    if (policy && !policy.spinUp) return undefined;
    const eligible = this.registry.eligible(projectId, capability, boundary, policy, need.requiredAgentType);
    const free = eligible.reduce((n, a) => n + Math.max(0, a.maxConcurrentTasks - a.currentTaskCount), 0);
    if (free > 0) return undefined;
    const project = this.project(projectId);
    // Targets first (read at most once a second): a project without a fitting target needs nothing more.
    const targets = (await project.targets.listCached(1_000)).filter(
      (t) =>
        t.capabilities.includes(capability) &&
        (t.boundaries.length === 0 || t.boundaries.includes(boundary)) &&
        agentTypeAllowed(policy, t.agentType) &&
        (need.requiredAgentType === undefined || t.agentType === need.requiredAgentType),
    );
    if (targets.length === 0) return undefined;
    const spinUps = await project.spinUps.list();
    const starting = spinUps.filter(
      (s) => s.status === "starting" && s.capability === capability && s.boundary === boundary,
    );
    // An agent on its way is the answer to this need: one spin-up per need, however many items wait.
    // Busy eligible agents with work still queued start one more (within maxConcurrent and cooldown).
    if (starting.length > 0) return undefined;
    const preferred = need.preferredAgentType ?? policy?.preferredAgentType;
    targets.sort((a, b) => {
      const pa = a.agentType === preferred ? 0 : 1;
      const pb = b.agentType === preferred ? 0 : 1;
      if (pa !== pb) return pa - pb;
      // A target whose last health check passed before one not checked yet (unhealthy ones are skipped).
      const ha = a.health.status === "healthy" ? 0 : 1;
      const hb = b.health.status === "healthy" ? 0 : 1;
      if (ha !== hb) return ha - hb;
      return (b.lastHealthyAt ?? "").localeCompare(a.lastHealthyAt ?? "");
    });
    for (const target of targets) {
      if (await this.#blockedReason(projectId, target)) continue;
      try {
        return await this.#launch(projectId, target, capability, boundary, "work");
      } catch (err) {
        this.logger.warn(
          { projectId, target: target.name, err: String(err) },
          "spin-up failed to launch; trying the next target",
        );
      }
    }
    return undefined;
  }

  async #launch(
    projectId: string,
    target: TargetRecord,
    capability: string,
    boundary: string,
    trigger: "work" | "manual",
  ): Promise<SpinUpRecord> {
    const project = this.project(projectId);
    const spinUpId = randomId();
    const now = new Date();
    // Count the use before starting, so a crash right after cannot start a second one past the cooldown.
    await project.targets.update(target.targetId, (t) => ({
      ...t,
      lastSpinUpAt: now.toISOString(),
      useCount: t.useCount + 1,
    }));
    const record: SpinUpRecord = {
      spinUpId,
      projectId,
      targetId: target.targetId,
      targetName: target.name,
      mechanism: target.mechanism,
      capability,
      boundary,
      status: "starting",
      trigger,
      startedAt: now.toISOString(),
      deadlineAt: new Date(now.getTime() + target.timeoutMs).toISOString(),
      updatedAt: now.toISOString(),
    };
    await project.spinUps.create(record);
    const env: Record<string, string> = {
      LOOMINAL_SPINUP_ID: spinUpId,
      LOOMINAL_TARGET_ID: target.targetId,
      LOOMINAL_PROJECT_ID: projectId,
      NATS_URL: this.config.nats.servers.join(","),
      LOOMINAL_CAPABILITY: target.capabilities.join(","),
      LOOMINAL_BOUNDARY: boundary,
      LOOMINAL_AGENT_TYPE: target.agentType,
      // The agent's own idle timeout is a backstop for when no Weft is left to shut it down.
      LOOMINAL_IDLE_TIMEOUT: `${2 * target.idleTimeoutMs + this.config.file.defaults.shutdownGraceMs}ms`,
    };
    try {
      const handle = await this.mechanism(target.mechanism).start({ spinUpId, target, env });
      const { record: stored } = await project.spinUps.update(spinUpId, (cur) => ({ ...cur, handle }));
      void this.publishEvent(projectId, "spinup", "starting", {
        spinUpId,
        targetId: target.targetId,
        capability,
        boundary,
      });
      this.logger.info(
        { projectId, spinUpId, target: target.name, capability, boundary },
        "spin-up started; waiting for its agent to register",
      );
      // It may have registered already (before the handle was recorded).
      void this.#onSpinUpMaybeRegistered(projectId, spinUpId);
      return stored ?? { ...record, handle };
    } catch (err) {
      const reason = `the ${target.mechanism} mechanism could not start it: ${err instanceof Error ? err.message : String(err)}`;
      await project.spinUps.update(spinUpId, (cur) => ({
        ...cur,
        status: "failed",
        reason,
        finishedAt: new Date().toISOString(),
      }));
      this.metrics.spinUps.inc({ result: "failed" });
      void this.publishEvent(projectId, "spinup", "failed", { spinUpId, targetId: target.targetId, reason });
      throw new LoominalError("internal", reason, { cause: err });
    }
  }

  async #onSpinUpMaybeRegistered(projectId: string, spinUpId: string): Promise<void> {
    const agent = this.registry
      .agents(projectId)
      .find((a) => a.spinUpId === spinUpId && a.status !== "offline");
    if (agent) await this.#verify(projectId, spinUpId, agent.agentId).catch(() => undefined);
  }

  /** Work items of a project by status (for metrics), from one ledger page per status. */
  async countWork(projectId: string, status: WorkStatus): Promise<number> {
    const page = await this.project(projectId).work.list({ status, limit: 100 });
    return page.items.length;
  }
}
