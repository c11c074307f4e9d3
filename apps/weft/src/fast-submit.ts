// `POST /api/work` on node:http, ahead of express: the one request a busy Weft answers thousands of times
// a second. It answers exactly as the express route would (same auth, validation, errors, status codes,
// metrics and logging: both call runOperation and errorBody); any request it is not sure about — a session
// cookie instead of a bearer token, another content type or charset, a compressed body, no body, another
// spelling of the path — goes to express untouched, before a byte of its body is read.
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from "node:http";
import { parse as parseQuery } from "node:querystring";
import { type Logger, readBodyLimited } from "@loominal/fabric";
import { OPERATIONS, type Operation } from "./api.js";
import type { TokenAuthenticator } from "./auth.js";
import { errorBody, MAX_BODY_BYTES, runOperation } from "./http.js";
import { cookieValue, SESSION_COOKIE } from "./session.js";
import type { Weft } from "./weft.js";

const PATH = "/api/work";
/** The route label express gives the request once it reached the route (metrics). */
const ROUTE = "/api/work";
/** The route label of a request refused before it reached a route (auth, body), as express labels it. */
const UNMATCHED = "unmatched";

/** JSON's whitespace (RFC 8259), the only characters allowed before a body's first `{` or `[`. */
const LEADING_WS = /^[ \t\n\r]*/;

/** Why the body is not JSON the route accepts, as the express JSON parser words it. */
class BodyParseError extends Error {
  readonly type = "entity.parse.failed";
}

/**
 * Whether a request's content type is JSON the fast path decodes as express would: `application/json`,
 * with no parameter or `charset=utf-8`. Anything else (another charset, another type) goes to express.
 */
function plainJson(contentType: string | undefined): boolean {
  if (contentType === undefined) return false;
  const semi = contentType.indexOf(";");
  if (semi < 0) return contentType.trim().toLowerCase() === "application/json";
  if (contentType.slice(0, semi).trim().toLowerCase() !== "application/json") return false;
  const param = contentType
    .slice(semi + 1)
    .trim()
    .toLowerCase();
  return param === "charset=utf-8";
}

/**
 * The body as the express JSON parser (strict mode) reads it: a leading byte-order mark dropped, an empty
 * body read as `{}`, only an object or array accepted at the top level, and a syntax error reported with
 * the message `JSON.parse` gives.
 */
export function parseJsonBody(raw: string): unknown {
  const text = raw.charCodeAt(0) === 0xfeff ? raw.slice(1) : raw;
  if (text.length === 0) return {};
  const first = text[0] === "{" || text[0] === "[" ? 0 : (LEADING_WS.exec(text)?.[0].length ?? 0);
  const c = text[first];
  if (c !== "{" && c !== "[") {
    // Not an object or array: the message JSON.parse gives for the offending character, with that
    // character and what follows masked (so a number or string there is not itself valid JSON).
    if (c === undefined) throw new BodyParseError(syntaxMessage(""));
    const masked = text.slice(0, first) + "#".repeat(text.length - first);
    const message = syntaxMessage(masked).replace(/#+/g, (run) => text.slice(first, first + run.length));
    throw new BodyParseError(message);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new BodyParseError((err as Error).message);
  }
}

function syntaxMessage(text: string): string {
  try {
    JSON.parse(text);
    return "strict violation";
  } catch (err) {
    return (err as Error).message;
  }
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const json = JSON.stringify(body);
  res.statusCode = status;
  res.setHeader("Content-Type", "application/json; charset=utf-8");
  res.setHeader("Content-Length", Buffer.byteLength(json));
  res.end(json);
}

/**
 * Whether the fast path answers a request (from its method, URL and headers alone): `POST /api/work`
 * spelled exactly so, with a bearer token or no credentials at all, and a JSON body it decodes as express
 * would. A dashboard session (a cookie and no bearer token) goes to express for its origin and CSRF
 * checks; other content types, charsets, compressed or absent bodies go there for its parsers.
 */
export function takesFastPath(
  method: string | undefined,
  url: string | undefined,
  h: IncomingHttpHeaders,
): boolean {
  if (method !== "POST" || url === undefined || !url.startsWith(PATH)) return false;
  if (url.length !== PATH.length && url[PATH.length] !== "?") return false;
  if (h.authorization === undefined && cookieValue(h.cookie, SESSION_COOKIE) !== undefined) return false;
  if (!plainJson(h["content-type"])) return false;
  const encoding = h["content-encoding"];
  if (encoding !== undefined && encoding.toLowerCase() !== "identity") return false;
  return h["content-length"] !== undefined || h["transfer-encoding"] !== undefined;
}

/**
 * A request listener for `POST /api/work`: returns false (having touched nothing) for a request that
 * is not one it answers, so the caller hands it to express.
 */
export function submitFastPath(deps: {
  weft: Weft;
  auth: TokenAuthenticator;
  logger: Logger;
}): (req: IncomingMessage, res: ServerResponse) => boolean {
  const { weft, auth, logger } = deps;
  const op = OPERATIONS.find((o) => o.id === "submitWork") as Operation;
  const histogram = weft.metrics.requestSeconds;

  return (req, res) => {
    if (!takesFastPath(req.method, req.url, req.headers)) return false;
    const url = req.url as string;
    const q = url.indexOf("?");
    const h = req.headers;
    const end = histogram.startTimer({ method: "POST" });
    let route = UNMATCHED;
    const fail = (err: unknown) => {
      const { status, body } = errorBody(err);
      if (status >= 500)
        logger.error({ err: err instanceof Error ? err.message : String(err) }, "request failed");
      if (!res.headersSent) send(res, status, body);
      end({ route, status: String(res.statusCode) });
    };
    let principal: ReturnType<TokenAuthenticator["fromHeader"]>;
    try {
      principal = auth.fromHeader(h.authorization);
    } catch (err) {
      fail(err);
      return true;
    }
    readBodyLimited(req, MAX_BODY_BYTES)
      .then(async (raw) => {
        const body = parseJsonBody(raw);
        route = ROUTE;
        const query = q < 0 ? {} : parseQuery(url.slice(q + 1));
        const r = await runOperation(weft, op, principal, { params: {}, query, body });
        send(res, r.status, r.body);
        end({ route, status: String(r.status) });
      })
      .catch(fail);
    return true;
  };
}
