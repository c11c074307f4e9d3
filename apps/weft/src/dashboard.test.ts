import { Fabric } from "@loominal/fabric";
import { randomId, streams, subjects, warpConfigSchema } from "@loominal/protocol";
import { collectServerSentEvents, eventually, type NatsServer, uniqueProjectId } from "@loominal/testkit";
import { WorkQueue } from "@loominal/warp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  client,
  RunnerReplica,
  startWeftStack,
  stopWeftStack,
  type WeftProcess,
} from "./weft.test-helper.js";

const ADMIN = "admin-token-dashboard-0123456789";
const LIMITED = "limited-token-dashboard-0123456789";
const p1 = uniqueProjectId();
const p2 = uniqueProjectId();

let nats: NatsServer;
let weft: WeftProcess;
let dir: { path: string; cleanup: () => void };
let fabric: Fabric;
const queues: WorkQueue[] = [];

beforeAll(async () => {
  ({ nats, weft, dir } = await startWeftStack("weft-dashboard-", {
    WEFT_API_TOKENS: `${ADMIN},${LIMITED}:${p1}`,
  }));
  fabric = await Fabric.connect({ nats: { servers: [nats.url] } });
});

afterAll(async () => {
  for (const q of queues) await q.close();
  await fabric?.close();
  await stopWeftStack({ nats, weft, dir });
});

/** An agent's work queue in a project (the test claims and fails work as an agent would). */
function agentQueue(projectId: string): WorkQueue {
  const q = new WorkQueue({
    fabric,
    projectId,
    agentId: randomId(),
    userId: randomId(),
    settings: { ...warpConfigSchema.parse({}).work, maxAttempts: 1 },
  });
  queues.push(q);
  return q;
}

/** Logs in through the login form; returns the cookie pair to send and the page's CSRF token. */
async function login(token: string): Promise<{ cookie: string; csrf: string; setCookie: string }> {
  const res = await fetch(`${weft.url}/ui/login`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", origin: weft.url },
    body: new URLSearchParams({ token }).toString(),
    redirect: "manual",
  });
  expect(res.status).toBe(303);
  expect(res.headers.get("location")).toBe("/ui");
  const setCookie = res.headers.get("set-cookie") ?? "";
  const cookie = setCookie.split(";")[0] ?? "";
  const page = await fetch(`${weft.url}/ui`, { headers: { cookie } });
  expect(page.status).toBe(200);
  const csrf = /<meta name="csrf-token" content="([^"]+)">/.exec(await page.text())?.[1] ?? "";
  expect(csrf).not.toBe("");
  return { cookie, csrf, setCookie };
}

describe("dashboard login", () => {
  it("answers /ui without credentials with 401 and a login page, and serves the bundled assets", async () => {
    const res = await fetch(`${weft.url}/ui`);
    expect(res.status).toBe(401);
    expect(res.headers.get("content-type")).toContain("text/html");
    expect(res.headers.get("content-security-policy")).toContain("default-src 'self'");
    expect(res.headers.get("x-frame-options")).toBe("DENY");
    const html = await res.text();
    expect(html).toContain('<form method="post" action="/ui/login">');
    expect(html).toContain('name="token" type="password"');
    for (const asset of ["app.js", "app.css"]) {
      const a = await fetch(`${weft.url}/ui/assets/${asset}`);
      expect(a.status).toBe(200);
      expect((await a.text()).length).toBeGreaterThan(100);
    }
    expect((await fetch(`${weft.url}/ui/assets/nothing.js`)).status).toBe(404);
  });

  it("refuses a wrong token and a login posted from another origin", async () => {
    const post = (token: string, origin: string) =>
      fetch(`${weft.url}/ui/login`, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded", origin },
        body: new URLSearchParams({ token }).toString(),
        redirect: "manual",
      });
    const wrong = await post("not-a-token-0123456789abcdef", weft.url);
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get("set-cookie")).toBeNull();
    expect(await wrong.text()).toContain("not one this Weft accepts");
    const foreign = await post(ADMIN, "http://evil.example");
    expect(foreign.status).toBe(403);
    expect(foreign.headers.get("set-cookie")).toBeNull();
  });

  it("sets an HttpOnly, SameSite=Strict session cookie that never carries the token", async () => {
    const { cookie, setCookie } = await login(ADMIN);
    expect(setCookie).toMatch(/HttpOnly/);
    expect(setCookie).toMatch(/SameSite=Strict/);
    expect(setCookie).toMatch(/Path=\//);
    expect(setCookie).not.toContain(ADMIN);
    expect(cookie).toMatch(/^weft_session=v1\./);
    // A forged or altered cookie is nobody's.
    const forged = `${cookie.slice(0, -4)}AAAA`;
    expect((await fetch(`${weft.url}/ui`, { headers: { cookie: forged } })).status).toBe(401);
    expect(
      (await client(weft.url)("GET", `/api/work?projectId=${p1}`, undefined, { cookie: forged })).status,
    ).toBe(401);
    // A bearer token opens the page too.
    expect((await fetch(`${weft.url}/ui`, { headers: { authorization: `Bearer ${ADMIN}` } })).status).toBe(
      200,
    );
  });

  it("lets the session read the API, and change things only with its CSRF token from its own origin", async () => {
    const { cookie, csrf } = await login(ADMIN);
    const api = client(weft.url);
    const list = await api("GET", `/api/work?projectId=${p1}`, undefined, { cookie });
    expect(list.status).toBe(200);
    const body = { description: "from the dashboard", capability: "docs" };
    const noCsrf = await api("POST", `/api/work?projectId=${p1}`, body, { cookie });
    expect(noCsrf.status).toBe(403);
    expect(noCsrf.body.error.message).toMatch(/X-CSRF-Token/);
    const otherSession = await login(ADMIN);
    expect(
      (await api("POST", `/api/work?projectId=${p1}`, body, { cookie, "x-csrf-token": otherSession.csrf }))
        .status,
    ).toBe(403);
    const foreign = await api("POST", `/api/work?projectId=${p1}`, body, {
      cookie,
      "x-csrf-token": csrf,
      origin: "http://evil.example",
    });
    expect(foreign.status).toBe(403);
    const ok = await api("POST", `/api/work?projectId=${p1}`, body, {
      cookie,
      "x-csrf-token": csrf,
      origin: weft.url,
    });
    expect(ok.status).toBe(201);
    // Logging out clears the cookie.
    const out = await fetch(`${weft.url}/ui/logout`, {
      method: "POST",
      headers: { cookie, origin: weft.url },
      redirect: "manual",
    });
    expect(out.status).toBe(303);
    expect(out.headers.get("set-cookie")).toMatch(/weft_session=; .*Max-Age=0/);
  });

  it("keeps a project token's session to its projects and off the Runner", async () => {
    const submitted = await client(weft.url, ADMIN)("POST", `/api/work?projectId=${p1}`, {
      description: "makes the project known",
      capability: "docs",
    });
    expect(submitted.status).toBe(201);
    const { cookie } = await login(LIMITED);
    const api = client(weft.url);
    const projects = await api("GET", "/api/projects", undefined, { cookie });
    expect(projects.status).toBe(200);
    expect(projects.body).toMatchObject({ projects: [p1], tokenKind: "project" });
    expect((await api("GET", `/api/agents?projectId=${p2}`, undefined, { cookie })).status).toBe(403);
    expect((await api("GET", `/api/dlq?projectId=${p2}`, undefined, { cookie })).status).toBe(403);
    expect((await api("GET", "/api/runner", undefined, { cookie })).status).toBe(403);
    expect((await api("GET", "/api/runner/stream", undefined, { cookie })).status).toBe(403);
    const events = await collectServerSentEvents(`${weft.url}/api/events?projectId=${p2}`, {
      headers: { cookie },
    });
    expect(events.status).toBe(403);
    const admin = await api("GET", "/api/projects", undefined, { authorization: `Bearer ${ADMIN}` });
    expect(admin.body.tokenKind).toBe("admin");
    expect(admin.body.projects).toContain(p1);
  });
});

describe("dashboard data", () => {
  it("lists dead letters, retries one back to its queue and discards another", async () => {
    const p = uniqueProjectId();
    const admin = client(weft.url, ADMIN);
    const agent = agentQueue(p);
    const ids: string[] = [];
    for (const name of ["a", "b"]) {
      const r = await admin("POST", `/api/work?projectId=${p}`, {
        description: `dies ${name}`,
        capability: "flaky",
      });
      expect(r.status).toBe(201);
      ids.push(r.body.workId);
      const claimed = await agent.claim({ capability: "flaky", timeoutMs: 5_000 });
      expect(claimed?.workId).toBe(r.body.workId);
      await agent.fail(r.body.workId, `broken ${name}`, false);
    }
    const [a, b] = ids as [string, string];
    const dlq = await admin("GET", `/api/dlq?projectId=${p}`);
    expect(dlq.status).toBe(200);
    expect(dlq.body.letters.map((l: { workId: string }) => l.workId).sort()).toEqual([...ids].sort());
    expect(dlq.body.letters[0].item.status).toBe("dead");

    const retried = await admin("POST", `/api/dlq/${a}/retry?projectId=${p}`, {});
    expect(retried.status).toBe(200);
    expect(retried.body.status).toBe("pending");
    expect((await agent.claim({ capability: "flaky", timeoutMs: 5_000 }))?.workId).toBe(a);

    const discarded = await admin("POST", `/api/dlq/${b}/discard?projectId=${p}`);
    expect(discarded.body.status).toBe("discarded");
    expect((await admin("GET", `/api/dlq?projectId=${p}`)).body.letters).toEqual([]);
    const again = await admin("POST", `/api/dlq/${b}/retry?projectId=${p}`, {});
    expect(again.status).toBe(409);
    expect((await admin("POST", `/api/dlq/not-an-id/retry?projectId=${p}`, {})).status).toBe(400);
  });

  it("tells a work item's history, oldest first", async () => {
    const p = uniqueProjectId();
    const admin = client(weft.url, ADMIN);
    const agent = agentQueue(p);
    const r = await admin("POST", `/api/work?projectId=${p}`, {
      description: "write it",
      capability: "docs",
    });
    await agent.claim({ capability: "docs", timeoutMs: 5_000 });
    await agent.complete(r.body.workId, "written");
    const h = await admin("GET", `/api/work/${r.body.workId}/history?projectId=${p}`);
    expect(h.status).toBe(200);
    expect(h.body.events.map((e: { type: string }) => e.type)).toEqual(["offered", "claimed", "completed"]);
    expect(h.body.events[1].agentId).toBe(agent.agentId);
    expect(h.body.events[0].item).toBeUndefined();
    expect((await admin("GET", `/api/work/${randomId()}/history?projectId=${p}`)).status).toBe(404);
  });
});

describe("dashboard Runner view", () => {
  it("reads replicas, runs and run events from NATS, and streams them live", async () => {
    // Every step is bounded, so a slow step fails naming itself within the test's time.
    const admin = client(weft.url, ADMIN, { timeoutMs: 10_000 });
    const none = await admin("GET", "/api/runner");
    expect(none.status).toBe(200);
    expect(none.body).toMatchObject({ available: false, replicas: [], runs: [] });

    // A short drain: stopping it at the end need not wait for anything.
    const replica = await RunnerReplica.start({ NATS_URL: nats.url, RUNNER_DRAIN_TIMEOUT_MS: "2000" });
    try {
      const started = await replica.run({ agent: "mock-generic", prompt: "hello", user_id: "alice" });
      const overview = await eventually(
        async () => {
          const r = await admin("GET", "/api/runner");
          expect(r.body.available).toBe(true);
          expect(r.body.replicas.map((x: { replica_id: string }) => x.replica_id)).toContain(
            replica.replicaId,
          );
          expect(r.body.runs[0]).toMatchObject({ run_id: started, user_id: "alice", status: "completed" });
          return r.body;
        },
        { timeoutMs: 30_000 },
      );
      expect(overview.state).toBe("running");
      expect(overview.runs[0].replica_id).toBe(replica.replicaId);

      const events = await admin("GET", `/api/runner/runs/${started}/events`);
      expect(events.status).toBe(200);
      expect(events.body.events[0].seq).toBe(1);
      expect(events.body.events.at(-1).type).toBe("done");
      expect(events.body.events.map((e: { seq: number }) => e.seq)).toEqual(
        events.body.events.map((_: unknown, i: number) => i + 1),
      );
      // Events the run emitted back to back went in one message: the stream holds fewer messages than events.
      const subject = subjects.runnerEvents(started);
      const info = await (await fabric.jsm()).streams.info(streams.runnerEvents(), {
        subjects_filter: subject,
      });
      expect(info.state.subjects?.[subject]).toBeLessThan(events.body.events.length);
      const replay = await collectServerSentEvents(`${weft.url}/api/runner/runs/${started}/stream`, {
        headers: { authorization: `Bearer ${ADMIN}` },
        timeoutMs: 15_000,
      });
      expect(replay.status).toBe(200);
      expect(replay.events.map((e) => (e.data as { seq: number }).seq)).toEqual(
        events.body.events.map((e: { seq: number }) => e.seq),
      );

      // The live stream: the replicas first (sent once runs are followed), then each run record as it is written.
      let second = "";
      let following: () => void = () => undefined;
      const isFollowing = new Promise<void>((r) => {
        following = r;
      });
      const live = collectServerSentEvents(`${weft.url}/api/runner/stream`, {
        headers: { authorization: `Bearer ${ADMIN}` },
        until: (es) => {
          if (es.some((e) => e.event === "replicas")) following();
          return es.some((e) => {
            const run = e.data as { run_id?: string; status?: string };
            return e.event === "run" && run.run_id === second && run.status === "completed";
          });
        },
        timeoutMs: 30_000,
      });
      // Bounded: a stream that ends without its first replicas event fails here instead of waiting forever.
      await Promise.race([
        isFollowing,
        live.then((r) => {
          if (!r.events.some((e) => e.event === "replicas"))
            throw new Error(`the Runner stream ended before its first replicas event: ${JSON.stringify(r)}`);
        }),
      ]);
      second = await replica.run({ agent: "mock-generic", prompt: "again", user_id: "bob" });
      const got = await live;
      expect(got.status).toBe(200);
      expect(got.events[0]?.event).toBe("replicas");
      expect(
        got.events.some((e) => e.event === "run" && (e.data as { run_id: string }).run_id === second),
      ).toBe(true);
    } finally {
      await replica.stop();
    }
  }, 120_000);
});
