import { jsonCodec } from "@loominal/fabric";
import {
  channelMessageSchema,
  LoominalError,
  nameToken,
  presenceFilterSchema,
  projectIdSchema,
  RUN_ID_RE,
  SPIN_UP_MECHANISMS,
  streams,
  summarizeWork,
  WORK_STATUSES,
  type WorkItem,
  workContextSchema,
  workIdSchema,
} from "@loominal/protocol";
import { z } from "zod";
import type { Principal } from "./auth.js";
import type { Weft } from "./weft.js";

/** The parts of a request an operation reads: path parameters, query string and JSON body. */
export interface OpInput {
  params: Record<string, unknown>;
  query: Record<string, unknown>;
  body: unknown;
}

export interface OpContext {
  weft: Weft;
  principal: Principal;
  /** The project the call acts on (undefined only for operations marked `crossProject`). */
  projectId: string | undefined;
}

export interface OpResult {
  status?: number;
  body: unknown;
}

/**
 * One operation of Weft's API: its REST route, its NATS request/reply name (`coord.<p>.<op>`), its zod
 * schemas (the source of the OpenAPI document) and its handler. REST, NATS and `weft mcp` all go
 * through this table.
 */
export interface Operation {
  id: string;
  /** NATS op token (`coord.<p>.<op>`); absent: REST only. */
  op?: string;
  method: "get" | "post" | "put" | "delete";
  path: string;
  summary: string;
  params?: z.ZodObject;
  query?: z.ZodObject;
  body?: z.ZodObject;
  /** Needs an admin token (target mutations: a target runs commands on Weft's host). */
  admin?: string;
  /** May be called without a project (admin: across projects). */
  crossProject?: boolean;
  /** Acts on no project at all: the handler gets no projectId and answers from the principal alone. */
  noProject?: boolean;
  /** Gets the parts already parsed by the schemas above (typed loosely: one table holds every operation). */
  // biome-ignore lint/suspicious/noExplicitAny: each handler reads what its own schemas produced
  handler: (ctx: OpContext, input: { params: any; query: any; body: any }) => Promise<OpResult>;
}

const limit = (max: number, def: number) =>
  z.coerce.number().int().min(1).max(max).default(def).describe("Items per page");
const pageCursor = (what: string) =>
  z
    .string()
    .regex(/^[1-9][0-9]{0,15}$/, `the nextCursor of a previous ${what} page`)
    .optional()
    .describe("nextCursor of the previous page");
const agentIdParam = z.object({
  agentId: z
    .string()
    .regex(/^[0-9a-f]{32}$/, "agentId must be 32 lower-case hex characters")
    .describe("The agent's id"),
});
const workIdParam = z.object({ workId: workIdSchema.describe("The work item's id") });
const reasonField = z.string().max(2_000).optional().describe("Why, recorded with the request");
const targetParam = z.object({ target: z.string().min(1).max(64).describe("target id or name") });
const projectQuery = z.object({ projectId: projectIdSchema.optional() });

export const submitWorkSchema = z.strictObject({
  description: z
    .string()
    .min(1, "description must not be empty")
    .max(20_000)
    .describe("What needs doing, for the agent that takes it"),
  capability: nameToken("capability").describe("Capability an agent needs to take it, e.g. typescript"),
  boundary: nameToken("boundary").optional().describe("Boundary it belongs to (default: default)"),
  taskId: z.string().min(1).max(256).optional().describe("Your id for the task, echoed back"),
  workId: workIdSchema
    .optional()
    .describe("makes submission idempotent: the same workId returns the stored item"),
  priority: z.int().min(1).max(10).optional().describe("1 (lowest) to 10 (highest); default 5"),
  requiredAgentType: nameToken("agent type").optional().describe("Only agents of this type may take it"),
  preferredAgentType: nameToken("agent type")
    .optional()
    .describe("Route to agents of this type when one is eligible"),
  deadline: z.iso.datetime({ offset: true }).optional().describe("ISO 8601 time it should be done by"),
  contextData: workContextSchema.optional().describe("Free-form JSON object for the agent"),
});

const targetBase = {
  name: nameToken("target"),
  description: z.string().max(2_000).optional(),
  mechanism: z.enum(SPIN_UP_MECHANISMS),
  agentType: nameToken("agent type"),
  capabilities: z.array(nameToken("capability")).min(1, "a target needs at least one capability"),
  boundaries: z.array(nameToken("boundary")).optional(),
  config: z.record(z.string(), z.unknown()),
  enabled: z.boolean().optional(),
  maxConcurrent: z.int().min(1).max(1_000).optional(),
  cooldownMs: z.int().min(0).optional(),
  idleTimeoutMs: z.int().min(1_000).optional(),
  timeoutMs: z.int().min(100).optional(),
  tags: z.array(z.string().max(64)).max(32).optional(),
};
export const createTargetSchema = z.strictObject(targetBase);
export const updateTargetSchema = z.strictObject(
  Object.fromEntries(Object.entries(targetBase).map(([k, v]) => [k, (v as z.ZodType).optional()])) as {
    [K in keyof typeof targetBase]: z.ZodOptional<(typeof targetBase)[K]>;
  },
);

function workView(item: WorkItem) {
  return { ...item, id: item.workId };
}

const channelCodec = jsonCodec(channelMessageSchema);

export const OPERATIONS: Operation[] = [
  // ——— agents ———
  {
    id: "listAgents",
    op: "agents-list",
    method: "get",
    path: "/api/agents",
    summary:
      "Agents of the project (idle and busy by default; status=offline for the others, online for idle and busy)",
    query: projectQuery.extend({
      type: nameToken("agent type").optional().describe("Only agents of this type"),
      status: presenceFilterSchema.optional().describe("idle, busy, offline, or online (idle or busy)"),
      capability: nameToken("capability").optional().describe("Only agents with this capability"),
      boundary: nameToken("boundary").optional().describe("Only agents working in this boundary"),
      cursor: z
        .string()
        .regex(/^[0-9a-f]{32}$/)
        .optional()
        .describe("nextCursor of the previous page"),
      limit: limit(100, 50),
    }),
    handler: async ({ weft, projectId }, { query }) => {
      const page = weft.listAgents(projectId as string, {
        ...(query.type ? { agentType: query.type } : {}),
        ...(query.status ? { status: query.status } : {}),
        ...(query.capability ? { capability: query.capability } : {}),
        ...(query.boundary ? { boundary: query.boundary } : {}),
        ...(query.cursor ? { cursor: query.cursor } : {}),
        limit: query.limit,
      });
      return { body: { ...page, ...(page.nextCursor ? {} : { nextCursor: undefined }) } };
    },
  },
  {
    id: "getAgent",
    op: "agents-get",
    method: "get",
    path: "/api/agents/:agentId",
    summary: "One agent",
    params: agentIdParam,
    query: projectQuery,
    handler: async ({ weft, projectId }, { params }) => ({
      body: weft.getAgent(projectId as string, params.agentId),
    }),
  },
  {
    id: "shutdownAgent",
    op: "agents-shutdown",
    method: "post",
    path: "/api/agents/:agentId/shutdown",
    summary: "Ask an agent to shut down (it finishes or hands back the item in hand)",
    params: agentIdParam,
    query: projectQuery,
    body: z.strictObject({
      graceful: z.boolean().optional().describe("Finish or hand back the item in hand first (default true)"),
      reason: reasonField,
    }),
    handler: async ({ weft, projectId }, { params, body }) => {
      const reply = await weft.shutdownAgent(projectId as string, params.agentId, body);
      return { body: { success: reply.ok, message: reply.message ?? "shutdown requested", reply } };
    },
  },
  {
    id: "shutdownAgents",
    op: "agents-shutdown-batch",
    method: "post",
    path: "/api/agents/shutdown-batch",
    summary: "Ask several agents to shut down, by id or by filter",
    query: projectQuery,
    body: z.strictObject({
      agentIds: z
        .array(z.string().regex(/^[0-9a-f]{32}$/))
        .max(100)
        .optional()
        .describe("These agents; or give filter"),
      filter: z
        .strictObject({
          status: z.enum(["online", "idle", "busy"]).optional(),
          agentType: nameToken("agent type").optional(),
          boundary: nameToken("boundary").optional(),
          capability: nameToken("capability").optional(),
        })
        .optional()
        .describe("The live agents matching all of these (at most 100)"),
      graceful: z.boolean().optional().describe("Finish or hand back the item in hand first (default true)"),
      reason: reasonField,
    }),
    handler: async ({ weft, projectId }, { body }) => {
      const p = projectId as string;
      const ids: string[] =
        body.agentIds ??
        weft
          .listAgents(p, {
            ...(body.filter?.status ? { status: body.filter.status } : {}),
            ...(body.filter?.agentType ? { agentType: body.filter.agentType } : {}),
            ...(body.filter?.boundary ? { boundary: body.filter.boundary } : {}),
            ...(body.filter?.capability ? { capability: body.filter.capability } : {}),
            limit: 100,
          })
          .agents.map((a) => a.agentId);
      const results = await Promise.all(
        ids.map(async (agentId) => {
          try {
            const r = await weft.shutdownAgent(p, agentId, body);
            return { agentId, success: r.ok, message: r.message ?? "shutdown requested" };
          } catch (err) {
            return { agentId, success: false, message: err instanceof Error ? err.message : String(err) };
          }
        }),
      );
      return {
        body: {
          results,
          succeeded: results.filter((r) => r.success).length,
          failed: results.filter((r) => !r.success).length,
        },
      };
    },
  },
  // ——— work ———
  {
    id: "submitWork",
    op: "work-submit",
    method: "post",
    path: "/api/work",
    summary:
      "Submit work: stored in the Warp work ledger and offered on its queue; spins an agent up when none eligible is online",
    query: projectQuery,
    body: submitWorkSchema,
    handler: async ({ weft, projectId }, { body }) => {
      const r = await weft.submit(projectId as string, body);
      return {
        status: 201,
        body: { workId: r.item.workId, status: r.item.status, spinUp: r.spinUp, item: workView(r.item) },
      };
    },
  },
  {
    id: "listWork",
    op: "work-list",
    method: "get",
    path: "/api/work",
    summary: "Work items, newest first, filtered; page with nextCursor",
    query: projectQuery.extend({
      status: z.enum(WORK_STATUSES).optional().describe("Only items in this status"),
      capability: nameToken("capability").optional().describe("Only items of this capability"),
      boundary: nameToken("boundary").optional().describe("Only items of this boundary"),
      agent: z
        .string()
        .regex(/^[0-9a-f]{32}$/)
        .optional()
        .describe("claimed by this agent"),
      cursor: pageCursor("work list"),
      limit: limit(100, 50),
    }),
    handler: async ({ weft, projectId }, { query }) => {
      const page = await weft.listWork(projectId as string, {
        ...(query.status ? { status: query.status } : {}),
        ...(query.capability ? { capability: query.capability } : {}),
        ...(query.boundary ? { boundary: query.boundary } : {}),
        ...(query.agent ? { claimedBy: query.agent } : {}),
        ...(query.cursor ? { cursor: query.cursor } : {}),
        limit: query.limit,
      });
      return {
        body: {
          workItems: page.items.map(summarizeWork),
          count: page.items.length,
          hasMore: page.nextCursor !== undefined,
          ...(page.nextCursor ? { nextCursor: page.nextCursor } : {}),
        },
      };
    },
  },
  {
    id: "getWork",
    op: "work-get",
    method: "get",
    path: "/api/work/:workId",
    summary: "One work item with its full state",
    params: workIdParam,
    query: projectQuery,
    handler: async ({ weft, projectId }, { params }) => ({
      body: workView(await weft.getWork(projectId as string, params.workId)),
    }),
  },
  {
    id: "workHistory",
    method: "get",
    path: "/api/work/:workId/history",
    summary:
      "The item's recent transitions, oldest first (the revisions the work ledger keeps: offered, claimed, a progress note, the outcome)",
    params: workIdParam,
    query: projectQuery,
    handler: async ({ weft, projectId }, { params }) => {
      const events = await weft.workHistory(projectId as string, params.workId);
      return {
        body: {
          workId: params.workId,
          events: events.map(({ item: _item, projectId: _p, ...e }) => e),
          count: events.length,
        },
      };
    },
  },
  // ——— dead letters ———
  {
    id: "listDeadLetters",
    method: "get",
    path: "/api/dlq",
    summary: "Items in the dead-letter queue, oldest first, with why they died; page with nextCursor",
    query: projectQuery.extend({
      capability: nameToken("capability").optional(),
      cursor: z
        .string()
        .regex(/^[1-9][0-9]{0,15}$/, "the nextCursor of a previous page")
        .optional(),
      limit: limit(100, 50),
    }),
    handler: async ({ weft, projectId }, { query }) => {
      const page = await weft.dlqList(projectId as string, {
        ...(query.capability ? { capability: query.capability } : {}),
        ...(query.cursor ? { cursor: query.cursor } : {}),
        limit: query.limit,
      });
      return {
        body: {
          letters: page.letters.map(({ item, ...letter }) => ({ ...letter, item: summarizeWork(item) })),
          count: page.letters.length,
          hasMore: page.nextCursor !== undefined,
          ...(page.nextCursor ? { nextCursor: page.nextCursor } : {}),
        },
      };
    },
  },
  {
    id: "retryDeadLetter",
    method: "post",
    path: "/api/dlq/:workId/retry",
    summary:
      "Put a dead item back in its queue (one more attempt, or a fresh maxAttempts with resetAttempts)",
    params: workIdParam,
    query: projectQuery,
    body: z.strictObject({ resetAttempts: z.boolean().optional() }),
    handler: async ({ weft, projectId }, { params, body }) => ({
      body: workView(
        await weft.dlqRetry(projectId as string, params.workId, {
          ...(body.resetAttempts !== undefined ? { resetAttempts: body.resetAttempts } : {}),
        }),
      ),
    }),
  },
  {
    id: "discardDeadLetter",
    method: "post",
    path: "/api/dlq/:workId/discard",
    summary: "Drop a dead item for good (status discarded)",
    params: workIdParam,
    query: projectQuery,
    handler: async ({ weft, projectId }, { params }) => ({
      body: workView(await weft.dlqDiscard(projectId as string, params.workId)),
    }),
  },
  {
    id: "cancelWork",
    op: "work-cancel",
    method: "post",
    path: "/api/work/:workId/cancel",
    summary: "Cancel a pending or claimed item",
    params: workIdParam,
    query: projectQuery,
    body: z.strictObject({ reason: z.string().max(4_000).optional().describe("Why, kept on the item") }),
    handler: async ({ weft, projectId }, { params, body }) => ({
      body: workView(await weft.cancelWork(projectId as string, params.workId, body.reason)),
    }),
  },
  {
    id: "cancelWorkBatch",
    op: "work-cancel-batch",
    method: "post",
    path: "/api/work/cancel-batch",
    summary: "Cancel several items; per-item results",
    query: projectQuery,
    body: z.strictObject({
      workIds: z.array(workIdSchema).min(1).max(100).describe("The items to cancel"),
      reason: z.string().max(4_000).optional().describe("Why, kept on each item"),
    }),
    handler: async ({ weft, projectId }, { body }) => {
      const results = await Promise.all(
        (body.workIds as string[]).map(async (workId) => {
          try {
            const item = await weft.cancelWork(projectId as string, workId, body.reason);
            return { workId, success: true, status: item.status };
          } catch (err) {
            return {
              workId,
              success: false,
              error:
                err instanceof LoominalError
                  ? { code: err.code, message: err.message }
                  : { code: "internal", message: String(err) },
            };
          }
        }),
      );
      return { body: { results, cancelled: results.filter((r) => r.success).length } };
    },
  },
  // ——— targets ———
  {
    id: "listTargets",
    op: "targets-list",
    method: "get",
    path: "/api/targets",
    summary: "Spin-up targets of the project",
    query: projectQuery,
    handler: async ({ weft, projectId }) => {
      const targets = await weft.listTargets(projectId as string);
      return { body: { targets, count: targets.length } };
    },
  },
  {
    id: "createTarget",
    op: "targets-create",
    method: "post",
    path: "/api/targets",
    summary: "Register a spin-up target (admin)",
    query: projectQuery,
    body: createTargetSchema,
    admin: "create targets",
    handler: async ({ weft, projectId, principal }, { body }) => ({
      status: 201,
      body: await weft.createTarget(projectId as string, body, principal.id),
    }),
  },
  {
    id: "getTarget",
    op: "targets-get",
    method: "get",
    path: "/api/targets/:target",
    summary: "One target, by id or name",
    params: targetParam,
    query: projectQuery,
    handler: async ({ weft, projectId }, { params }) => ({
      body: await weft.getTarget(projectId as string, params.target),
    }),
  },
  {
    id: "updateTarget",
    op: "targets-update",
    method: "put",
    path: "/api/targets/:target",
    summary: "Change a target (admin)",
    params: targetParam,
    query: projectQuery,
    body: updateTargetSchema,
    admin: "change targets",
    handler: async ({ weft, projectId, principal }, { params, body }) => ({
      body: await weft.updateTarget(projectId as string, params.target, body, principal.id),
    }),
  },
  {
    id: "deleteTarget",
    op: "targets-delete",
    method: "delete",
    path: "/api/targets/:target",
    summary: "Delete a target (admin)",
    params: targetParam,
    query: projectQuery,
    admin: "delete targets",
    handler: async ({ weft, projectId, principal }, { params }) => {
      const t = await weft.deleteTarget(projectId as string, params.target, principal.id);
      return { body: { deleted: true, targetId: t.targetId, name: t.name } };
    },
  },
  {
    id: "testTarget",
    op: "targets-test",
    method: "post",
    path: "/api/targets/:target/test",
    summary: "Run the target's health check and record the result",
    params: targetParam,
    query: projectQuery,
    handler: async ({ weft, projectId }, { params }) => ({
      body: await weft.testTarget(projectId as string, params.target),
    }),
  },
  {
    id: "spinUpTarget",
    op: "targets-spin-up",
    method: "post",
    path: "/api/targets/:target/spin-up",
    summary: "Start an agent on this target now (admin); verified when it registers",
    params: targetParam,
    query: projectQuery,
    body: z.strictObject({
      capability: nameToken("capability").optional(),
      boundary: nameToken("boundary").optional(),
    }),
    admin: "spin up targets",
    handler: async ({ weft, projectId, principal }, { params, body }) => ({
      status: 202,
      body: await weft.spinUpTarget(projectId as string, params.target, { ...body, actor: principal.id }),
    }),
  },
  {
    id: "enableTarget",
    op: "targets-enable",
    method: "post",
    path: "/api/targets/:target/enable",
    summary: "Enable a target (admin)",
    params: targetParam,
    query: projectQuery,
    admin: "change targets",
    handler: async ({ weft, projectId, principal }, { params }) => ({
      body: await weft.setTargetEnabled(projectId as string, params.target, true, principal.id),
    }),
  },
  {
    id: "disableTarget",
    op: "targets-disable",
    method: "post",
    path: "/api/targets/:target/disable",
    summary: "Disable a target (admin)",
    params: targetParam,
    query: projectQuery,
    admin: "change targets",
    handler: async ({ weft, projectId, principal }, { params }) => ({
      body: await weft.setTargetEnabled(projectId as string, params.target, false, principal.id),
    }),
  },
  {
    id: "listSpinUps",
    op: "spinups-list",
    method: "get",
    path: "/api/spin-ups",
    summary: "Spin-ups of the project and their state (starting, running, failed, stopped)",
    query: projectQuery.extend({
      status: z
        .enum(["starting", "running", "failed", "stopped"])
        .optional()
        .describe("Only spin-ups in this state"),
    }),
    handler: async ({ weft, projectId }, { query }) => {
      const all = await weft.listSpinUps(projectId as string);
      const spinUps = all
        .filter((s) => query.status === undefined || s.status === query.status)
        .sort((a, b) => b.startedAt.localeCompare(a.startedAt));
      return { body: { spinUps, count: spinUps.length } };
    },
  },
  // ——— projects and the Runner ———
  {
    id: "listProjects",
    method: "get",
    path: "/api/projects",
    summary:
      "Projects this token may see: an admin's every project Weft knows, a project token's own; and the token's kind",
    noProject: true,
    handler: async ({ weft, principal }) => {
      const projects =
        principal.kind === "admin" ? await weft.knownProjects() : [...principal.projects].sort();
      return { body: { projects, count: projects.length, tokenKind: principal.kind } };
    },
  },
  {
    id: "runnerOverview",
    method: "get",
    path: "/api/runner",
    summary:
      "The Runner cluster as it is in NATS (admin): pause state, live replicas, the most recently written runs",
    query: z.object({ limit: limit(1_000, 200) }),
    admin: "read the Runner's state",
    noProject: true,
    handler: async ({ weft }, { query }) => ({ body: await weft.runner.overview(query.limit) }),
  },
  {
    id: "runnerRunEvents",
    method: "get",
    path: "/api/runner/runs/:runId/events",
    summary: "A run's events so far, oldest first (admin); /api/runner/runs/:runId/stream follows them live",
    params: z.object({ runId: z.string().regex(RUN_ID_RE, "runId must be 32 lower-case hex characters") }),
    admin: "read the Runner's state",
    noProject: true,
    handler: async ({ weft }, { params }) => {
      const events = await weft.runner.runEvents(params.runId);
      return { body: { runId: params.runId, events, count: events.length } };
    },
  },
  // ——— stats and channels ———
  {
    id: "stats",
    op: "stats",
    method: "get",
    path: "/api/stats",
    summary:
      "Agents, work, targets and spin-ups of the project; across every project for an admin token without projectId",
    query: projectQuery,
    crossProject: true,
    handler: async ({ weft, projectId }) => {
      if (projectId !== undefined) return { body: await weft.stats(projectId) };
      const projects = await weft.knownProjects();
      const per = await Promise.all(projects.map((p) => weft.stats(p)));
      return { body: { projects: per, count: per.length, leader: weft.isLeader, instance: weft.instanceId } };
    },
  },
  {
    id: "statsByProject",
    method: "get",
    path: "/api/stats/projects",
    summary: "Totals per project across every project Weft knows (admin)",
    admin: "read stats across projects",
    crossProject: true,
    handler: async ({ weft }) => {
      const projects = await weft.knownProjects();
      const per = await Promise.all(projects.map((p) => weft.stats(p)));
      return { body: { projects: per, count: per.length } };
    },
  },
  {
    id: "listChannels",
    op: "channels-list",
    method: "get",
    path: "/api/channels",
    summary: "Channels of the project with their message counts",
    query: projectQuery,
    handler: async ({ weft, projectId }) => {
      const p = projectId as string;
      const jsm = await weft.fabric.jsm();
      const prefix = streams.channel(p, "x").slice(0, -1);
      const channels: Array<{ name: string; messages: number; lastSeq: number }> = [];
      for await (const s of jsm.streams.list()) {
        if (!s.config.name.startsWith(prefix)) continue;
        channels.push({
          name: s.config.name.slice(prefix.length),
          messages: s.state.messages,
          lastSeq: s.state.last_seq,
        });
      }
      channels.sort((a, b) => a.name.localeCompare(b.name));
      return { body: { channels, count: channels.length } };
    },
  },
  {
    id: "readChannel",
    op: "channels-read",
    method: "get",
    path: "/api/channels/:name/messages",
    summary: "The newest team and public messages of a channel, oldest first",
    params: z.object({ name: nameToken("channel").describe("The channel") }),
    query: projectQuery.extend({ limit: limit(100, 20) }),
    handler: async ({ weft, projectId }, { params, query }) => {
      const p = projectId as string;
      const jsm = await weft.fabric.jsm();
      const stream = streams.channel(p, params.name);
      const info = await jsm.streams.info(stream).catch(() => undefined);
      if (!info) throw new LoominalError("not_found", `no channel ${params.name} in project ${p}`);
      const messages: unknown[] = [];
      const first = Math.max(info.state.first_seq, info.state.last_seq - query.limit + 1);
      for (let seq = first; seq <= info.state.last_seq && info.state.messages > 0; seq++) {
        const m = await jsm.streams.getMessage(stream, { seq }).catch(() => undefined);
        if (!m) continue;
        const r = channelCodec.safeDecode(m.data, `${stream}/${seq}`);
        // Weft shows what every agent of the project may read; private and personal messages stay private.
        if (!r.ok || (r.value.scope !== "team" && r.value.scope !== "public")) continue;
        messages.push({
          seq,
          senderId: r.value.senderId,
          senderHandle: r.value.senderHandle,
          scope: r.value.scope,
          message: r.value.message,
          sentAt: r.value.sentAt,
        });
      }
      return { body: { channel: params.name, messages, count: messages.length } };
    },
  },
];

export function operationByOp(op: string): Operation | undefined {
  return OPERATIONS.find((o) => o.op === op);
}
