// The fast path of POST /v1/runs/:id/cancel answers as the express route does. `/v1/runs/:id/cancel/` (a
// trailing slash, which express's route accepts and the fast path leaves alone) is the same route through
// express, so each request here is sent both ways and the answers compared. The fast path's answer names the
// whole request's time (`req;dur` in Server-Timing), express's does not: that tells which one answered.
import { eventually } from "@loominal/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Cluster } from "./cluster.test-helper.js";
import { cancelFastPathRunId, parseCancelBody } from "./fast-cancel.js";
import { MAX_BODY_BYTES } from "./http.js";
import type { Replica } from "./replica.test-helper.js";

const TOKEN = "fast-cancel-token-0123456789";
const auth = { authorization: `Bearer ${TOKEN}` };
const ID = "0123456789abcdef0123456789abcdef";

describe("which cancels take the fast path", () => {
  const expected = Buffer.from(`Bearer ${TOKEN}`);
  const json = { "content-type": "application/json", "content-length": "2", ...auth };
  const take = (method: string, url: string, h: Record<string, string>, token = expected) =>
    cancelFastPathRunId(method, url, h, token);

  it("takes POST /v1/runs/<id>/cancel with the token and no body, fetch's empty one, or a JSON body", () => {
    expect(take("POST", `/v1/runs/${ID}/cancel`, auth)).toBe(ID);
    expect(take("POST", `/v1/runs/${ID}/cancel`, { ...auth, "content-length": "0" })).toBe(ID);
    expect(take("POST", `/v1/runs/${ID}/cancel?x=1`, json)).toBe(ID);
    expect(
      take("POST", `/v1/runs/${ID}/cancel`, { ...json, "content-type": "application/json; charset=UTF-8" }),
    ).toBe(ID);
    expect(
      take("POST", `/v1/runs/${ID}/cancel`, {
        ...auth,
        "transfer-encoding": "chunked",
        "content-type": "application/json",
      }),
    ).toBe(ID);
    // A malformed id is the fast path's to refuse, as express's route does.
    expect(take("POST", "/v1/runs/not-hex/cancel", auth)).toBe("not-hex");
    // No token required: no token needed.
    expect(cancelFastPathRunId("POST", `/v1/runs/${ID}/cancel`, {}, undefined)).toBe(ID);
  });

  it("leaves everything else to express", () => {
    expect(take("GET", `/v1/runs/${ID}/cancel`, auth)).toBeUndefined();
    expect(take("POST", `/v1/runs/${ID}/cancel/`, auth)).toBeUndefined();
    expect(take("POST", `/V1/RUNS/${ID}/CANCEL`, auth)).toBeUndefined();
    expect(take("POST", `/v1/runs/${ID}/cancelled`, auth)).toBeUndefined();
    expect(take("POST", "/v1/runs//cancel", auth)).toBeUndefined();
    expect(take("POST", "/v1/runs/a%2Fb/cancel", auth)).toBeUndefined();
    expect(take("POST", `/v1/runs/x/${ID}/cancel`, auth)).toBeUndefined();
    // The token: missing, wrong, or a prefix of the right one.
    expect(take("POST", `/v1/runs/${ID}/cancel`, {})).toBeUndefined();
    expect(take("POST", `/v1/runs/${ID}/cancel`, { authorization: "Bearer nope" })).toBeUndefined();
    expect(
      take("POST", `/v1/runs/${ID}/cancel`, { authorization: `Bearer ${TOKEN.slice(1)}` }),
    ).toBeUndefined();
    // Bodies express reads its own way (or ignores).
    expect(take("POST", `/v1/runs/${ID}/cancel`, { ...json, "content-type": "text/plain" })).toBeUndefined();
    expect(take("POST", `/v1/runs/${ID}/cancel`, { ...auth, "content-length": "2" })).toBeUndefined();
    expect(
      take("POST", `/v1/runs/${ID}/cancel`, { ...json, "content-type": "application/json; charset=latin1" }),
    ).toBeUndefined();
    expect(take("POST", `/v1/runs/${ID}/cancel`, { ...json, "content-encoding": "gzip" })).toBeUndefined();
  });

  it("reads a body as express's strict JSON parser does", () => {
    expect(parseCancelBody("")).toEqual({});
    expect(parseCancelBody("\ufeff")).toEqual({});
    expect(parseCancelBody('\ufeff {"reason":"x"}')).toEqual({ reason: "x" });
    expect(parseCancelBody("[]")).toEqual([]);
    for (const bad of ["{", '"x"', "1", "null", " true", "{}x"]) {
      expect(() => parseCancelBody(bad), bad).toThrow();
    }
  });
});

describe("the fast path answers as express does", () => {
  let cluster: Cluster;
  let r: Replica;

  beforeAll(async () => {
    cluster = await Cluster.start({ RUNNER_AUTH_TOKEN: TOKEN, RUNNER_MAX_CONCURRENT_RUNS: "4" });
    r = await cluster.replica();
  });
  afterAll(async () => {
    await cluster?.stop();
  });

  type Answer = { status: number; body: Record<string, unknown>; contentType: string | null; fast: boolean };

  async function send(
    path: string,
    init: { body?: string; headers?: Record<string, string> },
  ): Promise<Answer> {
    const res = await fetch(`${r.url}${path}`, {
      method: "POST",
      signal: AbortSignal.timeout(30_000),
      headers: init.headers ?? {},
      ...(init.body !== undefined ? { body: init.body } : {}),
    });
    return {
      status: res.status,
      body: (await res.json()) as Record<string, unknown>,
      contentType: res.headers.get("content-type"),
      fast: /\breq;dur=/.test(res.headers.get("server-timing") ?? ""),
    };
  }

  /** The same request to the fast path and through express. */
  async function both(id: string, init: { body?: string; headers?: Record<string, string> }) {
    const fast = await send(`/v1/runs/${id}/cancel`, init);
    const slow = await send(`/v1/runs/${id}/cancel/`, init);
    expect(slow.fast).toBe(false);
    return { fast, slow };
  }

  const jsonHeaders = { ...auth, "content-type": "application/json" };

  it.each([
    ["a malformed run id", "not-hex", { headers: auth }, 400, "invalid_input"],
    [
      "a malformed run id and a bad body",
      "not-hex",
      { headers: jsonHeaders, body: "{" },
      400,
      "invalid_input",
    ],
    ["an unknown run", ID, { headers: auth }, 404, "not_found"],
    ["an unknown run, empty JSON body", ID, { headers: jsonHeaders, body: "" }, 404, "not_found"],
    ["a body that is not JSON", ID, { headers: jsonHeaders, body: "{" }, 400, "invalid_json"],
    ["a JSON string", ID, { headers: jsonHeaders, body: '"stop"' }, 400, "invalid_json"],
    ["a JSON array", ID, { headers: jsonHeaders, body: "[]" }, 400, "invalid_input"],
    [
      "a reason that is not a string",
      ID,
      { headers: jsonHeaders, body: '{"reason":5}' },
      400,
      "invalid_input",
    ],
    ["an unknown field", ID, { headers: jsonHeaders, body: '{"why":"x"}' }, 400, "invalid_input"],
    [
      "a reason over 500 characters",
      ID,
      { headers: jsonHeaders, body: JSON.stringify({ reason: "x".repeat(501) }) },
      400,
      "invalid_input",
    ],
    [
      "a body over 1 MB",
      ID,
      { headers: jsonHeaders, body: `{"reason":"${"x".repeat(MAX_BODY_BYTES)}"}` },
      413,
      "payload_too_large",
    ],
  ] as const)("%s", async (_what, id, init, status, code) => {
    const { fast, slow } = await both(id, init);
    expect(fast.fast).toBe(true);
    expect(fast).toEqual({ ...slow, fast: true });
    expect(fast.status).toBe(status);
    expect(fast.body.code).toBe(code);
    expect(fast.contentType).toBe("application/json; charset=utf-8");
  });

  it("no token or a wrong one: express answers both", async () => {
    for (const headers of [{}, { authorization: "Bearer wrong" }] as Record<string, string>[]) {
      const { fast, slow } = await both(ID, { headers });
      expect(fast).toEqual(slow);
      expect(fast).toMatchObject({ status: 401, body: { code: "unauthorized" }, fast: false });
    }
  });

  it("cancels a running run, then answers 409 run_finished, as express does", async () => {
    const start = async (user: string) => {
      const res = await fetch(`${r.url}/v1/runs`, {
        method: "POST",
        headers: jsonHeaders,
        body: JSON.stringify({ agent: "slow", prompt: "[loop]", user_id: user, stream: false }),
      });
      const id = String(((await res.json()) as { run_id: string }).run_id);
      await eventually(async () => {
        const run = (await (await fetch(`${r.url}/v1/runs/${id}`, { headers: auth })).json()) as {
          status: string;
        };
        expect(run.status).toBe("running");
      });
      return id;
    };
    const [a, b] = [await start("fast-a"), await start("fast-b")];
    const init = { headers: jsonHeaders, body: JSON.stringify({ reason: "enough" }) };
    const fast = await send(`/v1/runs/${a}/cancel`, init);
    const slow = await send(`/v1/runs/${b}/cancel/`, init);
    expect(fast.fast).toBe(true);
    expect(slow.fast).toBe(false);
    expect(fast).toMatchObject({
      status: 200,
      body: { run_id: a, status: "cancelled", stop_reason: "cancelled: enough" },
    });
    expect(slow).toMatchObject({
      status: 200,
      body: { run_id: b, status: "cancelled", stop_reason: "cancelled: enough" },
    });
    expect(Object.keys(fast.body).sort()).toEqual(Object.keys(slow.body).sort());
    expect(fast.body).not.toHaveProperty("admit_ack");
    expect(fast.contentType).toBe(slow.contentType);
    // A second cancel of each, the other way round: the run has ended.
    const again = [
      await send(`/v1/runs/${b}/cancel`, { headers: auth }),
      await send(`/v1/runs/${a}/cancel/`, { headers: auth }),
    ];
    expect(again[0]).toMatchObject({
      status: 409,
      fast: true,
      body: { code: "run_finished", status: "cancelled" },
    });
    expect({ ...again[0], fast: false, body: { ...again[0]?.body, error: "" } }).toEqual({
      ...again[1],
      body: { ...again[1]?.body, error: "" },
    });
    // Both runs stop on their owner and free their slots.
    await eventually(async () => expect(await cluster.quotaRuns()).toEqual([]));
  });
});
