import type { IncomingMessage, Server, ServerResponse } from "node:http";
import { createHttpServer, type Logger, streamInfo } from "@loominal/fabric";
import { isLoominalError, projectIdSchema, RUN_ID_RE, weftEventSchema } from "@loominal/protocol";
import { DeliverPolicy } from "@nats-io/jetstream";
import express, { type NextFunction, type Request, type Response } from "express";
import { z } from "zod";
import { OPERATIONS, type Operation } from "./api.js";
import {
  assertAdmin,
  assertProjectAccess,
  type Principal,
  projectFor,
  type TokenAuthenticator,
} from "./auth.js";
import { STATUS_OF, WeftHttpError } from "./errors.js";
import { openApiDocument } from "./openapi.js";
import { pauseState } from "./runner-view.js";
import { cookieValue, SESSION_COOKIE, type SessionSigner } from "./session.js";
import { dashboardRouter, sameOrigin } from "./ui.js";
import type { Weft } from "./weft.js";

/** Largest request body, in bytes; bigger ones get 413. */
export const MAX_BODY_BYTES = 1024 * 1024;

/** Parses one part of a request; a 400 names every field that is wrong. */
export function parsePart<S extends z.ZodType>(
  schema: S,
  value: unknown,
  where: "params" | "query" | "body",
): z.infer<S> {
  const r = schema.safeParse(value ?? {});
  if (r.success) return r.data;
  const issues = r.error.issues.map((i) => ({ field: i.path.join(".") || where, message: i.message }));
  const first = issues[0];
  throw new WeftHttpError(
    400,
    "invalid_input",
    `invalid ${where}: ${issues.map((i) => `${i.field}: ${i.message}`).join("; ")}`,
    { where, field: first?.field, issues },
  );
}

/** Runs one operation for a caller: auth checks, project choice, validation, handler. */
export async function runOperation(
  weft: Weft,
  op: Operation,
  principal: Principal,
  raw: { params: unknown; query: unknown; body: unknown },
): Promise<{ status: number; body: unknown }> {
  const params = op.params ? parsePart(op.params, raw.params, "params") : {};
  const query = op.query ? parsePart(op.query, raw.query, "query") : {};
  const body = op.body ? parsePart(op.body, raw.body, "body") : {};
  if (op.admin) assertAdmin(principal, op.admin);
  const requested = (query as { projectId?: string }).projectId;
  let projectId: string | undefined;
  if (op.noProject) projectId = undefined;
  else if (op.crossProject && requested === undefined && principal.kind === "admin") projectId = undefined;
  else projectId = projectFor(principal, requested);
  const r = await op.handler({ weft, principal, projectId }, { params, query, body });
  return { status: r.status ?? 200, body: r.body };
}

/** The express app: auth on every route but /health, errors as `{ error: { code, message, details } }`. */
export function createApp(
  weft: Weft,
  auth: TokenAuthenticator,
  logger: Logger,
  sessions: SessionSigner,
): express.Express {
  const app = express();
  app.disable("x-powered-by");
  // No ETag: API answers are not cached, and hashing every response body costs CPU per request.
  app.set("etag", false);
  app.set("query parser", "simple");

  app.use((req, res, next) => {
    const end = weft.metrics.requestSeconds.startTimer({ method: req.method });
    res.on("finish", () =>
      end({ route: (req.route?.path as string | undefined) ?? "unmatched", status: String(res.statusCode) }),
    );
    next();
  });

  app.get("/health", (_req, res) => {
    res.json({
      status: weft.fabric.isConnected ? "ok" : "degraded",
      nats: weft.fabric.state,
      leader: weft.isLeader,
      instance: weft.instanceId,
      timestamp: new Date().toISOString(),
    });
  });

  app.use(dashboardRouter({ auth, sessions, logger }));

  app.use((req, res, next) => {
    res.locals.principal = authenticateRequest(req, auth, sessions);
    next();
  });
  app.use(express.json({ limit: MAX_BODY_BYTES }));

  app.get("/metrics", async (_req, res) => {
    for (const p of weft.registry.projects()) {
      weft.metrics.agentsOnline.set(
        { project: p },
        weft.registry.agents(p).filter((a) => a.status !== "offline").length,
      );
    }
    // Work by state, from queue and dead-letter state (no ledger scan), for the projects this instance served.
    for (const p of weft.servedProjects().slice(0, 50)) {
      const status = await weft
        .project(p)
        .work.status()
        .catch(() => undefined);
      if (!status) continue;
      const sum = (k: "queued" | "inFlight" | "dead") => status.capabilities.reduce((n, c) => n + c[k], 0);
      weft.metrics.workByStatus.set({ project: p, status: "queued" }, sum("queued"));
      weft.metrics.workByStatus.set({ project: p, status: "in_flight" }, sum("inFlight"));
      weft.metrics.workByStatus.set({ project: p, status: "dead" }, sum("dead"));
    }
    res.set("content-type", weft.metrics.registry.contentType);
    res.send(await weft.metrics.registry.metrics());
  });

  app.get("/api/openapi.json", (_req, res) => {
    res.json(openApiDocument());
  });

  for (const op of OPERATIONS) {
    app[op.method](op.path, async (req: Request, res: Response) => {
      const r = await runOperation(weft, op, res.locals.principal as Principal, {
        params: req.params,
        query: req.query,
        body: req.body,
      });
      res.status(r.status).json(r.body);
    });
  }

  app.get("/api/events", async (req, res) => {
    const principal = res.locals.principal as Principal;
    const q = parsePart(
      projectIdSchema.optional().transform((v) => ({ projectId: v })),
      (req.query as Record<string, unknown>).projectId,
      "query",
    );
    const projectId = projectFor(principal, q.projectId);
    assertProjectAccess(principal, projectId);
    await streamEvents(weft, projectId, req, res, logger);
  });

  app.get("/api/runner/stream", async (req, res) => {
    assertAdmin(res.locals.principal as Principal, "read the Runner's state");
    await streamRunner(weft, req, res, logger);
  });

  app.get("/api/runner/runs/:runId/stream", async (req, res) => {
    assertAdmin(res.locals.principal as Principal, "read the Runner's state");
    const { runId } = parsePart(runIdParams, req.params, "params");
    const out = openEventStream(req, res);
    await weft.runner
      .followRunEvents(runId, (e) => out.send("run-event", e, e.seq), out.signal)
      .catch((err: unknown) => logger.debug({ err: String(err) }, "run event stream ended"));
    out.end();
  });

  app.use((_req, _res, next) =>
    next(new WeftHttpError(404, "not_found", "no such route; see /api/openapi.json")),
  );

  app.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => {
    const { status, body } = errorBody(err);
    if (status >= 500)
      logger.error({ err: err instanceof Error ? err.message : String(err) }, "request failed");
    if (!res.headersSent) res.status(status).json(body);
  });
  return app;
}

const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

/**
 * Who is calling: a bearer token, else a dashboard session cookie. A request that changes something on
 * the strength of a cookie must come from Weft's own pages: same Origin, and the session's CSRF token in
 * `X-CSRF-Token` (the cookie is also SameSite=Strict). Throws 401 or 403.
 */
export function authenticateRequest(
  req: Request,
  auth: TokenAuthenticator,
  sessions: SessionSigner,
): Principal {
  const header = req.header("authorization");
  const cookie = cookieValue(req.header("cookie"), SESSION_COOKIE);
  if (header !== undefined || cookie === undefined) return auth.fromHeader(header);
  const session = sessions.verify(cookie);
  if (!session)
    throw new WeftHttpError(
      401,
      "unauthorized",
      "the dashboard session has expired or is no longer valid; log in again at /ui",
    );
  if (!SAFE_METHODS.has(req.method)) {
    if (!sameOrigin(req))
      throw new WeftHttpError(
        403,
        "forbidden",
        "a request with a session cookie must come from this Weft's own pages",
      );
    if (!sessions.csrfMatches(session, req.header("x-csrf-token")))
      throw new WeftHttpError(
        403,
        "forbidden",
        "send the session's CSRF token in X-CSRF-Token (the dashboard page carries it), or use a bearer token",
      );
  }
  return session.principal;
}

/** The one place errors become HTTP responses. */
export function errorBody(err: unknown): {
  status: number;
  body: { error: { code: string; message: string; details?: unknown } };
} {
  if (err instanceof WeftHttpError)
    return {
      status: err.status,
      body: {
        error: { code: err.code, message: err.message, ...(err.details ? { details: err.details } : {}) },
      },
    };
  if (isLoominalError(err)) {
    const status = STATUS_OF[err.code] ?? 500;
    return {
      status,
      body: {
        error: { code: err.code, message: err.message, ...(err.details ? { details: err.details } : {}) },
      },
    };
  }
  const e = err as { type?: string; status?: number; message?: string };
  if (e?.type === "entity.too.large")
    return {
      status: 413,
      body: {
        error: {
          code: "payload_too_large",
          message: `request bodies are limited to ${MAX_BODY_BYTES} bytes`,
        },
      },
    };
  if (e?.type === "entity.parse.failed")
    return {
      status: 400,
      body: {
        error: {
          code: "invalid_input",
          message: `the body is not valid JSON: ${e.message ?? ""}`,
          details: { field: "body" },
        },
      },
    };
  return { status: 500, body: { error: { code: "internal", message: "internal error; see Weft's log" } } };
}

/**
 * Server-sent events of one project (agent, work, target and spin-up events) from the project's
 * event stream; each event's id is its stream sequence, so a client reconnecting with `Last-Event-ID`
 * gets what it missed.
 */
async function streamEvents(
  weft: Weft,
  projectId: string,
  req: Request,
  res: Response,
  logger: Logger,
): Promise<void> {
  const last = Number.parseInt(req.header("last-event-id") ?? "", 10);
  await weft.ensureEventStream(projectId);
  const stream = weft.eventStreamName(projectId);
  // "From now on" is the stream's last sequence now, pinned before the stream is answered: an event
  // published once the client sees the stream open is never missed.
  const from =
    Number.isFinite(last) && last > 0
      ? last + 1
      : ((await streamInfo(await weft.fabric.jsm(), stream))?.state.last_seq ?? 0) + 1;
  const consumer = await weft.fabric.js.consumers.get(stream, {
    deliver_policy: DeliverPolicy.StartSequence,
    opt_start_seq: from,
  });
  const messages = await consumer.consume();
  const out = openEventStream(req, res);
  out.signal.addEventListener("abort", () => void messages.close(), { once: true });
  try {
    for await (const m of messages) {
      const r = weftEventSchema.safeParse(m.json());
      if (r.success) out.send(r.data.kind, r.data, m.seq);
    }
  } catch (err) {
    logger.debug({ err: String(err) }, "event stream ended");
  }
}

const runIdParams = z.object({
  runId: z.string().regex(RUN_ID_RE, "runId must be 32 lower-case hex characters"),
});
/** How often the Runner stream looks at the replicas (their liveness is a heartbeat TTL, not an event). */
const REPLICA_POLL_MS = 2_000;
const SSE_KEEPALIVE_MS = 15_000;

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener(
      "abort",
      () => {
        clearTimeout(timer);
        resolve();
      },
      { once: true },
    );
  });
}

/** A server-sent event stream on a response: `send` writes one event; `signal` aborts when the client goes. */
function openEventStream(req: Request, res: Response) {
  res.status(200).set({
    "content-type": "text/event-stream",
    "cache-control": "no-cache",
    connection: "keep-alive",
  });
  res.flushHeaders();
  res.write(": connected\n\n");
  const abort = new AbortController();
  const keepalive = setInterval(() => res.write(": keep-alive\n\n"), SSE_KEEPALIVE_MS);
  req.on("close", () => {
    clearInterval(keepalive);
    abort.abort();
  });
  return {
    signal: abort.signal,
    send(event: string, data: unknown, id?: number) {
      if (!abort.signal.aborted)
        res.write(
          `${id !== undefined ? `id: ${id}\n` : ""}event: ${event}\ndata: ${JSON.stringify(data)}\n\n`,
        );
    },
    end() {
      clearInterval(keepalive);
      res.end();
    },
  };
}

/**
 * The Runner cluster live: a `run` event each time a run record is written, and a `replicas` event
 * (state, pause and live replicas) whenever that changes, looked at every REPLICA_POLL_MS.
 */
async function streamRunner(weft: Weft, req: Request, res: Response, logger: Logger): Promise<void> {
  const out = openEventStream(req, res);
  let last = "";
  const sendReplicas = async () => {
    const [pause, replicas] = await Promise.all([weft.runner.pause(), weft.runner.replicas()]);
    const snapshot = { state: pauseState(pause, replicas), pause, replicas };
    // The heartbeat times change too, so a dashboard shows how fresh each replica is.
    const digest = JSON.stringify(snapshot);
    if (digest !== last) out.send("replicas", snapshot);
    last = digest;
  };
  const poll = setInterval(
    () =>
      void sendReplicas().catch((err: unknown) => logger.debug({ err: String(err) }, "replica poll failed")),
    REPLICA_POLL_MS,
  );
  out.signal.addEventListener("abort", () => clearInterval(poll), { once: true });
  // The first replicas event goes out once runs are followed, so a client may act on it without missing a run.
  let first = true;
  const sendFirst = async () => {
    if (!first) return;
    first = false;
    await sendReplicas().catch(() => undefined);
  };
  // A follow ends when there is no Runner (yet) or its consumer went away: look again until the client leaves.
  while (!out.signal.aborted) {
    await weft.runner
      .followRuns(
        (run) => out.send("run", run),
        out.signal,
        () => void sendFirst(),
      )
      .catch((err: unknown) => logger.debug({ err: String(err) }, "following runner runs ended"));
    await sendFirst();
    if (!out.signal.aborted) await sleep(REPLICA_POLL_MS, out.signal);
  }
  clearInterval(poll);
}

/**
 * Serves the app on `port`. `fastPath`, when given, sees each request first and answers the ones it
 * returns true for (see fast-submit.ts); express answers the rest.
 */
export function listen(
  app: express.Express,
  port: number,
  host: string,
  fastPath?: (req: IncomingMessage, res: ServerResponse) => boolean,
): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createHttpServer(
      fastPath
        ? (req, res) => {
            if (!fastPath(req, res)) app(req, res);
          }
        : app,
    );
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve(server);
    });
  });
}
