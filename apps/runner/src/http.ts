import { timingSafeEqual } from "node:crypto";
import type { Logger } from "@loominal/fabric";
import { RUN_ID_RE, RUNNER_AGENT_ID_RE, RUNNER_TEXT_MAX } from "@loominal/protocol";
import express, { type NextFunction, type Request, type Response } from "express";
import { z } from "zod";
import type { RunnerMetrics } from "./metrics.js";
import type { Refusal, RunnerService } from "./service.js";

/** A client's key that makes a repeated POST /v1/runs return the run of the first one. */
const IDEMPOTENCY_KEY_RE = /^[A-Za-z0-9_-]{1,64}$/;

const id = (what: string) => z.string().min(1, `${what} must not be empty`).max(RUNNER_TEXT_MAX);

/** POST /v1/runs body (snake_case, as the runtime the runner replaces). */
export const runBodySchema = z
  .object({
    agent: z.string().min(1).max(64),
    prompt: z.string().min(1, "prompt must not be empty").max(1_000_000),
    user_id: id("user_id"),
    tenant_id: id("tenant_id").optional(),
    agent_id: z.string().regex(RUNNER_AGENT_ID_RE, `agent_id must match ${RUNNER_AGENT_ID_RE}`).optional(),
    session_id: id("session_id").optional(),
    metadata: z.record(z.string(), z.unknown()).optional(),
    run_timeout_seconds: z.number().int().min(1).max(86_400).optional(),
    idempotency_key: z
      .string()
      .regex(IDEMPOTENCY_KEY_RE, "idempotency_key must be 1–64 letters, digits, _ or -")
      .optional(),
    stream: z.boolean().default(true),
  })
  .strict();

const pauseBodySchema = z.object({ timeout_ms: z.number().int().min(0).max(600_000).default(0) }).strict();
export const cancelBodySchema = z.object({ reason: z.string().max(500).optional() }).strict();
/** The largest JSON body the API reads (express.json's "1mb"). */
export const MAX_BODY_BYTES = 1024 * 1024;
export const BAD_RUN_ID = "run id must be 32 lower-case hex characters";

export interface HttpOptions {
  service: RunnerService;
  authToken: string | undefined;
  keepaliveMs: number;
  metrics: RunnerMetrics;
  logger: Logger;
}

function send(
  res: Response,
  status: number,
  code: string,
  error: string,
  extra: Record<string, unknown> = {},
) {
  res.status(status).json({ code, error, ...extra });
}

function refuse(res: Response, r: Refusal): void {
  for (const [k, v] of Object.entries(r.headers ?? {})) res.setHeader(k, v);
  send(res, r.status, r.code, r.error, r.extra);
}

export function zodMessage(err: z.ZodError): string {
  return err.issues
    .map((i) => `${i.path.join(".") || "body"}: ${i.message}`)
    .slice(0, 5)
    .join("; ");
}

/** Starts an SSE response with keepalive comments; returns a writer and a stop function. */
function sse(res: Response, keepaliveMs: number) {
  res.status(200);
  res.setHeader("content-type", "text/event-stream");
  res.setHeader("cache-control", "no-cache");
  res.setHeader("connection", "keep-alive");
  res.flushHeaders();
  const timer = setInterval(() => res.write(": keepalive\n\n"), keepaliveMs);
  return {
    write(event: string, data: unknown) {
      res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    },
    end() {
      clearInterval(timer);
      res.end();
    },
    stop() {
      clearInterval(timer);
    },
  };
}

export function runView(r: Awaited<ReturnType<RunnerService["runs"]["get"]>>) {
  if (!r) return undefined;
  const { admit_ack: _a, ...view } = r;
  return view;
}

/** The runner's HTTP API (express 5). */
export function createHttpApp(o: HttpOptions): express.Express {
  const { service } = o;
  const app = express();
  app.disable("x-powered-by");

  const health = async (_req: Request, res: Response) => {
    const replicas = await service.replicas();
    res.json({
      replica_id: service.replicaId,
      replicas: replicas.map((r) => r.replica_id),
      nats: service.fabric.state,
    });
  };
  // `/health` as every Loominal service (probes); `/healthz` as before.
  app.get("/health", health);
  app.get("/healthz", health);

  if (o.authToken !== undefined) {
    const expected = Buffer.from(`Bearer ${o.authToken}`);
    app.use((req, res, next) => {
      const given = Buffer.from(req.get("authorization") ?? "");
      if (given.length === expected.length && timingSafeEqual(given, expected)) return next();
      res.setHeader("www-authenticate", "Bearer");
      send(res, 401, "unauthorized", "send Authorization: Bearer <RUNNER_AUTH_TOKEN>");
    });
  }

  app.get("/metrics", async (_req, res) => {
    res.setHeader("content-type", o.metrics.registry.contentType);
    res.send(await o.metrics.registry.metrics());
  });

  const json = express.json({ limit: MAX_BODY_BYTES, type: () => true });
  const requireJson = (req: Request, res: Response, next: NextFunction) => {
    if (!req.is("application/json")) {
      send(res, 415, "unsupported_media_type", "send the body as JSON with Content-Type: application/json");
      return;
    }
    next();
  };

  app.post("/v1/runs", requireJson, json, async (req, res) => {
    const body = runBodySchema.safeParse(req.body);
    if (!body.success) return send(res, 400, "invalid_input", zodMessage(body.error));
    const b = body.data;
    const outcome = await service.submit(b);
    if (!outcome.ok) return refuse(res, outcome.refusal);
    const { record: run, duplicate } = outcome.value;
    if (!b.stream) {
      res.status(202).json({
        run_id: run.run_id,
        status: run.status,
        replica_id: run.replica_id,
        ...(duplicate ? { duplicate } : {}),
      });
      return;
    }
    res.setHeader("x-run-id", run.run_id);
    const out = sse(res, o.keepaliveMs);
    out.write("run", {
      run_id: run.run_id,
      status: run.status,
      replica_id: run.replica_id,
      ...(duplicate ? { duplicate } : {}),
    });
    const ac = new AbortController();
    let ended = false;
    res.on("close", () => {
      ac.abort();
      if (!ended) {
        void service
          .cancel(run.run_id, "client disconnected")
          .catch((err: unknown) =>
            o.logger.warn({ err: String(err), run: run.run_id }, "cancel after disconnect failed"),
          );
      }
    });
    try {
      for await (const e of service.followEvents(run.run_id, 0, ac.signal)) {
        out.write(e.type, { seq: e.seq, at: e.at, ...e.data });
        if (e.type === "done" || e.type === "error") ended = true;
      }
    } finally {
      ended = true;
      out.end();
    }
  });

  app.get("/v1/runs/:id", async (req, res) => {
    const runId = req.params.id;
    if (!RUN_ID_RE.test(runId)) return send(res, 400, "invalid_input", BAD_RUN_ID);
    const r = await service.runs.read(runId);
    if (!r) return send(res, 404, "not_found", `no run ${runId}`);
    res.json({ ...runView(r), evaluations: await service.tools.evaluationsOf(runId) });
  });

  app.get("/v1/runs/:id/events", async (req, res) => {
    const runId = req.params.id;
    if (!RUN_ID_RE.test(runId)) return send(res, 400, "invalid_input", BAD_RUN_ID);
    const after = req.query.after === undefined ? 0 : Number(req.query.after);
    if (!Number.isInteger(after) || after < 0) {
      return send(res, 400, "invalid_input", "after must be a non-negative integer (an event seq)");
    }
    const r = await service.runs.read(runId);
    if (!r) return send(res, 404, "not_found", `no run ${runId}`);
    const out = sse(res, o.keepaliveMs);
    const ac = new AbortController();
    res.on("close", () => ac.abort());
    try {
      // A run cancelled while queued has no events beyond its terminal one; one that never started has none.
      for await (const e of service.followEvents(runId, after, ac.signal)) {
        out.write(e.type, { seq: e.seq, at: e.at, ...e.data });
      }
    } finally {
      out.end();
    }
  });

  app.post("/v1/runs/:id/cancel", async (req, res) => {
    const runId = req.params.id;
    if (!RUN_ID_RE.test(runId)) return send(res, 400, "invalid_input", BAD_RUN_ID);
    let reason = "requested";
    if (req.is("application/json")) {
      await new Promise<void>((resolve, reject) =>
        json(req, res, (err?: unknown) => (err ? reject(err) : resolve())),
      );
      const b = cancelBodySchema.safeParse(req.body ?? {});
      if (!b.success) return send(res, 400, "invalid_input", zodMessage(b.error));
      reason = b.data.reason ?? reason;
    }
    const t0 = performance.now();
    const outcome = await service.cancel(runId, reason);
    // How long the cancel itself took here (the compare-and-set), apart from HTTP and queueing.
    res.setHeader("server-timing", `cancel;dur=${(performance.now() - t0).toFixed(2)}`);
    if (!outcome.ok) return refuse(res, outcome.refusal);
    res.json(runView(outcome.value));
  });

  app.get("/v1/users/:user_id/runs", async (req, res) => {
    const userId = req.params.user_id;
    const limit = Math.min(1_000, Math.max(1, Number(req.query.limit ?? 100) || 100));
    const runs = await service.runs.listByUser(userId, limit);
    res.json({ user_id: userId, runs: runs.map(runView) });
  });

  app.get("/v1/users/:user_id/runs/stream", async (req, res) => {
    const userId = req.params.user_id;
    const out = sse(res, o.keepaliveMs);
    const ac = new AbortController();
    res.on("close", () => ac.abort());
    try {
      for await (const r of service.watchUser(userId, ac.signal)) out.write("run", runView(r));
    } finally {
      out.end();
    }
  });

  app.post("/v1/_pause", async (req, res) => {
    let timeoutMs = 0;
    if (req.is("application/json")) {
      await new Promise<void>((resolve, reject) =>
        json(req, res, (err?: unknown) => (err ? reject(err) : resolve())),
      );
      const b = pauseBodySchema.safeParse(req.body ?? {});
      if (!b.success) return send(res, 400, "invalid_input", zodMessage(b.error));
      timeoutMs = b.data.timeout_ms;
    }
    const outcome = await service.pause(timeoutMs);
    if (!outcome.ok) return refuse(res, outcome.refusal);
    res.json({ state: outcome.value });
  });

  app.post("/v1/_resume", async (_req, res) => {
    const outcome = await service.resume();
    if (!outcome.ok) return refuse(res, outcome.refusal);
    res.json({ state: outcome.value });
  });

  app.get("/v1/_state", async (_req, res) => {
    res.json({ state: await service.clusterState() });
  });

  app.get("/v1/_concurrency/stats", async (_req, res) => {
    res.json(await service.stats());
  });

  app.use((_req: Request, res: Response) =>
    send(res, 404, "not_found", "no such endpoint; see docs/runner.md"),
  );

  app.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => {
    if (res.headersSent) {
      res.end();
      return;
    }
    const { status, body } = errorAnswer(err, o.logger);
    res.status(status).json(body);
  });
  return app;
}

/** The answer to a request that failed (a body express could not read, NATS away, a bug); logs the last. */
export function errorAnswer(
  err: unknown,
  logger: Logger,
): { status: number; body: { code: string; error: string } } {
  const e = err as { type?: string; status?: number; message?: string };
  if (e.type === "entity.too.large")
    return { status: 413, body: { code: "payload_too_large", error: "the body is over 1 MB" } };
  if (e.type === "entity.parse.failed")
    return { status: 400, body: { code: "invalid_json", error: "the body is not valid JSON" } };
  logger.error({ err: String(err) }, "request failed");
  const unavailable = /NATS|unavailable|timeout|TIMEOUT/i.test(String(e.message ?? ""));
  return unavailable
    ? { status: 503, body: { code: "nats_unavailable", error: "NATS is not answering; retry shortly" } }
    : { status: 500, body: { code: "internal", error: "internal error; see the runner's log" } };
}
