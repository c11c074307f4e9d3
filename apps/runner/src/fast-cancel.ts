// `POST /v1/runs/:id/cancel` on node:http, ahead of express: a cancel is answered on the one
// compare-and-set that decides it, and express's routing, body parsing and `res.json` were a third of the
// time inside the replica. It answers exactly as the express route does (same auth, validation, error bodies
// and status codes: both use cancelBodySchema, zodMessage and errorAnswer); a request it is not sure
// about — a wrong or missing token when one is required, a body in another content type, charset or
// encoding, another spelling of the path — goes to express untouched, before a byte of its body is read.
import { timingSafeEqual } from "node:crypto";
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from "node:http";
import { performance } from "node:perf_hooks";
import { type Logger, readBodyLimited } from "@loominal/fabric";
import { RUN_ID_RE } from "@loominal/protocol";
import { BAD_RUN_ID, cancelBodySchema, errorAnswer, MAX_BODY_BYTES, runView, zodMessage } from "./http.js";
import type { RunnerService } from "./service.js";

const PREFIX = "/v1/runs/";
const SUFFIX = "/cancel";

/** The body is not JSON the route accepts (as express's JSON parser in strict mode decides). */
class BodyParseError extends Error {
  readonly type = "entity.parse.failed";
}

/**
 * Whether the request has a body the express route would read: one it declares (type-is's test), other than
 * the empty body without a content type that `fetch` sends with a bare POST (express ignores that one).
 */
function bodyToRead(h: IncomingHttpHeaders): boolean {
  if (h["transfer-encoding"] !== undefined) return true;
  const length = h["content-length"];
  if (length === undefined) return false;
  return !(length === "0" && h["content-type"] === undefined);
}

/** `application/json`, with no parameter or `charset=utf-8`: a body the fast path decodes as express would. */
function plainJson(contentType: string | undefined): boolean {
  if (contentType === undefined) return false;
  const semi = contentType.indexOf(";");
  if (semi < 0) return contentType.trim().toLowerCase() === "application/json";
  if (contentType.slice(0, semi).trim().toLowerCase() !== "application/json") return false;
  return (
    contentType
      .slice(semi + 1)
      .trim()
      .toLowerCase() === "charset=utf-8"
  );
}

/**
 * The run id of a request the fast path answers (from its method, URL and headers alone), or undefined
 * for one it leaves to express: `POST /v1/runs/<id>/cancel` spelled exactly so (a query string allowed),
 * the bearer token when one is required, and no body or a JSON body in UTF-8 without content encoding.
 * The id itself is not checked here: a malformed one is refused by the fast path as by express.
 */
export function cancelFastPathRunId(
  method: string | undefined,
  url: string | undefined,
  h: IncomingHttpHeaders,
  expectedAuth: Buffer | undefined,
): string | undefined {
  if (method !== "POST" || url === undefined || !url.startsWith(PREFIX)) return undefined;
  const q = url.indexOf("?");
  const path = q < 0 ? url : url.slice(0, q);
  if (!path.endsWith(SUFFIX)) return undefined;
  const runId = path.slice(PREFIX.length, path.length - SUFFIX.length);
  // One path segment of plain characters; anything express would decode or route elsewhere goes there.
  if (!/^[A-Za-z0-9_-]+$/.test(runId)) return undefined;
  if (expectedAuth !== undefined) {
    const given = Buffer.from(h.authorization ?? "");
    if (given.length !== expectedAuth.length || !timingSafeEqual(given, expectedAuth)) return undefined;
  }
  if (bodyToRead(h)) {
    if (!plainJson(h["content-type"])) return undefined;
    const encoding = h["content-encoding"];
    if (encoding !== undefined && encoding.toLowerCase() !== "identity") return undefined;
  }
  return runId;
}

/**
 * The body as express's JSON parser (strict mode) reads it: a leading byte-order mark dropped, an empty body
 * read as `{}`, only an object or array accepted at the top level.
 */
export function parseCancelBody(raw: string): unknown {
  const text = raw.charCodeAt(0) === 0xfeff ? raw.slice(1) : raw;
  if (text.length === 0) return {};
  const first = /^[ \t\n\r]*(.)/s.exec(text)?.[1];
  if (first !== "{" && first !== "[") throw new BodyParseError("the body is not a JSON object");
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new BodyParseError((err as Error).message);
  }
}

/**
 * Writes a JSON answer as express's `res.json` does. Every answer names the time since the request arrived
 * here (`req;dur` in Server-Timing; express's answers do not), after any timing already set.
 */
function send(res: ServerResponse, arrived: number, status: number, body: unknown): void {
  const json = JSON.stringify(body);
  res.statusCode = status;
  const timing = res.getHeader("server-timing");
  const total = `req;dur=${(performance.now() - arrived).toFixed(2)}`;
  res.setHeader("Server-Timing", timing === undefined ? total : `${String(timing)}, ${total}`);
  res.setHeader("Content-Type", "application/json; charset=utf-8");
  res.setHeader("Content-Length", Buffer.byteLength(json));
  res.end(json);
}

/**
 * A request listener for `POST /v1/runs/:id/cancel`: returns false (having touched nothing) for a request
 * it does not answer, so the caller hands it to express.
 */
export function cancelFastPath(deps: {
  service: RunnerService;
  authToken: string | undefined;
  logger: Logger;
}): (req: IncomingMessage, res: ServerResponse) => boolean {
  const { service, logger } = deps;
  const expectedAuth = deps.authToken === undefined ? undefined : Buffer.from(`Bearer ${deps.authToken}`);
  return (req, res) => {
    const arrived = performance.now();
    const runId = cancelFastPathRunId(req.method, req.url, req.headers, expectedAuth);
    if (runId === undefined) return false;
    const fail = (err: unknown) => {
      const { status, body } = errorAnswer(err, logger);
      if (!res.headersSent) send(res, arrived, status, body);
      else res.end();
    };
    if (!RUN_ID_RE.test(runId)) {
      send(res, arrived, 400, { code: "invalid_input", error: BAD_RUN_ID });
      return true;
    }
    const cancel = async (reason: string) => {
      const t0 = performance.now();
      const outcome = await service.cancel(runId, reason);
      // The cancel itself (the compare-and-set), as express's route names it.
      res.setHeader("Server-Timing", `cancel;dur=${(performance.now() - t0).toFixed(2)}`);
      if (outcome.ok) return send(res, arrived, 200, runView(outcome.value));
      const r = outcome.refusal;
      for (const [k, v] of Object.entries(r.headers ?? {})) res.setHeader(k, v);
      send(res, arrived, r.status, { code: r.code, error: r.error, ...r.extra });
    };
    if (!bodyToRead(req.headers)) {
      cancel("requested").catch(fail);
      return true;
    }
    readBodyLimited(req, MAX_BODY_BYTES)
      .then(async (raw) => {
        const b = cancelBodySchema.safeParse(parseCancelBody(raw) ?? {});
        if (!b.success) return send(res, arrived, 400, { code: "invalid_input", error: zodMessage(b.error) });
        await cancel(b.data.reason ?? "requested");
      })
      .catch(fail);
    return true;
  };
}
