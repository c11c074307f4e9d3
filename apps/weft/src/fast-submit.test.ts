// The fast path of POST /api/work answers as the express route does. `/api/work/` (a trailing slash, which
// express's route accepts and the fast path leaves alone) is the same operation through express, so each
// request here is sent both ways and the answers compared.
import { randomBytes } from "node:crypto";
import { type NatsServer, uniqueProjectId } from "@loominal/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseJsonBody, takesFastPath } from "./fast-submit.js";
import { MAX_BODY_BYTES } from "./http.js";
import { client, startWeftStack, stopWeftStack, type WeftProcess } from "./weft.test-helper.js";

const ADMIN = "admin-token-fast-0123456789abcdef";
const LIMITED = "limited-token-fast-0123456789abcdef";
const p1 = uniqueProjectId();
const p2 = uniqueProjectId();

let nats: NatsServer;
let weft: WeftProcess;
let dir: { path: string; cleanup: () => void };

beforeAll(async () => {
  ({ nats, weft, dir } = await startWeftStack("weft-fast-", {
    WEFT_API_TOKENS: `${ADMIN},${LIMITED}:${p1}`,
  }));
});

afterAll(async () => {
  await stopWeftStack({ nats, weft, dir });
});

/** Sends one raw request to the fast path and to express; returns both answers. */
async function both(
  query: string,
  init: { token?: string; body?: string; headers?: Record<string, string> },
): Promise<Array<{ status: number; body: unknown; contentType: string | null }>> {
  const out = [];
  for (const path of ["/api/work", "/api/work/"]) {
    const res = await fetch(`${weft.url}${path}${query}`, {
      method: "POST",
      signal: AbortSignal.timeout(30_000),
      headers: {
        ...(init.token ? { authorization: `Bearer ${init.token}` } : {}),
        "content-type": "application/json",
        ...init.headers,
      },
      ...(init.body !== undefined ? { body: init.body } : {}),
    });
    const text = await res.text();
    out.push({ status: res.status, body: JSON.parse(text), contentType: res.headers.get("content-type") });
  }
  return out;
}

describe("which requests take the fast path", () => {
  const json = { "content-type": "application/json", "content-length": "2", authorization: "Bearer x" };
  it("takes POST /api/work with a JSON body and a bearer token or no credentials", () => {
    expect(takesFastPath("POST", "/api/work", json)).toBe(true);
    expect(takesFastPath("POST", "/api/work?projectId=p", json)).toBe(true);
    expect(
      takesFastPath("POST", "/api/work", { ...json, "content-type": "application/json; charset=UTF-8" }),
    ).toBe(true);
    expect(
      takesFastPath("POST", "/api/work", {
        "content-type": "application/json",
        "transfer-encoding": "chunked",
      }),
    ).toBe(true);
    // A bearer token wins over a cookie, as in express's path.
    expect(takesFastPath("POST", "/api/work", { ...json, cookie: "weft_session=v1.x.y.z" })).toBe(true);
  });

  it("leaves everything else to express", () => {
    expect(takesFastPath("GET", "/api/work", json)).toBe(false);
    expect(takesFastPath("POST", "/api/work/", json)).toBe(false);
    expect(takesFastPath("POST", "/api/workers", json)).toBe(false);
    expect(takesFastPath("POST", "/API/WORK", json)).toBe(false);
    const { authorization: _a, ...anonymous } = json;
    expect(takesFastPath("POST", "/api/work", { ...anonymous, cookie: "weft_session=v1.x.y.z" })).toBe(false);
    expect(takesFastPath("POST", "/api/work", { ...json, "content-type": "text/plain" })).toBe(false);
    expect(
      takesFastPath("POST", "/api/work", { ...json, "content-type": "application/json; charset=utf-16le" }),
    ).toBe(false);
    expect(takesFastPath("POST", "/api/work", { ...json, "content-encoding": "gzip" })).toBe(false);
    const { "content-length": _l, ...noBody } = json;
    expect(takesFastPath("POST", "/api/work", noBody)).toBe(false);
  });

  it("reads bodies as express's strict JSON parser does", () => {
    expect(parseJsonBody("")).toEqual({});
    expect(parseJsonBody('\uFEFF {"a":1}')).toEqual({ a: 1 });
    expect(parseJsonBody(" [1]")).toEqual([1]);
    for (const bad of ["null", "  12", '"text"', "   ", "{not json"])
      expect(() => parseJsonBody(bad), bad).toThrow();
  });
});

describe("answers as the express route does", () => {
  it("refuses a missing or unknown token with the same 401", async () => {
    const body = JSON.stringify({ description: "x", capability: "ts" });
    for (const token of [undefined, "not-a-token-0123456789abcdef"]) {
      const [fast, slow] = await both(`?projectId=${p1}`, { ...(token ? { token } : {}), body });
      expect(fast?.status).toBe(401);
      expect(fast).toEqual(slow);
    }
  });

  it("refuses bodies that are not JSON, not an object or not valid with the same 400", async () => {
    for (const body of [
      "{not json",
      "null",
      "  12",
      '"text"',
      "   ",
      "",
      "[1,2]",
      JSON.stringify({ description: "x", capability: "Type Script" }),
      JSON.stringify({ description: "x", capability: "ts", colour: "red" }),
      JSON.stringify({ description: "x", capability: "ts", workId: "not-an-id" }),
    ]) {
      const [fast, slow] = await both(`?projectId=${p1}`, { token: ADMIN, body });
      expect(fast?.status, body).toBe(400);
      expect(fast, body).toEqual(slow);
    }
  });

  it("refuses a body over the limit with the same 413", async () => {
    const body = JSON.stringify({ description: "x".repeat(MAX_BODY_BYTES + 10), capability: "ts" });
    const [fast, slow] = await both(`?projectId=${p1}`, { token: ADMIN, body });
    expect(fast?.status).toBe(413);
    expect(fast).toEqual(slow);
  });

  it("chooses and checks the project the same way", async () => {
    const body = JSON.stringify({ description: "x", capability: "ts" });
    // An admin token must name the project.
    const [fast, slow] = await both("", { token: ADMIN, body });
    expect(fast?.status).toBe(400);
    expect(fast).toEqual(slow);
    // A project token may not act on another project.
    const [other, otherSlow] = await both(`?projectId=${p2}`, { token: LIMITED, body });
    expect(other?.status).toBe(403);
    expect(other).toEqual(otherSlow);
    const [bad, badSlow] = await both("?projectId=Not%20A%20Project", { token: ADMIN, body });
    expect(bad?.status).toBe(400);
    expect(bad).toEqual(badSlow);
  });

  it("submits with the same answer, and a workId stays idempotent across both paths", async () => {
    const workId = randomBytes(16).toString("hex");
    const body = JSON.stringify({
      description: "write the parser",
      capability: "typescript",
      taskId: "parser",
      priority: 7,
      workId,
    });
    // A project token with one project needs no projectId, on either path.
    const [first, again] = await both("", { token: LIMITED, body });
    expect(first?.status).toBe(201);
    expect(first?.contentType).toBe("application/json; charset=utf-8");
    expect(first).toEqual(again);
    expect((first?.body as { workId?: string } | undefined)?.workId).toBe(workId);
    // The same workId for another task is a conflict, on either path.
    const clash = JSON.stringify({ description: "x", capability: "typescript", taskId: "other", workId });
    const [fast, slow] = await both("", { token: LIMITED, body: clash });
    expect(fast?.status).toBe(409);
    expect(fast).toEqual(slow);
    // A byte-order mark is dropped, as express's parser drops it.
    const bom = await both(`?projectId=${p1}`, {
      token: ADMIN,
      body: `\uFEFF${JSON.stringify({ description: "bom", capability: "typescript" })}`,
    });
    expect(bom.map((r) => r.status)).toEqual([201, 201]);
  });

  it("counts its requests in the same request metric", async () => {
    const metrics = await client(weft.url, ADMIN)("GET", "/metrics");
    const text = metrics.body as string;
    expect(text).toMatch(
      /weft_http_request_duration_seconds_count\{method="POST",route="\/api\/work",status="201"\} \d+/,
    );
    expect(text).toMatch(
      /weft_http_request_duration_seconds_count\{method="POST",route="unmatched",status="401"\} \d+/,
    );
  });
});
